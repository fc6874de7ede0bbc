package bff_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/upstream"
)

// products answers /products/{sku}, counting calls per SKU and the most
// requests it ever had in flight; SKUs listed in fail get a 500.
type products struct {
	mu       sync.Mutex
	calls    map[string]int
	inFlight atomic.Int64
	peak     atomic.Int64
	fail     map[string]bool
}

func (p *products) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	time.Sleep(2 * time.Millisecond) // lets requests overlap, so the bound is exercised
	sku := strings.TrimPrefix(r.URL.Path, "/products/")
	p.mu.Lock()
	p.calls[sku]++
	p.mu.Unlock()
	if p.fail[sku] {
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	}
	b, _ := json.Marshal(map[string]string{"sku": sku, "title": "T " + sku})
	_, _ = w.Write(b)
}

func fanOutView(optional bool, maxEach, concurrency int) bff.RouteSet {
	return bff.RouteSet{Client: "web", Views: []aggregate.View{{
		Name: "web.basket", Route: "/basket",
		Calls: []aggregate.Call{
			{Name: "basket", Upstream: "baskets", Path: "/basket"},
			{Name: "items", Upstream: "catalog", Path: "/products/{each}", ForEach: "basket.items.#.sku",
				Optional: optional, MaxEach: maxEach, Concurrency: concurrency},
		},
		Shape: []aggregate.Field{aggregate.List("items", "items", 0, aggregate.Pick("sku"), aggregate.Pick("title"))},
	}}}
}

func basket(skus ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		items := make([]map[string]string, len(skus))
		for i, s := range skus {
			items[i] = map[string]string{"sku": s}
		}
		b, _ := json.Marshal(map[string]any{"items": items})
		_, _ = w.Write(b)
	})
}

func TestFanOutDedupesAndKeepsOrder(t *testing.T) {
	p := &products{calls: map[string]int{}}
	h := newHarness(t, options{routeSets: []bff.RouteSet{fanOutView(false, 0, 0)},
		handlers: map[string]http.Handler{"baskets": basket("b", "a", "b", "c", "a"), "catalog": p}})
	w := h.get(t, "/web/basket")
	want := `{"items":[{"sku":"b","title":"T b"},{"sku":"a","title":"T a"},{"sku":"c","title":"T c"}]}`
	if w.Code != http.StatusOK || w.Body.String() != want {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for sku, n := range p.calls {
		if n != 1 {
			t.Errorf("%s fetched %d times", sku, n)
		}
	}
}

func TestFanOutConcurrencyAndCap(t *testing.T) {
	skus := make([]string, 30)
	for i := range skus {
		skus[i] = string(rune('A' + i))
	}
	p := &products{calls: map[string]int{}}
	h := newHarness(t, options{routeSets: []bff.RouteSet{fanOutView(false, 20, 3)},
		handlers: map[string]http.Handler{"baskets": basket(skus...), "catalog": p}})
	w := h.get(t, "/web/basket")
	var got struct{ Items []any }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Items) != 20 {
		t.Fatalf("%d items (cap 20): %s", len(got.Items), w.Body)
	}
	if n := len(p.calls); n != 20 {
		t.Errorf("%d distinct calls, want the cap of 20", n)
	}
	if peak := p.peak.Load(); peak > 3 {
		t.Errorf("peak concurrency %d, want at most 3", peak)
	}
}

func TestFanOutElementFailure(t *testing.T) {
	p := &products{calls: map[string]int{}, fail: map[string]bool{"b": true}}
	tweak := func(_ string, c *upstream.Config) { c.Retry.Max = 0 }
	h := newHarness(t, options{routeSets: []bff.RouteSet{fanOutView(true, 0, 0)}, tweak: tweak,
		handlers: map[string]http.Handler{"baskets": basket("a", "b", "c"), "catalog": p}})
	w := h.get(t, "/web/basket")
	want := `{"items":[{"sku":"a","title":"T a"},null,{"sku":"c","title":"T c"}]}`
	if w.Code != http.StatusOK || w.Body.String() != want {
		t.Fatalf("optional: %d %s", w.Code, w.Body)
	}
	if got := w.Header().Get(bff.PartialHeader); got != "items;reason=error;status=500" {
		t.Errorf("%s = %q", bff.PartialHeader, got)
	}

	p2 := &products{calls: map[string]int{}, fail: map[string]bool{"b": true}}
	h2 := newHarness(t, options{routeSets: []bff.RouteSet{fanOutView(false, 0, 0)}, tweak: tweak,
		handlers: map[string]http.Handler{"baskets": basket("a", "b", "c"), "catalog": p2}})
	problem(t, h2.get(t, "/web/basket"), http.StatusBadGateway)
}

// A required call that needs an optional one which failed cannot run, and
// the view fails for the root cause: the status it calls for (504 for a
// timeout) and the upstream that failed, not a 502 naming an upstream
// never called. The dependent's own upstream sees nothing.
func TestRequiredCallFailsWithItsDependencysCause(t *testing.T) {
	var recsCalls atomic.Int64
	prefs := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	recs := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		recsCalls.Add(1)
		_, _ = w.Write([]byte(`{"items":[]}`))
	})
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.picks", Route: "/picks/{id}", Params: []aggregate.Param{{Name: "id", Pattern: "[0-9]+"}},
		Calls: []aggregate.Call{
			{Name: "prefs", Upstream: "prefs", Path: "/prefs/{id}", Optional: true, Timeout: 50 * time.Millisecond},
			{Name: "recs", Upstream: "recs", Path: "/recs", Query: "topic={prefs.topic}"},
		},
		Shape: []aggregate.Field{aggregate.List("recs", "recs.items", 0)},
	}}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"prefs": prefs, "recs": recs},
		tweak: func(_ string, c *upstream.Config) { c.Retry.Max = 0 }})
	p := problem(t, h.get(t, "/web/picks/7"), http.StatusGatewayTimeout)
	if p.Upstream != "prefs" || !strings.Contains(p.Detail, `"prefs"`) {
		t.Errorf("problem %+v; want it to name prefs, which timed out", p)
	}
	if n := recsCalls.Load(); n != 0 {
		t.Errorf("recs was called %d times without what it needs", n)
	}
}

// The same as TestRequiredCallFailsWithItsDependencysCause, one level
// deeper: prefs (optional) times out, topics (optional) needs prefs and
// so never runs, recs (required) needs topics. The view fails for the root
// cause, prefs, down the chain (the outermost DependencyError once named
// topics, never called, as the one that "did not answer in time").
func TestRequiredCallNamesTheRootOfADependencyChain(t *testing.T) {
	var topicsCalls, recsCalls atomic.Int64
	prefs := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	topics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		topicsCalls.Add(1)
		_, _ = w.Write([]byte(`{"id":"t1"}`))
	})
	recs := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		recsCalls.Add(1)
		_, _ = w.Write([]byte(`{"items":[]}`))
	})
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.picks", Route: "/picks/{id}", Params: []aggregate.Param{{Name: "id", Pattern: "[0-9]+"}},
		Calls: []aggregate.Call{
			{Name: "prefs", Upstream: "prefs", Path: "/prefs/{id}", Optional: true, Timeout: 50 * time.Millisecond},
			{Name: "topics", Upstream: "topics", Path: "/topics", Query: "pref={prefs.topic}", Optional: true},
			{Name: "recs", Upstream: "recs", Path: "/recs", Query: "topic={topics.id}"},
		},
		Shape: []aggregate.Field{aggregate.List("recs", "recs.items", 0)},
	}}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"prefs": prefs, "topics": topics, "recs": recs},
		tweak: func(_ string, c *upstream.Config) { c.Retry.Max = 0 }})
	p := problem(t, h.get(t, "/web/picks/7"), http.StatusGatewayTimeout)
	if p.Upstream != "prefs" || !strings.Contains(p.Detail, `"prefs"`) {
		t.Errorf("problem %+v; want it to name prefs, which timed out (topics and recs were never called: %d, %d calls)",
			p, topicsCalls.Load(), recsCalls.Load())
	}
}

// A required call whose placeholder the earlier answer lacks (an order
// without user_id) never runs: the view fails 502 naming the upstream whose
// answer was incomplete and the value, not the upstream never called.
func TestMissingPlaceholderNamesTheUpstreamThatLackedIt(t *testing.T) {
	var userCalls atomic.Int64
	orders := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"id":"o1"}`)) })
	users := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		userCalls.Add(1)
		_, _ = w.Write([]byte(`{"name":"Ada"}`))
	})
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.receipt", Route: "/receipt/{id}", Params: []aggregate.Param{{Name: "id", Pattern: "[0-9]+"}},
		Calls: []aggregate.Call{
			{Name: "order", Upstream: "orders", Path: "/orders/{id}"},
			{Name: "customer", Upstream: "users", Path: "/users/{order.user_id}"},
		},
		Shape: []aggregate.Field{aggregate.Pick("customer.name")},
	}}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"orders": orders, "users": users}})
	p := problem(t, h.get(t, "/web/receipt/7"), http.StatusBadGateway)
	if p.Upstream != "orders" || !strings.Contains(p.Detail, "user_id") || !strings.Contains(p.Detail, `"customer"`) {
		t.Errorf("problem %+v; want it to name orders, whose answer has no user_id, and the call that needed it", p)
	}
	if n := userCalls.Load(); n != 0 {
		t.Errorf("users was called %d times", n)
	}
}
