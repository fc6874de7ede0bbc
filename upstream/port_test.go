package upstream_test

import (
	"testing"

	"github.com/bffproxy/bff/upstream"
)

// A base URL whose port cannot exist is a configuration mistake, refused
// at start (and by `bff check`) like a missing scheme, not a breaker that
// opens on every call's "invalid port".
func TestNewRefusesABaseURLWithAnImpossiblePort(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:99999", "http://users.internal:0"} {
		c, err := upstream.New(upstream.Config{Name: "users", BaseURL: u})
		if err == nil {
			c.CloseIdleConnections()
			t.Errorf("base URL %q accepted; want an error naming the port", u)
		}
	}
}
