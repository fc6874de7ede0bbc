package bff_test

import (
	"strconv"

	"encoding/json"
	"fmt"
	"github.com/klauspost/compress/zstd"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/demo"
	"github.com/bffproxy/bff/upstream"
)

// The home views must have exactly WORKLOAD.md's shapes, built from the
// upstreams' own values.
func TestHomeViewsHaveWorkloadShapes(t *testing.T) {
	h := newHarness(t, options{})
	user := upstreamJSON(t, "users", "/users/7")
	orders := upstreamJSON(t, "orders", "/orders?user_id=7")["orders"].([]any)
	recs := upstreamJSON(t, "recs", "/recommendations?user_id=7")["items"].([]any)

	cases := []struct {
		path                 string
		userKeys, orderKeys  []string
		recKeys              []string
		orderCount, recCount int
	}{
		{"/web/home/7", []string{"id", "name", "email", "avatar_url"},
			[]string{"id", "status", "total_cents", "created_at", "item_count"},
			[]string{"id", "title", "price_cents", "image_url", "rating"}, 10, 10},
		{"/mobile/home/7", []string{"id", "name", "avatar_url"},
			[]string{"id", "status", "total_cents"},
			[]string{"id", "title", "image_url"}, 3, 5},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			w := h.get(t, tc.path)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			body := w.Body.Bytes()
			equalKeys(t, "top", body, "user", "orders", "recommendations")
			top := decodeObject(t, body)

			equalKeys(t, "user", top["user"], tc.userKeys...)
			var gotUser map[string]any
			_ = json.Unmarshal(top["user"], &gotUser)
			for _, k := range tc.userKeys {
				if fmt.Sprint(gotUser[k]) != fmt.Sprint(user[k]) {
					t.Errorf("user.%s = %v, upstream has %v", k, gotUser[k], user[k])
				}
			}

			gotOrders := decodeList(t, top["orders"])
			if len(gotOrders) != tc.orderCount {
				t.Fatalf("orders: %d, want %d", len(gotOrders), tc.orderCount)
			}
			for i, raw := range gotOrders {
				equalKeys(t, fmt.Sprintf("orders[%d]", i), raw, tc.orderKeys...)
				var o map[string]any
				_ = json.Unmarshal(raw, &o)
				up := orders[i].(map[string]any)
				for _, k := range tc.orderKeys {
					want := up[k]
					if k == "item_count" {
						want = float64(len(up["items"].([]any)))
					}
					if fmt.Sprint(o[k]) != fmt.Sprint(want) {
						t.Errorf("orders[%d].%s = %v, want %v", i, k, o[k], want)
					}
				}
			}

			gotRecs := decodeList(t, top["recommendations"])
			if len(gotRecs) != tc.recCount {
				t.Fatalf("recommendations: %d, want %d", len(gotRecs), tc.recCount)
			}
			for i, raw := range gotRecs {
				equalKeys(t, fmt.Sprintf("recommendations[%d]", i), raw, tc.recKeys...)
				var r map[string]any
				_ = json.Unmarshal(raw, &r)
				for _, k := range tc.recKeys {
					if fmt.Sprint(r[k]) != fmt.Sprint(recs[i].(map[string]any)[k]) {
						t.Errorf("recommendations[%d].%s = %v, want %v", i, k, r[k], recs[i].(map[string]any)[k])
					}
				}
			}
		})
	}
}

// Each upstream handler waits until all three were called: a sequential
// engine would never finish.
func TestCallsRunInParallel(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(3)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	barrier := func(body string) http.Handler {
		var once sync.Once
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			once.Do(arrived.Done)
			select {
			case <-all:
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(body))
			case <-time.After(5 * time.Second):
				http.Error(w, "not all calls arrived: the fan-out is sequential", http.StatusInternalServerError)
			}
		})
	}
	h := newHarness(t, options{
		routeSets: builtinRoutes(t)[:1],
		handlers: map[string]http.Handler{
			"users":   barrier(`{"id":1,"name":"A","email":"a@x","avatar_url":"u"}`),
			"orders":  barrier(`{"orders":[]}`),
			"recs":    barrier(`{"items":[]}`),
			"catalog": status500,
		},
		tweak: func(_ string, c *upstream.Config) { c.Retry.Max = 0 },
	})
	w := h.get(t, "/web/home/1")
	if w.Code != http.StatusOK || w.Header().Get(bff.PartialHeader) != "" {
		t.Fatalf("status %d partial %q: %s", w.Code, w.Header().Get(bff.PartialHeader), w.Body)
	}
	want := `{"user":{"id":1,"name":"A","email":"a@x","avatar_url":"u"},"orders":[],"recommendations":[]}`
	if w.Body.String() != want {
		t.Errorf("body = %s, want %s", w.Body, want)
	}
}

func TestOptionalFailureGivesMarkedPartial(t *testing.T) {
	cases := []struct {
		name    string
		recs    http.Handler
		tweak   func(*upstream.Config)
		partial string
	}{
		{"error", status500, nil, "recommendations;reason=error;status=500"},
		{"timeout", slow, func(c *upstream.Config) { c.Timeout = 30 * time.Millisecond }, "recommendations;reason=timeout"},
		{"breaker open", status500, func(c *upstream.Config) {
			c.Breaker.ConsecutiveFailures = 1
			c.Breaker.OpenTimeout = time.Hour
			c.Retry.Max = 0
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			handlers := demoHandlers()
			handlers["recs"] = tc.recs
			h := newHarness(t, options{handlers: handlers, cacheBytes: -1, tweak: func(name string, c *upstream.Config) {
				if name == "recs" && tc.tweak != nil {
					tc.tweak(c)
				}
			}})
			w := h.get(t, "/web/home/7")
			if tc.partial == "" { // breaker: the first failure opened it
				w = h.get(t, "/web/home/7")
				tc.partial = "recommendations;reason=breaker-open"
			}
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := w.Header().Get(bff.PartialHeader); got != tc.partial {
				t.Errorf("%s = %q, want %q", bff.PartialHeader, got, tc.partial)
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control of a partial response = %q, want no-store", cc)
			}
			if w.Header().Get("X-Request-Id") == "" {
				t.Errorf("a partial response should name its request ID")
			}
			top := decodeObject(t, w.Body.Bytes())
			if string(top["recommendations"]) != "[]" {
				t.Errorf("recommendations = %s, want []", top["recommendations"])
			}
			if len(decodeList(t, top["orders"])) != 10 || !strings.Contains(string(top["user"]), `"id":7`) {
				t.Errorf("the other parts must be complete: %s", w.Body)
			}
		})
	}
}

func TestRequiredFailureGivesProblem(t *testing.T) {
	cases := []struct {
		name   string
		users  http.Handler
		tweak  func(*upstream.Config)
		prime  bool // one request first, to open the breaker
		status int
		typ    string
	}{
		{"upstream error", status500, nil, false, http.StatusBadGateway, bff.ProblemUpstreamError},
		{"timeout", slow, func(c *upstream.Config) { c.Timeout = 30 * time.Millisecond }, false, http.StatusGatewayTimeout, bff.ProblemUpstreamTimeout},
		{"breaker open", status500, func(c *upstream.Config) {
			c.Breaker.ConsecutiveFailures = 1
			c.Breaker.OpenTimeout = time.Hour
			c.Retry.Max = 0
		}, true, http.StatusServiceUnavailable, bff.ProblemUpstreamUnavailable},
		{"not found", http.NotFoundHandler(), nil, false, http.StatusNotFound, bff.ProblemNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			handlers := demoHandlers()
			handlers["users"] = tc.users
			h := newHarness(t, options{handlers: handlers, tweak: func(name string, c *upstream.Config) {
				if name == "users" && tc.tweak != nil {
					tc.tweak(c)
				}
			}})
			if tc.prime {
				h.get(t, "/mobile/home/7")
			}
			before := h.calls("users")
			w := h.get(t, "/mobile/home/7")
			p := problem(t, w, tc.status)
			if p.Type != tc.typ || p.View != "mobile.home" || p.Upstream != "users" {
				t.Errorf("problem = %+v", p)
			}
			if strings.Contains(w.Body.String(), "secret") {
				t.Errorf("upstream body leaked: %s", w.Body)
			}
			if tc.prime && h.calls("users") != before {
				t.Errorf("an open breaker must not call the upstream")
			}
			if tc.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
		})
	}
}

func TestInvalidParameterIs400WithoutUpstreamCalls(t *testing.T) {
	h := newHarness(t, options{})
	for _, path := range []string{
		"/web/home/abc", "/web/home/7a", "/web/home/-7", "/web/home/%2e%2e", "/web/home/1%2F2",
		"/mobile/home/7%20", "/web/home/" + strings.Repeat("9", 40), "/web/orders/..%2F..%2Fadmin",
	} {
		w := h.get(t, path)
		p := problem(t, w, http.StatusBadRequest)
		if p.Type != bff.ProblemInvalidParameter {
			t.Errorf("%s: problem %+v", path, p)
		}
	}
	if n := h.totalCalls(); n != 0 {
		t.Errorf("upstream calls = %d, want 0", n)
	}
}

func TestConcurrentIdenticalMissesMakeOneCallPerUpstream(t *testing.T) {
	release := make(chan struct{})
	gated := func(name string) http.Handler {
		next := demoHandlers()[name]
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
			next.ServeHTTP(w, r)
		})
	}
	handlers := demoHandlers()
	for _, n := range []string{"users", "orders", "recs"} {
		handlers[n] = gated(n)
	}
	h := newHarness(t, options{handlers: handlers})
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	bodies := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := h.get(t, "/web/home/42")
			codes[i], bodies[i] = w.Code, w.Body.String()
		}()
	}
	waitFor(t, "all requests to join one execution", func() bool { return h.front.Coalesced() == n-1 })
	close(release)
	wg.Wait()
	for i := range n {
		if codes[i] != http.StatusOK || bodies[i] != bodies[0] {
			t.Fatalf("request %d: %d %s", i, codes[i], bodies[i])
		}
	}
	for _, name := range []string{"users", "orders", "recs"} {
		if c := h.calls(name); c != 1 {
			t.Errorf("%s calls = %d, want 1", name, c)
		}
	}
}

func TestCacheHitAgeAndETag(t *testing.T) {
	h := newHarness(t, options{})
	first := h.get(t, "/web/home/7")
	if first.Header().Get("X-Cache") != "MISS" || first.Header().Get("Server-Timing") == "" {
		t.Fatalf("first: %v", first.Header())
	}
	etag := first.Header().Get("Etag")
	if !strings.HasPrefix(etag, `W/"`) {
		t.Fatalf("ETag = %q", etag)
	}
	if cc := first.Header().Get("Cache-Control"); cc != "public, max-age=30" {
		t.Errorf("Cache-Control = %q", cc)
	}
	if v := first.Header().Get("Vary"); !strings.Contains(v, "Accept-Encoding") {
		t.Errorf("Vary = %q", v)
	}
	h.cache.Wait()
	calls := h.totalCalls()

	second := h.get(t, "/web/home/7")
	if second.Header().Get("X-Cache") != "HIT" || second.Header().Get("Age") == "" {
		t.Errorf("second: X-Cache %q Age %q", second.Header().Get("X-Cache"), second.Header().Get("Age"))
	}
	if second.Body.String() != first.Body.String() || second.Header().Get("Etag") != etag {
		t.Errorf("a hit must serve the same bytes and ETag")
	}
	if h.totalCalls() != calls {
		t.Errorf("a hit called upstreams")
	}

	for _, inm := range []string{etag, strings.TrimPrefix(etag, "W/"), `"other", ` + etag, "*"} {
		w := h.get(t, "/web/home/7", "If-None-Match", inm)
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("Etag") != etag {
			t.Errorf("If-None-Match %s: %d body %d etag %q", inm, w.Code, w.Body.Len(), w.Header().Get("Etag"))
		}
	}
	if w := h.get(t, "/web/home/7", "If-None-Match", `W/"nope"`); w.Code != http.StatusOK {
		t.Errorf("mismatched ETag: %d", w.Code)
	}
	// Also on a miss: the cache off, the ETag still works.
	off := newHarness(t, options{cacheBytes: -1})
	w := off.get(t, "/web/home/7", "If-None-Match", etag)
	if w.Code != http.StatusNotModified || w.Header().Get("X-Cache") != "MISS" {
		t.Errorf("cache off: %d %s", w.Code, w.Header().Get("X-Cache"))
	}
}

func TestCacheOffAlwaysMisses(t *testing.T) {
	h := newHarness(t, options{cacheBytes: -1})
	for range 3 {
		if w := h.get(t, "/mobile/home/3"); w.Header().Get("X-Cache") != "MISS" {
			t.Fatal("cache off served a hit")
		}
	}
	if c := h.calls("users"); c != 3 {
		t.Errorf("users calls = %d, want 3", c)
	}
}

func TestErrorsAreNotCachedAndPartialsExpireFast(t *testing.T) {
	handlers := demoHandlers()
	h := newHarness(t, options{handlers: handlers, partialTTL: 20 * time.Millisecond,
		tweak: func(_ string, c *upstream.Config) { c.Retry.Max = 0 }})
	h.upstreams["users"].set(status500)
	if w := h.get(t, "/web/home/8"); w.Code != http.StatusBadGateway {
		t.Fatalf("status %d", w.Code)
	}
	h.upstreams["users"].set(handlers["users"])
	h.cache.Wait()
	if w := h.get(t, "/web/home/8"); w.Code != http.StatusOK || w.Header().Get("X-Cache") != "MISS" {
		t.Fatalf("after the upstream recovered: %d %s", w.Code, w.Header().Get("X-Cache"))
	}

	h.upstreams["recs"].set(status500)
	if w := h.get(t, "/web/home/9"); w.Header().Get(bff.PartialHeader) == "" {
		t.Fatal("expected a partial response")
	}
	h.upstreams["recs"].set(handlers["recs"])
	waitFor(t, "the partial response to expire", func() bool {
		w := h.get(t, "/web/home/9")
		return w.Header().Get(bff.PartialHeader) == "" && w.Code == http.StatusOK
	})
}

// Compression follows Accept-Encoding with q-values: zstd or gzip,
// whichever the client prefers (zstd on a tie), none for small bodies.
func TestCompression(t *testing.T) {
	h := newHarness(t, options{})
	plain := h.get(t, "/web/home/7").Body.Bytes()
	for ae, want := range map[string]string{
		"gzip": "gzip", "br, gzip;q=0.5": "gzip", "gzip, deflate, br": "gzip",
		"*": "zstd", "zstd": "zstd", "gzip, deflate, br, zstd": "zstd", "zstd;q=0.5, gzip": "gzip", "gzip;q=0, *": "zstd",
		"": "", "gzip;q=0": "", "identity": "", "br": "", "zstd;q=0, gzip;q=0": "",
	} {
		w := h.get(t, "/web/home/7", "Accept-Encoding", ae)
		got := w.Header().Get("Content-Encoding")
		if got != want {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", ae, got, want)
			continue
		}
		var body []byte
		switch got {
		case "gzip":
			body = gunzip(t, w.Body.Bytes())
		case "zstd":
			d, err := zstd.NewReader(nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err = d.DecodeAll(w.Body.Bytes(), nil)
			d.Close()
			if err != nil {
				t.Fatalf("zstd: %v", err)
			}
		default:
			body = w.Body.Bytes()
		}
		if string(body) != string(plain) {
			t.Errorf("Accept-Encoding %q: decoded body differs", ae)
		}
		if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
			t.Errorf("Accept-Encoding %q: Content-Length %s for %d bytes", ae, cl, w.Body.Len())
		}
	}
	// Two Accept-Encoding lines are one list.
	req := httptest.NewRequest(http.MethodGet, "/web/home/7", nil)
	req.Header.Add("Accept-Encoding", "identity")
	req.Header.Add("Accept-Encoding", "gzip")
	w := httptest.NewRecorder()
	h.front.ServeHTTP(w, req)
	if got := w.Header().Get("Content-Encoding"); got != "gzip" || string(gunzip(t, w.Body.Bytes())) != string(plain) {
		t.Errorf("Accept-Encoding on two lines, identity then gzip: Content-Encoding %q", got)
	}
	// A small body is sent as it is.
	small := newHarness(t, options{routeSets: profileView(aggregate.CachePolicy{TTL: time.Minute}),
		handlers: map[string]http.Handler{"users": &switchable{}}})
	if w := small.get(t, "/web/profile/1", "Accept-Encoding", "zstd, gzip"); w.Header().Get("Content-Encoding") != "" {
		t.Errorf("a %d-byte body was compressed", w.Body.Len())
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	h := newHarness(t, options{})
	w := h.get(t, "/web/nope")
	p := problem(t, w, http.StatusNotFound)
	if p.Type != bff.ProblemNotFound || p.Instance != "/web/nope" || p.RequestID == "" || w.Header().Get("X-Request-Id") != p.RequestID {
		t.Errorf("problem = %+v, X-Request-Id %q", p, w.Header().Get("X-Request-Id"))
	}
	if w := h.get(t, "/web/nope", "X-Request-Id", "mine-1"); w.Header().Get("X-Request-Id") != "mine-1" {
		t.Errorf("the caller's ID is not echoed on an error: %q", w.Header().Get("X-Request-Id"))
	}
	problem(t, h.get(t, "/desktop/home/7"), http.StatusNotFound)
	req := httptest.NewRequest(http.MethodPost, "/web/home/7", nil)
	w = httptest.NewRecorder()
	h.front.ServeHTTP(w, req)
	problem(t, w, http.StatusMethodNotAllowed)
}

// Path parameters reach the upstream as one escaped segment under its
// prefix, whatever the client sends.
func TestPathParametersStayInOneSegment(t *testing.T) {
	seen := make(chan string, 16)
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.RequestURI
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	rs := bff.RouteSet{Client: "web", Views: []aggregate.View{{
		Name: "web.item", Route: "/items/{name}",
		Params: []aggregate.Param{{Name: "name", Pattern: `.{1,64}`}},
		Calls:  []aggregate.Call{{Name: "item", Upstream: "items", Path: "/v1/items/{name}", Query: "q={name}"}},
		Shape:  []aggregate.Field{aggregate.Rename("ok", "item.ok")},
	}}}
	h := newHarness(t, options{routeSets: []bff.RouteSet{rs}, handlers: map[string]http.Handler{"items": echo}})
	cases := map[string]string{
		"a%2Fb":       "/v1/items/a%2Fb?q=a%2Fb",
		"x%3Fy%3Dz":   "/v1/items/x%3Fy=z?q=x%3Fy%3Dz",
		"x%23frag":    "/v1/items/x%23frag?q=x%23frag",
		"..%2F..%2Fa": "/v1/items/..%2F..%2Fa?q=..%2F..%2Fa",
		"caf%C3%A9":   "/v1/items/caf%C3%A9?q=caf%C3%A9",
	}
	// The front routes views itself; mounted under another chi router,
	// chi's routing state comes in the request's context instead.
	parent := chi.NewRouter()
	parent.Mount("/", h.front)
	for name, srv := range map[string]http.Handler{"front": h.front, "under chi": parent} {
		for _, dots := range []string{"..", "%2e%2e", "%2E", "."} {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/web/items/"+dots, nil))
			problem(t, w, http.StatusBadRequest)
		}
		for in, want := range cases {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/web/items/"+in, nil))
			if w.Code != http.StatusOK {
				t.Errorf("%s: %s: status %d %s", name, in, w.Code, w.Body)
				continue
			}
			if got := <-seen; got != want {
				t.Errorf("%s: %s: upstream saw %s, want %s", name, in, got, want)
			}
		}
	}
}

// Per-user views are keyed by the caller: nobody gets another's response.
func TestPerUserCacheIsolation(t *testing.T) {
	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := r.Header.Get("Authorization")
		b, _ := json.Marshal(map[string]string{"who": who})
		_, _ = w.Write(b)
	})
	rs := bff.RouteSet{Client: "web", Views: []aggregate.View{{
		Name: "web.me", Route: "/me",
		Calls: []aggregate.Call{{Name: "me", Upstream: "accounts", Path: "/me"}},
		Cache: aggregate.CachePolicy{TTL: time.Minute, Scope: aggregate.ScopeUser},
		Shape: []aggregate.Field{aggregate.Rename("who", "me.who")},
	}}}
	h := newHarness(t, options{routeSets: []bff.RouteSet{rs}, handlers: map[string]http.Handler{"accounts": me},
		forwardsAuth: map[string]bool{"accounts": true}})
	users := []string{"Bearer alice", "Bearer bob", ""}
	for round := range 3 {
		for _, u := range users {
			w := h.get(t, "/web/me", "Authorization", u)
			want := fmt.Sprintf(`{"who":%q}`, u)
			if w.Body.String() != want {
				t.Fatalf("round %d, %q got %s", round, u, w.Body)
			}
			if cc := w.Header().Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
				t.Errorf("Cache-Control = %q, want private", cc)
			}
			if round > 0 && w.Header().Get("X-Cache") != "HIT" {
				t.Errorf("round %d, %q: %s", round, u, w.Header().Get("X-Cache"))
			}
		}
		h.cache.Wait()
	}
	if n := h.calls("accounts"); n != 3 {
		t.Errorf("upstream calls = %d, want one per user", n)
	}

	// A shared response over an upstream that sees tokens is refused at
	// start, cached or not: coalescing shares it too.
	for _, ttl := range []time.Duration{time.Minute, 0} {
		rs.Views[0].Cache = aggregate.CachePolicy{TTL: ttl, Scope: aggregate.ScopePublic}
		_, err := bff.New(bff.Config{Engine: aggregate.NewEngine(map[string]aggregate.Doer{"accounts": h.clients["accounts"]}),
			Cache: h.cache, RouteSets: []bff.RouteSet{rs}, ForwardsAuthorization: func(string) bool { return true }})
		if err == nil || !strings.Contains(err.Error(), "web.me") {
			t.Errorf("public view (ttl %v) over an Authorization upstream: err = %v", ttl, err)
		}
	}
}

func TestHeadersForwardedAndNot(t *testing.T) {
	got := make(chan http.Header, 4)
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	rs := bff.RouteSet{Client: "web", Views: []aggregate.View{{
		Name: "web.x", Route: "/x",
		Calls: []aggregate.Call{{Name: "x", Upstream: "x", Path: "/x"}},
		Shape: []aggregate.Field{aggregate.Rename("ok", "x.ok")},
	}}}
	h := newHarness(t, options{routeSets: []bff.RouteSet{rs}, handlers: map[string]http.Handler{"x": echo}})
	w := h.get(t, "/web/x", "X-Request-Id", "req-123", "Authorization", "Bearer t", "Cookie", "s=1", "Accept-Language", "fr")
	if w.Code != http.StatusOK || w.Header().Get("X-Request-Id") != "" {
		t.Errorf("a complete 200 carries no X-Request-Id, got %d %q", w.Code, w.Header().Get("X-Request-Id"))
	}
	hdr := <-got
	if hdr.Get("X-Request-Id") != "req-123" || hdr.Get("Accept-Language") != "fr" {
		t.Errorf("allowlisted headers missing: %v", hdr)
	}
	if hdr.Get("Authorization") != "" || hdr.Get("Cookie") != "" {
		t.Errorf("Authorization or Cookie reached an upstream not configured for it: %v", hdr)
	}
	// An Accept-Language no client sends is neither forwarded nor a cache key.
	for _, odd := range []string{strings.Repeat("en,", 40), "en\x01", "<script>"} {
		h.get(t, "/web/x", "Accept-Language", odd)
		if got := (<-got).Get("Accept-Language"); got != "" {
			t.Errorf("Accept-Language %q forwarded as %q", odd, got)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	h := newHarness(t, options{})
	if w := h.get(t, "/healthz"); w.Code != http.StatusOK {
		t.Errorf("healthz %d", w.Code)
	}
	if w := h.get(t, "/readyz"); w.Code != http.StatusOK {
		t.Errorf("readyz %d", w.Code)
	}
}

func demoHandlers() map[string]http.Handler {
	out := map[string]http.Handler{}
	for _, name := range demo.Names() {
		h, _ := demo.Handler(name)
		out[name] = h
	}
	return out
}

// Parameter values may hold any byte: two different tuples never share a
// cache entry.
func TestCacheKeyKeepsParametersApart(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := json.Marshal(map[string]string{"path": r.URL.EscapedPath()})
		_, _ = w.Write(b)
	})
	rs := bff.RouteSet{Client: "web", Views: []aggregate.View{{
		Name: "web.pair", Route: "/pair/{a}/{b}",
		Params: []aggregate.Param{{Name: "a", Pattern: `.{1,16}`}, {Name: "b", Pattern: `.{1,16}`}},
		Calls:  []aggregate.Call{{Name: "x", Upstream: "x", Path: "/{a}/{b}"}},
		Cache:  aggregate.CachePolicy{TTL: time.Minute},
		Shape:  []aggregate.Field{aggregate.Rename("path", "x.path")},
	}}}
	h := newHarness(t, options{routeSets: []bff.RouteSet{rs}, handlers: map[string]http.Handler{"x": echo}})
	first := h.get(t, "/web/pair/a%00b/c")
	h.cache.Wait()
	second := h.get(t, "/web/pair/a/b%00c")
	if first.Code != 200 || second.Code != 200 || first.Body.String() == second.Body.String() || second.Header().Get("X-Cache") != "MISS" {
		t.Errorf("%d %s / %d %s %s", first.Code, first.Body, second.Code, second.Body, second.Header().Get("X-Cache"))
	}
}

// Load swaps the served views whole; a bad set changes nothing; a changed
// view never serves what its old definition cached.
func TestLoadSwapsViews(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"a":1,"b":2}`))
	})
	view := func(field string) aggregate.View {
		return aggregate.View{
			Name: "web.v", Route: "/v",
			Calls: []aggregate.Call{{Name: "x", Upstream: "x", Path: "/"}},
			Cache: aggregate.CachePolicy{TTL: time.Minute},
			Shape: []aggregate.Field{aggregate.Rename("out", "x."+field)},
		}
	}
	h := newHarness(t, options{routeSets: []bff.RouteSet{{Client: "web", Views: []aggregate.View{view("a")}}},
		handlers: map[string]http.Handler{"x": echo}})
	if w := h.get(t, "/web/v"); w.Body.String() != `{"out":1}` {
		t.Fatalf("before: %s", w.Body)
	}
	h.cache.Wait()

	bad := view("b")
	bad.Calls[0].Upstream = "nope"
	if err := h.front.Load([]bff.RouteSet{{Client: "web", Views: []aggregate.View{bad}}}); err == nil {
		t.Fatal("a bad view was accepted")
	}
	if w := h.get(t, "/web/v"); w.Body.String() != `{"out":1}` || w.Header().Get("X-Cache") != "HIT" {
		t.Errorf("after a failed load: %s %s", w.Body, w.Header().Get("X-Cache"))
	}

	extra := view("a")
	extra.Name, extra.Route = "web.w", "/w"
	if err := h.front.Load([]bff.RouteSet{{Client: "web", Views: []aggregate.View{view("b"), extra}}}); err != nil {
		t.Fatal(err)
	}
	if w := h.get(t, "/web/v"); w.Body.String() != `{"out":2}` || w.Header().Get("X-Cache") != "MISS" {
		t.Errorf("after the swap: %s %s (the old definition's cache entry must not be served)", w.Body, w.Header().Get("X-Cache"))
	}
	if w := h.get(t, "/web/w"); w.Code != http.StatusOK {
		t.Errorf("new view: %d", w.Code)
	}
	if got := len(h.front.Routes()); got != 2 {
		t.Errorf("%d routes listed, want 2", got)
	}
}

// A route chi cannot parse, or the same route under other parameter names,
// is an error at load time, never a panic or a shadowed view.
func TestBadRoutesAreLoadErrors(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) })
	h := newHarness(t, options{routeSets: []bff.RouteSet{}, handlers: map[string]http.Handler{"x": echo}})
	view := func(name, route string, params ...string) aggregate.View {
		v := aggregate.View{Name: name, Route: route, Source: "v.yaml:1",
			Calls: []aggregate.Call{{Name: "x", Upstream: "x", Path: "/"}}, Shape: []aggregate.Field{aggregate.Pick("x")}}
		for _, p := range params {
			v.Params = append(v.Params, aggregate.Param{Name: p})
		}
		return v
	}
	for _, tc := range []struct {
		views []aggregate.View
		want  string
	}{
		{[]aggregate.View{view("web.a", "/b/*/c")}, `v.yaml:1: view "web.a": route "/b/*/c"`},
		{[]aggregate.View{view("web.a", "/c/{id}", "id"), view("web.b", "/c/{uid}", "uid")},
			`client web: v.yaml:1: view "web.b": route GET /c/{} is also view "web.a"`},
		// It would be served at /web/web/product/{id}.
		{[]aggregate.View{view("web.a", "/web/product/{id}", "id")},
			`v.yaml:1: view "web.a": route "/web/product/{id}": routes are below /web already; write "/product/{id}"`},
	} {
		err := h.front.Load([]bff.RouteSet{{Client: "web", Views: tc.views}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(tc.want, "also view") && err.Error() != tc.want {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

// A purge by path prefix takes whole segments: /web/home/7 is not /web/home/70.
func TestPurgeByPathTakesWholeSegments(t *testing.T) {
	h := newHarness(t, options{})
	for _, p := range []string{"/web/home/7", "/web/home/70", "/mobile/home/7"} {
		h.get(t, p)
	}
	h.cache.Wait()
	if err := h.front.Purge("", "/web/home/7"); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"/web/home/7": "MISS", "/web/home/70": "HIT", "/mobile/home/7": "HIT"} {
		if got := h.get(t, p).Header().Get("X-Cache"); got != want {
			t.Errorf("%s after purging /web/home/7: X-Cache %s, want %s", p, got, want)
		}
	}
	if err := h.front.Purge("no.such.view", ""); err == nil {
		t.Error("purging an unknown view was not an error")
	}
}

// A 405 says which methods the path takes; health probes answer HEAD.
func TestMethodNotAllowedSaysAllowAndHealthTakesHEAD(t *testing.T) {
	h := newHarness(t, options{})
	req := httptest.NewRequest(http.MethodPost, "/web/home/7", nil)
	w := httptest.NewRecorder()
	h.front.ServeHTTP(w, req)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /web/home/7: %d, Allow %q; want 405 with Allow: GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		w := httptest.NewRecorder()
		h.front.ServeHTTP(w, httptest.NewRequest(http.MethodHead, p, nil))
		if w.Code != http.StatusOK {
			t.Errorf("HEAD %s: %d", p, w.Code)
		}
	}
}

// chi routes on the escaped path, so a 405's Allow is worked out from the
// same path: POST /web/items/a%2Fb says GET and HEAD would do, as the
// same request without an escape does.
func TestMethodNotAllowedOnEscapedPathSaysAllow(t *testing.T) {
	rs := bff.RouteSet{Client: "web", Views: []aggregate.View{{
		Name: "web.item", Route: "/items/{name}",
		Params: []aggregate.Param{{Name: "name", Pattern: `.{1,64}`}},
		Calls:  []aggregate.Call{{Name: "item", Upstream: "items", Path: "/v1/items/{name}"}},
		Shape:  []aggregate.Field{aggregate.Rename("ok", "item.ok")},
	}}}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"ok":true}`)) })
	h := newHarness(t, options{routeSets: []bff.RouteSet{rs}, handlers: map[string]http.Handler{"items": echo}})
	if w := h.get(t, "/web/items/a%2Fb"); w.Code != http.StatusOK {
		t.Fatalf("GET /web/items/a%%2Fb: %d %s", w.Code, w.Body)
	}
	for _, path := range []string{"/web/items/ab", "/web/items/a%2Fb"} {
		w := httptest.NewRecorder()
		h.front.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, nil))
		problem(t, w, http.StatusMethodNotAllowed)
		if got := w.Header().Get("Allow"); got != "GET, HEAD" {
			t.Errorf("POST %s: 405 with Allow %q, want \"GET, HEAD\"", path, got)
		}
	}
}
