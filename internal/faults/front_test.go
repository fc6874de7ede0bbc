package faults_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/aggregate/viewfile"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/faults"
	"github.com/bffproxy/bff/upstream"
)

// faultyFront is a front with fault injection on, as in demo mode: its
// one upstream "carts" is wrapped by faults.Wrap and counts the requests
// that reach it.
func faultyFront(t *testing.T, views string, cacheBytes int64) (*bff.Front, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"items":[]}`)
	}))
	t.Cleanup(srv.Close)
	c, err := upstream.New(upstream.Config{Name: "carts", BaseURL: srv.URL,
		Retry: upstream.RetryConfig{WaitMin: time.Millisecond, WaitMax: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	vs, err := viewfile.Parse("review3.yaml", []byte(views))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cache.New(cache.Config{MaxBytes: cacheBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	front, err := bff.New(bff.Config{
		Engine:         aggregate.NewEngine(map[string]aggregate.Doer{"carts": faults.Wrap("carts", c)}),
		Cache:          rc,
		RouteSets:      []bff.RouteSet{{Client: "web", Views: vs}},
		FaultInjection: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return front, &calls
}

// A malformed Bff-Fault header is a 400 and no upstream is called (README:
// "bad-request 400: a malformed Bff-Fault header (demo only)"; faults.Wrap
// counts on it: "the front rejects a bad header before any call"), for a
// mutation too. The front once checked it only for reads, and the wrapper,
// finding it malformed, made the real call: a frontend engineer who meant
// "carts=503" and typed "carts=530x" got a 200 and an item really added.
func TestMalformedFaultOnMutationSendsNothing(t *testing.T) {
	front, calls := faultyFront(t, `
views:
  - name: web.cart.add
    route: /cart/items
    method: POST
    body:
      schema: {type: object}
    calls:
      add: {upstream: carts, method: POST, path: /cart/items, body: request}
    shape:
      ok: add.ok
`, 0)
	req := httptest.NewRequest(http.MethodPost, "/web/cart/items", strings.NewReader(`{"sku":"a"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(faults.Header, "carts=530x")
	w := httptest.NewRecorder()
	front.ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest || calls.Load() != 0 {
		t.Errorf("POST with %s: carts=530x: %d %s, %d upstream requests; want 400 bad-request and none", faults.Header, w.Code, w.Body, calls.Load())
	}
}

// "Never cached": a faulted request skips the BFF's cache, and since its
// answer and the healthy one share a URL, both say they vary with
// Bff-Fault; otherwise the browser (or any cache in front) would answer
// the faulted request from its copy of the healthy public answer.
func TestFaultedAnswersVaryOnTheFaultHeader(t *testing.T) {
	front, _ := faultyFront(t, `
views:
  - name: web.cart
    route: /cart
    cache: {ttl: 30s}
    calls:
      cart: {upstream: carts, path: /cart}
    shape:
      items: {list: cart.items}
`, 1<<20)
	w := httptest.NewRecorder()
	front.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/web/cart", nil))
	cc, vary := w.Header().Get("Cache-Control"), strings.Join(w.Header().Values("Vary"), ", ")
	if w.Code != http.StatusOK || !strings.Contains(cc, "max-age") {
		t.Fatalf("healthy answer: %d, Cache-Control %q", w.Code, cc)
	}
	if !strings.Contains(strings.ToLower(vary), strings.ToLower(faults.Header)) {
		t.Errorf("healthy answer with fault injection on: Cache-Control %q, Vary %q; a cache keeps it for requests that carry %s", cc, vary, faults.Header)
	}
}
