package web

import (
	"embed"
	"io/fs"

	"github.com/bffproxy/bff/aggregate/viewfile"
	"github.com/bffproxy/bff/bff"
)

//go:embed views.yaml
var views []byte

//go:embed tests
var tests embed.FS

// Tests returns the web views' fixtures: tests/*.test.yaml and the bodies
// they name, for view tests (internal/viewtest, bff test).
func Tests() fs.FS { return tests }

// Routes returns the web client's views, read from the embedded views.yaml.
func Routes() (bff.RouteSet, error) {
	vs, err := viewfile.Parse("bff/web/views.yaml", views)
	if err != nil {
		return bff.RouteSet{}, err
	}
	return bff.RouteSet{Client: "web", Views: vs}, nil
}
