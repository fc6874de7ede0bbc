package bff_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/faults"
	"github.com/bffproxy/bff/upstream"
)

// Bff-Fault shows a degraded state "against the real engine": with recs
// failing, the real engine lets recs' kept answer stand in
// (recs;reason=stale), and so does a faulted request. It runs the view
// uncached, with no cache key, and once looked for sections under an
// empty place rather than its path.
func TestFaultedRequestSeesKeptSections(t *testing.T) {
	doers := map[string]aggregate.Doer{}
	for name, handler := range map[string]http.Handler{"users": &switchable{}, "recs": &switchable{}} {
		srv := newUpstreamServer(t, handler)
		c, err := upstream.New(upstream.Config{Name: name, BaseURL: srv.URL,
			Retry: upstream.RetryConfig{Max: 0, WaitMin: time.Millisecond, WaitMax: 2 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		doers[name] = faults.Wrap(name, c)
	}
	rc, err := cache.New(cache.Config{MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	front, err := bff.New(bff.Config{Engine: aggregate.NewEngine(doers), Cache: rc, RouteSets: cardView(), FaultInjection: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{front: front, cache: rc}

	if w := h.get(t, "/web/card/1"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"recs":1`) {
		t.Fatalf("healthy: %d %s", w.Code, w.Body)
	}
	rc.Wait()
	w := h.get(t, "/web/card/1", faults.Header, "recs=500")
	if got := w.Header().Get(bff.PartialHeader); w.Code != http.StatusOK || !strings.HasPrefix(got, "recs;reason=stale") {
		t.Errorf("Bff-Fault: recs=500 after recs answered once: %d %s, %s %q; want recs' kept answer standing in (recs;reason=stale), as without the header",
			w.Code, w.Body, bff.PartialHeader, got)
	}
}
