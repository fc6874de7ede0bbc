package bff_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

// cardView is a view without query parameters whose optional recs call
// keeps its last good answer for an hour.
func cardView() []bff.RouteSet {
	return []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.card", Route: "/card/{id}",
		Params: []aggregate.Param{{Name: "id", Pattern: `[0-9]+`}},
		Cache:  aggregate.CachePolicy{TTL: time.Second},
		Calls: []aggregate.Call{
			{Name: "user", Upstream: "users", Path: "/users/{id}"},
			{Name: "recs", Upstream: "recs", Path: "/r/{id}", Optional: true, StaleIfError: time.Hour},
		},
		Shape: []aggregate.Field{aggregate.Rename("user", "user.version"), aggregate.Rename("recs", "recs.version")},
	}}}}
}

// A purge is never undone by a stand-in, for sections as for whole
// responses (TestPurgedCopyDoesNotStandIn): a purge of the view (the admin
// endpoint, a mutation's invalidates) or of its path alone reaches the
// kept answers of its optional calls too. Section keys are
// "<path>\x00\x01<fingerprint>…", as a path purge covers "<path>\x00",
// "<path>?" and "<path>/"; they were untagged "\x01…" keys once, which
// neither purge reached.
func TestPurgedSectionDoesNotStandIn(t *testing.T) {
	for _, purge := range []struct{ view, prefix string }{{"web.card", ""}, {"", "/web/card/1"}} {
		recs := &switchable{}
		clk := &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
		h := newHarness(t, options{
			routeSets: cardView(), now: clk.Now,
			handlers: map[string]http.Handler{"users": &switchable{}, "recs": recs},
		})
		if w := h.get(t, "/web/card/1"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"recs":1`) {
			t.Fatalf("healthy: %d %s", w.Code, w.Body)
		}
		h.cache.Wait()
		if err := h.front.Purge(purge.view, purge.prefix); err != nil {
			t.Fatal(err)
		}
		recs.failing.Store(true)
		clk.advance(5 * time.Second)
		wantNoStandIn(t, h.get(t, "/web/card/1"), fmt.Sprintf("after a purge of view %q prefix %q", purge.view, purge.prefix))
	}
}

// wantNoStandIn fails if recs' first answer stood in.
func wantNoStandIn(t *testing.T, w *httptest.ResponseRecorder, when string) {
	t.Helper()
	if strings.Contains(w.Body.String(), `"recs":1`) || strings.Contains(w.Header().Get(bff.PartialHeader), "stale") {
		t.Errorf("%s: %d %s, %s %q; the kept recs answer stood in", when, w.Code, w.Body, bff.PartialHeader, w.Header().Get(bff.PartialHeader))
	}
}

// gone makes an upstream answer 404 to everything: the resource is gone.
func gone(h *harness, upstream string) {
	h.upstreams[upstream].set(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"no such thing"}`, http.StatusNotFound)
	}))
}

// A section fetched while a purge of its view ran is as stale as the
// response it was part of: neither is kept. Both carry the purge epoch
// from before the fetch (the section once took the epoch of its Set,
// after the purge, and its pre-purge answer stood in later).
func TestSectionFetchedDuringPurgeDoesNotStandIn(t *testing.T) {
	recs := &switchable{}
	clk := &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	h := newHarness(t, options{
		routeSets: cardView(), now: clk.Now,
		handlers: map[string]http.Handler{"users": &switchable{}, "recs": recs},
	})
	gate := make(chan struct{})
	recs.gate.Store(&gate)
	answer := make(chan *httptest.ResponseRecorder, 1)
	go func() { answer <- h.get(t, "/web/card/1") }()
	waitFor(t, "the recs call at the upstream", func() bool { return h.calls("recs") == 1 })
	if err := h.front.Purge("web.card", ""); err != nil { // e.g. a mutation's invalidates
		t.Fatal(err)
	}
	recs.gate.Store(nil)
	close(gate)
	if w := <-answer; w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"recs":1`) {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	h.cache.Wait()

	recs.failing.Store(true)
	clk.advance(5 * time.Second)
	wantNoStandIn(t, h.get(t, "/web/card/1"), "fetched across a purge of web.card")
}

// stale_if_error stands in for an answer that cannot be made (an upstream
// error, timeout, open breaker, full bulkhead, or shedding). A required
// upstream answering 404 is an answer: the resource is gone, and the
// client gets 404 not-found, not the deleted resource's old copy.
func TestStaleCopyDoesNotHideA404(t *testing.T) {
	_, clk, h := profileHarness(t, aggregate.CachePolicy{TTL: time.Second, StaleIfError: time.Hour})
	if w := h.get(t, "/web/profile/1"); w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	h.cache.Wait()
	clk.advance(5 * time.Second) // past the TTL, within stale_if_error

	gone(h, "users")
	w := h.get(t, "/web/profile/1")
	if w.Code != http.StatusNotFound {
		t.Errorf("users answers 404 (the user was deleted): %d X-Cache %s %s %q; want 404 not-found, not the deleted user's stale copy",
			w.Code, w.Header().Get("X-Cache"), w.Body, w.Header().Get(bff.PartialHeader))
	}
}

// Nor does a kept section stand in for an optional upstream's 404: the
// part is missing (reason=error;status=404), not an old copy marked stale.
func TestKeptSectionDoesNotHideA404(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	uncached := cardView()
	uncached[0].Views[0].Cache = aggregate.CachePolicy{} // every request runs the view; sections are still kept
	h := newHarness(t, options{
		routeSets: uncached, now: clk.Now,
		handlers: map[string]http.Handler{"users": &switchable{}, "recs": &switchable{}},
	})
	if w := h.get(t, "/web/card/1"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"recs":1`) {
		t.Fatalf("healthy: %d %s", w.Code, w.Body)
	}
	h.cache.Wait()
	gone(h, "recs")
	clk.advance(5 * time.Second)
	w := h.get(t, "/web/card/1")
	if got := w.Header().Get(bff.PartialHeader); w.Code != http.StatusOK || got != "recs;reason=error;status=404" || strings.Contains(w.Body.String(), `"recs":1`) {
		t.Errorf("recs answers 404: %d %s, %s %q; want recs missing with status=404", w.Code, w.Body, bff.PartialHeader, got)
	}
}
