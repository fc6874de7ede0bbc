package upstream_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/bffproxy/bff/upstream"
	"github.com/sony/gobreaker/v2"
)

// An error's body is never read by anyone, so its size does not matter: a
// 404 with a body over max_body_bytes is still a 404 (not a bad response,
// which a required call turns into a 502 and the breaker counts).
func TestLargeErrorBodyKeepsItsStatus(t *testing.T) {
	huge := strings.Repeat("x", 3<<20)
	s := newServer(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(huge))
	})
	cfg := testConfig(s.URL)
	cfg.MaxBodyBytes = 1 << 20
	cfg.Breaker = upstream.BreakerConfig{ConsecutiveFailures: 2}
	c := newClient(t, cfg)
	for range 3 {
		_, err := c.Do(context.Background(), &upstream.Request{Path: "/users/404"})
		wantStatusError(t, err, http.StatusNotFound, 1)
	}
	if got := c.BreakerState(); got != gobreaker.StateClosed {
		t.Errorf("breaker %s after three 404s; a 4xx is not a failure", got)
	}
}
