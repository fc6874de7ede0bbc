package bff_test

import (
	"context"
	"encoding/json"
	"io"
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

// cartUpstream keeps a cart; it can fail POSTs on demand.
type cartUpstream struct {
	mu       sync.Mutex
	items    []json.RawMessage
	posts    atomic.Int64
	failPost atomic.Bool
	keys     []string
}

func (c *cartUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Method == http.MethodPost {
		c.posts.Add(1)
		c.keys = append(c.keys, r.Header.Get("Idempotency-Key"))
		if c.failPost.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, `{"error":"json please"}`, http.StatusUnsupportedMediaType)
			return
		}
		b, _ := io.ReadAll(r.Body)
		c.items = append(c.items, b)
		_, _ = io.WriteString(w, `{"ok":true}`)
		return
	}
	out, _ := json.Marshal(map[string]any{"items": c.items})
	_, _ = w.Write(out)
}

func cartViews() []bff.RouteSet {
	return []bff.RouteSet{{Client: "web", Views: []aggregate.View{
		{
			Name: "web.cart", Route: "/cart",
			Calls: []aggregate.Call{{Name: "cart", Upstream: "carts", Path: "/cart"}},
			Cache: aggregate.CachePolicy{TTL: time.Minute},
			Shape: []aggregate.Field{aggregate.List("items", "cart.items", 0)},
		},
		{
			Name: "web.cart.add", Route: "/cart/items", Method: http.MethodPost,
			Body: &aggregate.BodyPolicy{MaxBytes: 200, Schema: json.RawMessage(`{"type":"object","required":["sku","qty"],
				"properties":{"sku":{"type":"string"},"qty":{"type":"integer","minimum":1}},"additionalProperties":false}`)},
			Invalidates: []string{"web.cart"},
			Calls: []aggregate.Call{
				{Name: "add", Upstream: "carts", Method: http.MethodPost, Path: "/cart/items", Body: "request"},
				{Name: "cart", Upstream: "carts", Path: "/cart", DependsOn: []string{"add"}},
			},
			Shape: []aggregate.Field{aggregate.List("items", "cart.items", 0)},
		},
	}}}
}

func post(h *harness, path, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.front.ServeHTTP(w, req)
	return w
}

// A mutation: the body checked against the view's schema, sent once, the
// updated cart read back, and the cached cart view dropped.
func TestMutation(t *testing.T) {
	cart := &cartUpstream{}
	h := newHarness(t, options{routeSets: cartViews(), handlers: map[string]http.Handler{"carts": cart}})
	if w := h.get(t, "/web/cart"); w.Body.String() != `{"items":[]}` {
		t.Fatalf("empty cart: %s", w.Body)
	}
	h.cache.Wait()
	if w := h.get(t, "/web/cart"); w.Header().Get("X-Cache") != "HIT" {
		t.Fatalf("cart not cached: %s", w.Header().Get("X-Cache"))
	}
	w := post(h, "/web/cart/items", `{"sku":"A-1","qty":2}`)
	if w.Code != http.StatusOK || w.Body.String() != `{"items":[{"sku":"A-1","qty":2}]}` || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("add: %d %s %v", w.Code, w.Body, w.Header())
	}
	if n := cart.posts.Load(); n != 1 {
		t.Errorf("%d POSTs reached the upstream; want 1", n)
	}
	if w := h.get(t, "/web/cart"); w.Header().Get("X-Cache") != "MISS" || !strings.Contains(w.Body.String(), "A-1") {
		t.Errorf("the cart after the mutation: %s %s; want a fresh read", w.Header().Get("X-Cache"), w.Body)
	}

	for _, tc := range []struct {
		body, ctype string
		code        int
		want        string
	}{
		{`{"sku":"A-1","qty":0}`, "application/json", 400, `"pointer":"/qty"`},
		{`{"sku":7,"qty":1}`, "application/json", 400, `"pointer":"/sku"`},
		{`{"sku":"A-1","qty":1,"price":0}`, "application/json", 400, bff.ProblemInvalidBody},
		{`{"qty":1}`, "application/json", 400, bff.ProblemInvalidBody},
		{`{"sku":`, "application/json", 400, "not valid JSON"},
		{`{"sku":"` + strings.Repeat("x", 300) + `","qty":1}`, "application/json", 413, bff.ProblemBodyTooLarge},
		{`sku=A-1`, "application/x-www-form-urlencoded", 415, bff.ProblemUnsupportedMediaType},
	} {
		w := post(h, "/web/cart/items", tc.body, "Content-Type", tc.ctype)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%.40s: %d %s; want %d with %s", tc.body, w.Code, w.Body, tc.code, tc.want)
		}
	}
	if n := cart.posts.Load(); n != 1 {
		t.Errorf("refused bodies reached the upstream: %d POSTs", n)
	}
}

// A POST against a failing upstream is made once; with an Idempotency-Key
// it may be retried, the key going along on every attempt.
func TestMutationRetriesOnlyWithIdempotencyKey(t *testing.T) {
	cart := &cartUpstream{}
	cart.failPost.Store(true)
	h := newHarness(t, options{routeSets: cartViews(), handlers: map[string]http.Handler{"carts": cart},
		tweak: func(_ string, c *upstream.Config) { c.Retry.Max = 2 }})
	if w := post(h, "/web/cart/items", `{"sku":"A-1","qty":1}`); w.Code != http.StatusBadGateway && w.Code != http.StatusServiceUnavailable {
		t.Errorf("failing upstream: %d %s", w.Code, w.Body)
	}
	if n := cart.posts.Load(); n != 1 {
		t.Errorf("without an Idempotency-Key the POST was sent %d times; want exactly 1", n)
	}
	cart.posts.Store(0)
	post(h, "/web/cart/items", `{"sku":"A-1","qty":1}`, "Idempotency-Key", "k-123")
	if n := cart.posts.Load(); n != 3 {
		t.Errorf("with an Idempotency-Key: %d attempts; want 3 (retried)", n)
	}
	cart.mu.Lock()
	defer cart.mu.Unlock()
	for _, k := range cart.keys[1:] {
		if k != "k-123" {
			t.Errorf("an attempt carried Idempotency-Key %q", k)
		}
	}
}

// An Idempotency-Key no client library would send (too long, not
// printable) is refused, not dropped: the caller relies on it to make a
// retry safe, and an upstream that refused it would answer for everyone.
func TestMutationRefusesAnOddIdempotencyKey(t *testing.T) {
	cart := &cartUpstream{}
	h := newHarness(t, options{routeSets: cartViews(), handlers: map[string]http.Handler{"carts": cart}})
	for _, key := range []string{strings.Repeat("k", 256), "k\x7f1"} {
		w := post(h, "/web/cart/items", `{"sku":"A-1","qty":1}`, "Idempotency-Key", key)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Idempotency-Key") {
			t.Errorf("Idempotency-Key %.20q: %d %s; want 400 naming the header", key, w.Code, w.Body)
		}
	}
	if n := cart.posts.Load(); n != 0 {
		t.Errorf("%d POSTs with a refused key reached the upstream", n)
	}
	if w := post(h, "/web/cart/items", `{"sku":"A-1","qty":1}`, "Idempotency-Key", strings.Repeat("k", 255)); w.Code != http.StatusOK {
		t.Errorf("a 255-byte key: %d %s", w.Code, w.Body)
	}
}

// A mutation's body is checked by a schema library that keeps the last of
// duplicate keys, then forwarded byte for byte: {"qty":0,"qty":1} passes
// "minimum: 1" and reaches the upstream, whose parser may well keep the
// first (gjson, fastjson, many streaming parsers do).
func TestMutationBodyWithDuplicateKeysIsRefused(t *testing.T) {
	cart := &cartUpstream{}
	h := newHarness(t, options{routeSets: cartViews(), handlers: map[string]http.Handler{"carts": cart}})
	w := post(h, "/web/cart/items", `{"sku":"A-1","qty":0,"qty":1}`)
	if n := cart.posts.Load(); n != 0 || w.Code != http.StatusBadRequest {
		cart.mu.Lock()
		t.Errorf("a body with qty twice (0, then 1): %d %s, %d POSTs reached the upstream with %s; want 400 and none",
			w.Code, w.Body, n, cart.items)
		cart.mu.Unlock()
	}
}

// A mutation whose upstream POST succeeded changed the data: the views it
// invalidates must be purged even if its client hangs up before the
// answer is written (here while an optional read-back is still running).
func TestMutationClientLeavingAfterCommitStillPurges(t *testing.T) {
	cart := &cartUpstream{}
	var block atomic.Bool
	readBack := make(chan struct{}, 1)
	carts := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && block.Load() {
			readBack <- struct{}{}
			<-r.Context().Done() // the read-back is slow; the client leaves meanwhile
			return
		}
		cart.ServeHTTP(w, r)
	})
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{
		{
			Name: "web.cart", Route: "/cart",
			Calls: []aggregate.Call{{Name: "cart", Upstream: "carts", Path: "/cart"}},
			Cache: aggregate.CachePolicy{TTL: time.Hour},
			Shape: []aggregate.Field{aggregate.List("items", "cart.items", 0)},
		},
		{
			Name: "web.cart.add", Route: "/cart/items", Method: http.MethodPost,
			Body:        &aggregate.BodyPolicy{MaxBytes: 200, Schema: json.RawMessage(`{"type":"object"}`)},
			Invalidates: []string{"web.cart"},
			Calls: []aggregate.Call{
				{Name: "add", Upstream: "carts", Method: http.MethodPost, Path: "/cart/items", Body: "request"},
				{Name: "cart", Upstream: "carts", Path: "/cart", DependsOn: []string{"add"}, Optional: true},
			},
			Shape: []aggregate.Field{aggregate.List("items", "cart.items", 0)},
		},
	}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"carts": carts}})
	if w := h.get(t, "/web/cart"); w.Body.String() != `{"items":[]}` {
		t.Fatalf("empty cart: %d %s", w.Code, w.Body)
	}
	h.cache.Wait()

	block.Store(true)
	ctx, hangUp := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodPost, "/web/cart/items", strings.NewReader(`{"sku":"A-1"}`)).WithContext(ctx)
	req.Header.Set("Content-Type", "application/json")
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.front.ServeHTTP(httptest.NewRecorder(), req)
	}()
	<-readBack // the POST has been answered: the item is in the cart upstream
	hangUp()
	<-done
	block.Store(false)
	if n := cart.posts.Load(); n != 1 {
		t.Fatalf("%d POSTs reached the upstream; want 1", n)
	}

	if w := h.get(t, "/web/cart"); !strings.Contains(w.Body.String(), "A-1") {
		t.Errorf("after a mutation the upstream took, the cart is %s (X-Cache %s); want the item: the invalidated view was not purged because the mutation's client left",
			w.Body, w.Header().Get("X-Cache"))
	}
}
