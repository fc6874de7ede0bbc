package bff_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

// With the access log off, upstream failures are logged at most once a
// second per view, but a panic in the view (a bug: the 500 nobody can
// explain without its line) is always logged, even right after one.
func TestPanicIsLoggedThoughAnUpstreamFailureWasJustLogged(t *testing.T) {
	handlers := map[string]http.Handler{"u": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/down") {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"n"}`)
	})}
	sets := []bff.RouteSet{{
		Client: "web",
		Shapers: map[string]aggregate.ShapeFunc{"boom": func(s *aggregate.Sources) ([]byte, error) {
			if s.Param("id") == "bug" {
				panic("shaper bug: index out of range")
			}
			return []byte(`{}`), nil
		}},
		Views: []aggregate.View{{
			Name: "web.w", Route: "/w/{id}", Params: []aggregate.Param{{Name: "id", Pattern: `[a-z]+`}},
			ShapeFunc: "boom",
			Calls:     []aggregate.Call{{Name: "u", Upstream: "u", Path: "/u/{id}"}},
		}},
	}}
	var logs lockedLog
	h := newHarness(t, options{cacheBytes: -1, routeSets: sets, handlers: handlers,
		logger: slog.New(slog.NewTextHandler(&logs, nil))})

	if w := h.get(t, "/web/w/down"); w.Code < 500 {
		t.Fatalf("upstream down: %d; want a 5xx", w.Code)
	}
	if w := h.get(t, "/web/w/bug"); w.Code != http.StatusInternalServerError {
		t.Fatalf("panicking view: %d %s; want 500", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "shaper bug") {
		t.Errorf("a view that panicked right after an upstream failure left no trace in the log (access log off); log:\n%s", logs.String())
	}
}
