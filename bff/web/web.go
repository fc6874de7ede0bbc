package web

import (
	_ "embed"

	"github.com/bffproxy/bff/aggregate/viewfile"
	"github.com/bffproxy/bff/bff"
)

//go:embed views.yaml
var views []byte

// Routes returns the web client's views, read from the embedded views.yaml.
func Routes() (bff.RouteSet, error) {
	vs, err := viewfile.Parse("bff/web/views.yaml", views)
	if err != nil {
		return bff.RouteSet{}, err
	}
	return bff.RouteSet{Client: "web", Views: vs}, nil
}
