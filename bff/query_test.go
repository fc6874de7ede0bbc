package bff_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

func ptr[T any](v T) *T { return &v }

// A view's query parameters are typed and bounded, filled with defaults,
// passed to the upstreams through templates, and part of the cache key
// (declared ones only, in declared order).
func TestQueryParameters(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	feed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RawQuery)
		mu.Unlock()
		b, _ := json.Marshal(map[string]string{"q": r.URL.RawQuery})
		_, _ = w.Write(b)
	})
	view := func(strict bool) []bff.RouteSet {
		return []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
			Name: "web.feed", Route: "/feed/{id}",
			Params: []aggregate.Param{{Name: "id", Pattern: `[0-9]+`}},
			Query: []aggregate.QueryParam{
				{Name: "limit", Type: "int", Min: ptr(int64(1)), Max: ptr(int64(50)), Default: ptr("10")},
				{Name: "sort", Pattern: `new|top`, Default: ptr("new")},
				{Name: "tag"},
			},
			RejectUnknownQuery: strict,
			Calls:              []aggregate.Call{{Name: "f", Upstream: "feed", Path: "/feed/{id}", Query: "limit={limit}&sort={sort}&tag={tag}"}},
			Cache:              aggregate.CachePolicy{TTL: time.Minute},
			Shape:              []aggregate.Field{aggregate.Rename("upstream_query", "f.q")},
		}}}}
	}
	h := newHarness(t, options{routeSets: view(false), handlers: map[string]http.Handler{"feed": feed}})

	ok := func(path, wantQuery, wantCache string) {
		t.Helper()
		w := h.get(t, path)
		var got struct {
			Q string `json:"upstream_query"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &got)
		if w.Code != http.StatusOK || got.Q != wantQuery || w.Header().Get("X-Cache") != wantCache {
			t.Errorf("%s: %d %s X-Cache %s; want the upstream asked %q, %s", path, w.Code, w.Body, w.Header().Get("X-Cache"), wantQuery, wantCache)
		}
		h.cache.Wait()
	}
	ok("/web/feed/1?tag=a", "limit=10&sort=new&tag=a", "MISS")
	ok("/web/feed/1?tag=a&limit=10", "limit=10&sort=new&tag=a", "HIT") // the default, spelled out
	ok("/web/feed/1?sort=new&junk=x&tag=a", "limit=10&sort=new&tag=a", "HIT")
	ok("/web/feed/1?limit=5&tag=a", "limit=5&sort=new&tag=a", "MISS")
	ok("/web/feed/1?tag=a%26b%3Dc", "limit=10&sort=new&tag=a%26b%3Dc", "MISS") // one value, escaped
	// A purge by path reaches the entries of every query of that path.
	if err := h.front.Purge("", "/web/feed/1"); err != nil {
		t.Fatal(err)
	}
	ok("/web/feed/1?tag=a", "limit=10&sort=new&tag=a", "MISS")

	bad := map[string]string{
		"/web/feed/1?tag=a&limit=0":         `query parameter \"limit\" is out of range 1..50`,
		"/web/feed/1?tag=a&limit=51":        `query parameter \"limit\" is out of range 1..50`,
		"/web/feed/1?tag=a&limit=ten":       `query parameter \"limit\" is not a whole number`,
		"/web/feed/1?tag=a&sort=old":        `query parameter \"sort\" does not match its pattern`,
		"/web/feed/1":                       `query parameter \"tag\" is required`,
		"/web/feed/1?tag=a&tag=b":           `query parameter \"tag\" is given more than once`,
		"/web/feed/1?tag=a&limit=%zz":       `the query string is not well-formed`,
		"/web/feed/1?tag=" + long(300, 'x'): `query parameter \"tag\" does not match its pattern`,
	}
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	for path, detail := range bad {
		w := h.get(t, path)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), detail) || !strings.Contains(w.Body.String(), bff.ProblemInvalidParameter) {
			t.Errorf("%s: %d %s; want 400 saying %s", path, w.Code, w.Body, detail)
		}
	}
	mu.Lock()
	if len(seen) != before {
		t.Errorf("a rejected request reached the upstream: %q", seen[before:])
	}
	mu.Unlock()

	strict := newHarness(t, options{routeSets: view(true), handlers: map[string]http.Handler{"feed": feed}})
	if w := strict.get(t, "/web/feed/1?tag=a&junk=x"); w.Code != http.StatusBadRequest ||
		!strings.Contains(w.Body.String(), `query parameter \"junk\" is not a parameter of this view`) {
		t.Errorf("strict view, unknown parameter: %d %s", w.Code, w.Body)
	}
}

func long(n int, c byte) string { return strings.Repeat(string(c), n) }

// FuzzQueryParameters: any query string gives 200 or 400, never a panic or
// a 5xx, and a 200 only for values the declaration allows.
func FuzzQueryParameters(f *testing.F) {
	f.Add("tag=a&limit=5")
	f.Add("limit=%zz")
	f.Add("tag=a&tag=b&limit=-1")
	f.Add("tag=" + strings.Repeat("x", 300))
	feed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"q":"x"}`)) })
	ten := "10"
	h := newHarness(f, options{routeSets: []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.feed", Route: "/feed",
		Query: []aggregate.QueryParam{
			{Name: "limit", Type: "int", Min: ptr(int64(1)), Max: ptr(int64(50)), Default: &ten},
			{Name: "tag", Pattern: `[a-z]{1,8}`},
		},
		Calls: []aggregate.Call{{Name: "f", Upstream: "feed", Path: "/f", Query: "limit={limit}&tag={tag}"}},
		Shape: []aggregate.Field{aggregate.Rename("q", "f.q")},
	}}}}, handlers: map[string]http.Handler{"feed": feed}, cacheBytes: -1})
	f.Fuzz(func(t *testing.T, q string) {
		req := httptest.NewRequest(http.MethodGet, "/web/feed", nil)
		req.URL.RawQuery = q
		w := httptest.NewRecorder()
		h.front.ServeHTTP(w, req)
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Fatalf("?%s: %d %s", q, w.Code, w.Body)
		}
	})
}

// A `param` field writes an int parameter into the body as it came, so
// only JSON's form of a number is taken: "007" would make a cached 200
// that is not JSON.
func TestIntParamIsWrittenAsJSON(t *testing.T) {
	feed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"items":[]}`)) })
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.feed", Route: "/feed",
		Query: []aggregate.QueryParam{{Name: "limit", Type: "int", Min: ptr(int64(1)), Max: ptr(int64(50)), Default: ptr("10")}},
		Calls: []aggregate.Call{{Name: "f", Upstream: "feed", Path: "/feed", Query: "limit={limit}"}},
		Cache: aggregate.CachePolicy{TTL: time.Minute},
		Shape: []aggregate.Field{{Name: "limit", Param: "limit"}, aggregate.List("items", "f.items", 0)},
	}}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"feed": feed}})
	for q, want := range map[string]int{"7": 200, "-0": 400, "50": 200, "007": 400, "-05": 400, "0x7": 400} {
		w := h.get(t, "/web/feed?limit="+q)
		if w.Code != want || w.Code == http.StatusOK && !json.Valid(w.Body.Bytes()) {
			t.Errorf("?limit=%s: %d %s; want %d and JSON", q, w.Code, w.Body, want)
		}
	}
}

// An empty value never removes a path segment from an upstream URL: a
// string query parameter without a pattern takes "", and in the path
// /items/{q}/details it would ask for /items//details (or, at the end,
// /items/: the collection instead of one item). It is a 400, before any
// upstream call.
func TestEmptyValueDoesNotCollapseAPathSegment(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	items := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.EscapedPath())
		mu.Unlock()
		b, _ := json.Marshal(map[string]string{"path": r.URL.EscapedPath()})
		_, _ = w.Write(b)
	})
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.item", Route: "/item",
		Query: []aggregate.QueryParam{{Name: "q"}},
		Calls: []aggregate.Call{{Name: "item", Upstream: "items", Path: "/items/{q}/details"}},
		Shape: []aggregate.Field{aggregate.Rename("path", "item.path")},
	}}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"items": items}, cacheBytes: -1})
	w := h.get(t, "/web/item?q=")
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `query parameter \"q\" is empty`) {
		t.Errorf("?q=: %d %s; want 400 naming q", w.Code, w.Body)
	}
	if w := h.get(t, "/web/item?q=a%2Fb"); w.Code != http.StatusOK {
		t.Errorf("?q=a%%2Fb: %d %s", w.Code, w.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "/items/a%2Fb/details" {
		t.Errorf("the upstream was asked for %q; want only /items/a%%2Fb/details", paths)
	}
}

// The access log holds the path, never the query: a query value a view
// refuses (400) is not copied into the line's error either, since callers
// put e-mail addresses and tokens there.
func TestAccessLogNeverHoldsARefusedQueryValue(t *testing.T) {
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.lookup", Route: "/lookup",
		Query: []aggregate.QueryParam{{Name: "email", Pattern: `[a-z]+@example\.com`}},
		Calls: []aggregate.Call{{Name: "u", Upstream: "users", Path: "/users", Query: "email={email}"}},
		Shape: []aggregate.Field{aggregate.Rename("name", "u.name")},
	}}}}
	users := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"name":"a"}`)) })
	var logs lockedLog
	f := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"users": users}, accessLog: &logs}).front
	const secret = "Jane.Doe+SECRET-4711@corp.example.org"
	req := httptest.NewRequest(http.MethodGet, "/web/lookup?email="+strings.ReplaceAll(secret, "+", "%2B"), nil)
	w := httptest.NewRecorder()
	f.ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("status %d; want 400 for a value that does not match the pattern", w.Code)
	}
	if line := logs.String(); line == "" || strings.Contains(line, "SECRET-4711") {
		t.Errorf("the access log holds the refused query value (or nothing was logged):\n%s", line)
	}
}
