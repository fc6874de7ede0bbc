package bff_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

// A view whose Go shaping function fails answers 500, and its access line
// still says how each call went: the shaper's input is what the operator
// needs to see.
func TestShaperErrorAccessLineCarriesCalls(t *testing.T) {
	users := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"n"}`)
	})
	sets := []bff.RouteSet{{
		Client: "web",
		Shapers: map[string]aggregate.ShapeFunc{"picky": func(*aggregate.Sources) ([]byte, error) {
			return nil, errors.New("the answer lacks a field this shaper needs")
		}},
		Views: []aggregate.View{{
			Name: "web.w", Route: "/w/{id}", Params: []aggregate.Param{{Name: "id", Pattern: `[a-z]+`}},
			ShapeFunc: "picky",
			Calls:     []aggregate.Call{{Name: "u", Upstream: "users", Path: "/u/{id}"}},
		}},
	}}
	var logs lockedLog
	f := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"users": users}, accessLog: &logs}).front
	w := httptest.NewRecorder()
	f.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/web/w/abc", nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d; want 500 from the shaper's error", w.Code)
	}
	line := logs.String()
	if !strings.Contains(line, "msg=request") {
		t.Fatalf("no access line:\n%s", line)
	}
	if !strings.Contains(line, "upstreams=u:users:ok:") {
		t.Errorf("the failed execution's access line does not say how its calls went (want upstreams=u:users:ok:...):\n%s", line)
	}
}
