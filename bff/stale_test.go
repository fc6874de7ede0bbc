package bff_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/upstream"
)

// clock is a settable time for the front; the cache's own expiry runs on
// real time, far longer than these tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// switchable answers with a counter-stamped profile, or fails, or blocks.
type switchable struct {
	version atomic.Int64
	failing atomic.Bool
	gate    atomic.Pointer[chan struct{}]
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g := s.gate.Load(); g != nil {
		select {
		case <-*g:
		case <-r.Context().Done():
			return
		}
	}
	if s.failing.Load() {
		http.Error(w, `{"error":"down"}`, http.StatusInternalServerError)
		return
	}
	b, _ := json.Marshal(map[string]any{"name": "v", "version": s.version.Add(1)})
	_, _ = w.Write(b)
}

// profileHarness serves profileView with pol from a switchable users
// upstream, on a clock the test moves.
func profileHarness(t *testing.T, pol aggregate.CachePolicy) (*switchable, *clock, *harness) {
	up := &switchable{}
	clk := &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	h := newHarness(t, options{routeSets: profileView(pol), handlers: map[string]http.Handler{"users": up}, now: clk.Now})
	return up, clk, h
}

func profileView(pol aggregate.CachePolicy) []bff.RouteSet {
	return []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.profile", Route: "/profile/{id}",
		Params: []aggregate.Param{{Name: "id", Pattern: `[0-9]+`}},
		Calls:  []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/{id}"}},
		Cache:  pol,
		Shape:  []aggregate.Field{aggregate.Pick("user.version")},
	}}}}
}

// Past its TTL but within stale_while_revalidate, a copy is served at once
// and one background execution refreshes it, however many ask meanwhile.
func TestStaleWhileRevalidate(t *testing.T) {
	up, clk, h := profileHarness(t, aggregate.CachePolicy{TTL: time.Second, StaleWhileRevalidate: time.Minute})
	first := h.get(t, "/web/profile/1")
	h.cache.Wait()
	clk.advance(2 * time.Second)

	gate := make(chan struct{})
	up.gate.Store(&gate) // the refresh waits until every stale request was served
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			w := h.get(t, "/web/profile/1")
			if w.Code != http.StatusOK || w.Header().Get("X-Cache") != "STALE" || w.Body.String() != first.Body.String() {
				t.Errorf("stale request: %d %s %s; want the first body, X-Cache STALE", w.Code, w.Header().Get("X-Cache"), w.Body)
			}
			if w.Header().Get("Age") != "2" || w.Header().Get(bff.PartialHeader) != "" {
				t.Errorf("stale request: Age %q, partial %q; want Age 2 and no partial mark", w.Header().Get("Age"), w.Header().Get(bff.PartialHeader))
			}
		})
	}
	wg.Wait()
	close(gate)
	waitFor(t, "the background refresh", func() bool { return h.calls("users") == 2 })
	// Until the refresh has stored its result, a request would find the
	// stale copy and, the refresh being over, start another one.
	if err := h.front.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.cache.Wait()
	waitFor(t, "the refreshed entry", func() bool {
		w := h.get(t, "/web/profile/1")
		return w.Header().Get("X-Cache") == "HIT" && w.Body.String() != first.Body.String()
	})
	if n := h.calls("users"); n != 2 {
		t.Errorf("users called %d times; want 2: the first miss and one refresh for 20 stale requests", n)
	}
}

// Past its TTL but within stale_if_error, a copy stands in for an answer
// that cannot be made, marked; past that window the failure shows.
func TestStaleIfError(t *testing.T) {
	up, clk, h := profileHarness(t, aggregate.CachePolicy{TTL: time.Second, StaleIfError: time.Minute})
	first := h.get(t, "/web/profile/1")
	h.cache.Wait()

	// Fresh: a hit, the upstream not asked.
	clk.advance(500 * time.Millisecond)
	if w := h.get(t, "/web/profile/1"); w.Header().Get("X-Cache") != "HIT" {
		t.Fatalf("within the TTL: X-Cache %s", w.Header().Get("X-Cache"))
	}
	// Past the TTL with the upstream healthy: a fresh answer, not the stale one.
	clk.advance(time.Second)
	second := h.get(t, "/web/profile/1")
	if second.Header().Get("X-Cache") != "MISS" || second.Body.String() == first.Body.String() {
		t.Fatalf("past the TTL, upstream up: %s %s; want a fresh MISS", second.Header().Get("X-Cache"), second.Body)
	}
	h.cache.Wait()

	up.failing.Store(true)
	clk.advance(30 * time.Second)
	w := h.get(t, "/web/profile/1")
	if w.Code != http.StatusOK || w.Header().Get("X-Cache") != "STALE" || w.Body.String() != second.Body.String() {
		t.Fatalf("upstream down within stale_if_error: %d %s %s; want the last good copy", w.Code, w.Header().Get("X-Cache"), w.Body)
	}
	if got := w.Header().Get(bff.PartialHeader); got != "stale;reason=error" {
		t.Errorf("partial header %q; want stale;reason=error", got)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q; a stand-in must not be kept downstream", got)
	}
	if w.Header().Get("Age") != "30" {
		t.Errorf("Age %q; want 30", w.Header().Get("Age"))
	}

	clk.advance(2 * time.Minute)
	if w := h.get(t, "/web/profile/1"); w.Code != http.StatusBadGateway {
		t.Errorf("past stale_if_error: %d %s; want the upstream failure (502)", w.Code, w.Body)
	}
}

// Past the in-flight bound a request that needs upstream work gets 503 at
// once, with no upstream call, counted as shed and not as a cache miss (the
// view did not run); cache hits keep being served.
func TestLoadShedding(t *testing.T) {
	up := &switchable{}
	counts := &statusCounter{counts: map[string]int{}}
	h := newHarness(t, options{
		routeSets:   profileView(aggregate.CachePolicy{TTL: time.Minute}),
		handlers:    map[string]http.Handler{"users": up},
		maxInFlight: 2,
		metrics:     counts,
	})
	h.get(t, "/web/profile/1")
	h.cache.Wait()

	gate := make(chan struct{})
	up.gate.Store(&gate)
	var wg sync.WaitGroup
	for _, id := range []string{"2", "3"} {
		wg.Go(func() {
			if w := h.get(t, "/web/profile/"+id); w.Code != http.StatusOK {
				t.Errorf("request %s, admitted: %d", id, w.Code)
			}
		})
	}
	waitFor(t, "two requests at the upstream", func() bool { return h.calls("users") == 3 })

	w := h.get(t, "/web/profile/4")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(w.Body.String(), bff.ProblemOverloaded) {
		t.Errorf("over the bound: %d Retry-After %q %s; want 503 overloaded with Retry-After", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if n := counts.get("web/web.profile Service Unavailable cache="); n != 1 {
		t.Errorf("the shed request counted with no cache result %d times, want 1 (counts %v)", n, counts.counts)
	}
	if hit := h.get(t, "/web/profile/1"); hit.Code != http.StatusOK || hit.Header().Get("X-Cache") != "HIT" {
		t.Errorf("a cache hit while shedding: %d %s", hit.Code, hit.Header().Get("X-Cache"))
	}
	if n := h.calls("users"); n != 3 {
		t.Errorf("users called %d times; the shed request must not reach it", n)
	}
	close(gate)
	wg.Wait()
	if w := h.get(t, "/web/profile/4"); w.Code != http.StatusOK {
		t.Errorf("after the load passed: %d; want the slots back", w.Code)
	}
}

// An optional section that declares stale_if_error keeps its last good
// answer: when its upstream fails, that answer stands in, marked with its
// age; past the window the section is missing as usual.
func TestSectionStandsInWhenItsUpstreamFails(t *testing.T) {
	recs := &switchable{}
	clk := &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	rs := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.card", Route: "/card/{id}",
		Params: []aggregate.Param{{Name: "id", Pattern: `[0-9]+`}},
		Calls: []aggregate.Call{
			{Name: "user", Upstream: "users", Path: "/users/{id}"},
			{Name: "recs", Upstream: "recs", Path: "/r/{id}", Optional: true, StaleIfError: time.Minute},
		},
		Shape: []aggregate.Field{aggregate.Rename("user", "user.version"), aggregate.Rename("recs", "recs.version")},
	}}}}
	h := newHarness(t, options{
		routeSets: rs,
		handlers:  map[string]http.Handler{"users": &switchable{}, "recs": recs},
		now:       clk.Now,
	})
	first := h.get(t, "/web/card/1")
	if first.Code != http.StatusOK || first.Header().Get(bff.PartialHeader) != "" {
		t.Fatalf("healthy: %d %q %s", first.Code, first.Header().Get(bff.PartialHeader), first.Body)
	}
	h.cache.Wait()

	recs.failing.Store(true)
	clk.advance(20 * time.Second)
	w := h.get(t, "/web/card/1")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"recs":1`) {
		t.Fatalf("recs down: %d %s; want the kept recs section (version 1)", w.Code, w.Body)
	}
	if got := w.Header().Get(bff.PartialHeader); got != "recs;reason=stale;age=20" {
		t.Errorf("partial header %q; want recs;reason=stale;age=20", got)
	}
	if !strings.Contains(w.Body.String(), `"user":2`) {
		t.Errorf("body %s: the healthy section must be fresh", w.Body)
	}

	clk.advance(time.Minute)
	w = h.get(t, "/web/card/1")
	if got := w.Header().Get(bff.PartialHeader); w.Code != http.StatusOK || got != "recs;reason=error;status=500" ||
		!strings.Contains(w.Body.String(), `"recs":null`) {
		t.Errorf("past the window: %d %q %s; want recs missing (null) with reason=error", w.Code, got, w.Body)
	}
	// Another id has no kept section.
	if got := h.get(t, "/web/card/2").Header().Get(bff.PartialHeader); got != "recs;reason=error;status=500" {
		t.Errorf("id 2: partial %q; a section kept for id 1 must not stand in for id 2", got)
	}
}

// A copy that could stand in for a failed fetch, but was purged while the
// fetch ran, does not: the failure is answered as a failure.
func TestPurgedCopyDoesNotStandIn(t *testing.T) {
	up, clk, h := profileHarness(t, aggregate.CachePolicy{TTL: time.Second, StaleIfError: time.Minute})
	if w := h.get(t, "/web/profile/1"); w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	h.cache.Wait()
	clk.advance(30 * time.Second) // past the TTL, within stale_if_error

	up.failing.Store(true)
	gate := make(chan struct{})
	up.gate.Store(&gate)
	answer := make(chan *httptest.ResponseRecorder, 1)
	go func() { answer <- h.get(t, "/web/profile/1") }()
	waitFor(t, "the fetch at the upstream", func() bool { return h.calls("users") == 2 })
	if err := h.front.Purge("web.profile", ""); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if w := <-answer; w.Code == http.StatusOK || w.Header().Get("X-Cache") == "STALE" {
		t.Fatalf("upstream down, the copy purged during the fetch: %d %s %s; want the failure", w.Code, w.Header().Get("X-Cache"), w.Body)
	}
}

// stale_if_error on a fan-out call: when every element fails, the call has
// failed and its last good answer stands in (it gave [null,null] once: a
// fan-out's failed elements made it "partial", which nothing replaces).
func TestFanOutSectionStandsInWhenEveryElementFails(t *testing.T) {
	catalog := &switchable{}
	clk := &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	rs := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.basket", Route: "/basket",
		Calls: []aggregate.Call{
			{Name: "basket", Upstream: "baskets", Path: "/basket"},
			{Name: "items", Upstream: "catalog", Path: "/products/{each}", ForEach: "basket.items.#.sku",
				Optional: true, StaleIfError: time.Minute},
		},
		Shape: []aggregate.Field{aggregate.List("items", "items", 0, aggregate.Pick("version"))},
	}}}}
	h := newHarness(t, options{
		routeSets: rs, now: clk.Now, cacheBytes: 16 << 20,
		handlers: map[string]http.Handler{"baskets": basket("a", "b"), "catalog": catalog},
		tweak:    func(_ string, c *upstream.Config) { c.Retry.Max = 0 },
	})
	first := h.get(t, "/web/basket")
	if first.Code != http.StatusOK || first.Header().Get(bff.PartialHeader) != "" || strings.Contains(first.Body.String(), "null") {
		t.Fatalf("healthy: %d %q %s", first.Code, first.Header().Get(bff.PartialHeader), first.Body)
	}
	h.cache.Wait()

	catalog.failing.Store(true)
	clk.advance(10 * time.Second)
	w := h.get(t, "/web/basket")
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "null") ||
		!strings.HasPrefix(w.Header().Get(bff.PartialHeader), "items;reason=stale") {
		t.Errorf("catalog down: %d %s, %s %q; want the kept items section standing in (reason=stale)",
			w.Code, w.Body, bff.PartialHeader, w.Header().Get(bff.PartialHeader))
	}

	// An element that is gone (404) is an answer, whichever element it is:
	// then nothing stands in.
	h.upstreams["catalog"].set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/b") {
			http.Error(w, `{"error":"no such product"}`, http.StatusNotFound)
			return
		}
		http.Error(w, `{"error":"down"}`, http.StatusInternalServerError)
	}))
	w = h.get(t, "/web/basket")
	if strings.Contains(w.Header().Get(bff.PartialHeader), "stale") {
		t.Errorf("one element gone, one failing: %d %s, %s %q; want no stand-in", w.Code, w.Body, bff.PartialHeader, w.Header().Get(bff.PartialHeader))
	}
}

// Nothing stands in for an upstream's own 404: the resource is gone.
// Within stale_while_revalidate the first request after the TTL is served
// the old copy while a refresh runs, as designed; once that refresh has
// heard the 404 the copy is dropped, and the next request gets the 404
// (not the deleted resource as 200 STALE until the window ends).
func TestRevalidationThatHears404StopsTheStaleCopy(t *testing.T) {
	_, clk, h := profileHarness(t, aggregate.CachePolicy{TTL: time.Second, StaleWhileRevalidate: time.Hour})
	if w := h.get(t, "/web/profile/1"); w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	h.cache.Wait()
	clk.advance(5 * time.Second) // past the TTL, within stale_while_revalidate

	gone(h, "users")
	if w := h.get(t, "/web/profile/1"); w.Header().Get("X-Cache") != "STALE" {
		t.Fatalf("first request past the TTL: %d X-Cache %q; want the stale copy while it refreshes", w.Code, w.Header().Get("X-Cache"))
	}
	// The refresh has run and heard 404.
	if err := h.front.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.cache.Wait()
	if n := h.calls("users"); n != 2 {
		t.Fatalf("users called %d times; want the first miss and one refresh", n)
	}
	w := h.get(t, "/web/profile/1")
	if w.Code != http.StatusNotFound {
		t.Errorf("after a refresh heard 404 (the user was deleted): %d X-Cache %s %s; want 404, not the deleted user's copy",
			w.Code, w.Header().Get("X-Cache"), w.Body)
	}
}
