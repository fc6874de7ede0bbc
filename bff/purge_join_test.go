package bff_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
)

// A request made after a purge (a read right after a mutation that
// invalidated the view) does not join a fetch that began before the purge:
// it would be answered with what the purge removed.
func TestRequestAfterPurgeDoesNotJoinAnOlderFetch(t *testing.T) {
	for _, cacheBytes := range []int64{16 << 20, -1} { // -1: no memory tier
		up := &switchable{}
		h := newHarness(t, options{cacheBytes: cacheBytes,
			routeSets: profileView(aggregate.CachePolicy{TTL: time.Minute}),
			handlers:  map[string]http.Handler{"users": up}})
		gate := make(chan struct{})
		up.gate.Store(&gate)

		before := make(chan *httptest.ResponseRecorder, 1)
		go func() { before <- h.get(t, "/web/profile/1") }()
		waitFor(t, "the first fetch at the upstream", func() bool { return h.calls("users") == 1 })
		if err := h.front.Purge("web.profile", ""); err != nil {
			t.Fatal(err)
		}
		after := make(chan *httptest.ResponseRecorder, 1)
		go func() { after <- h.get(t, "/web/profile/1") }()
		waitFor(t, "a fetch of its own for the request made after the purge", func() bool { return h.calls("users") == 2 })
		close(gate)
		if w := <-before; w.Code != http.StatusOK {
			t.Fatalf("cache %d: before the purge: %d", cacheBytes, w.Code)
		}
		if w := <-after; w.Code != http.StatusOK || w.Header().Get("X-Cache") == "COALESCED" {
			t.Fatalf("cache %d: after the purge: %d, X-Cache %s", cacheBytes, w.Code, w.Header().Get("X-Cache"))
		}
	}
}
