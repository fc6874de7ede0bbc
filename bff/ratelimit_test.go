package bff_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

func rateLimited(t *testing.T, rl *bff.RateLimit, trusted ...string) *harness {
	sets := builtinRoutes(t)
	for i := range sets {
		if sets[i].Client == "web" {
			sets[i].RateLimit = rl
		}
	}
	h := newHarness(t, options{routeSets: sets})
	if len(trusted) > 0 {
		doers := map[string]aggregate.Doer{}
		for name, c := range h.clients {
			doers[name] = c
		}
		f, err := bff.New(bff.Config{Engine: aggregate.NewEngine(doers), Cache: h.cache, RouteSets: sets, TrustedProxies: trusted})
		if err != nil {
			t.Fatal(err)
		}
		h.front = f
	}
	return h
}

func from(h *harness, path, peer string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = peer + ":40000"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.front.ServeHTTP(w, req)
	return w
}

// Each caller gets the client's budget; past it, 429 problem+json with
// Retry-After and the IETF RateLimit headers; other callers and clients
// are not affected.
func TestRateLimitPerCaller(t *testing.T) {
	h := rateLimited(t, &bff.RateLimit{Limit: bff.Limit{Requests: 3, Window: time.Hour}})
	for i := range 3 {
		w := from(h, "/web/home/7", "198.51.100.1")
		if w.Code != http.StatusOK || w.Header().Get("RateLimit-Policy") != `"web";q=3;w=3600` {
			t.Fatalf("request %d: %d, policy %q", i+1, w.Code, w.Header().Get("RateLimit-Policy"))
		}
	}
	w := from(h, "/web/home/7", "198.51.100.1")
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), bff.ProblemTooManyRequests) ||
		w.Header().Get("Content-Type") != "application/problem+json" || w.Header().Get("Retry-After") == "" ||
		!strings.HasPrefix(w.Header().Get("RateLimit"), `"web";r=0;t=`) {
		t.Errorf("over the limit: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if w := from(h, "/web/home/7", "198.51.100.2"); w.Code != http.StatusOK {
		t.Errorf("another caller: %d", w.Code)
	}
	if w := from(h, "/mobile/home/7", "198.51.100.1"); w.Code != http.StatusOK {
		t.Errorf("the mobile client, which has no limit: %d", w.Code)
	}
	// A spoofed X-Forwarded-For from a peer nobody trusts changes nothing.
	if w := from(h, "/web/home/7", "198.51.100.1", "X-Forwarded-For", "203.0.113.9"); w.Code != http.StatusTooManyRequests {
		t.Errorf("a spoofed X-Forwarded-For escaped the limit: %d", w.Code)
	}
}

// A reload (a view deployed, a SIGHUP) keeps the counts of every limit it
// keeps: a caller over its budget stays over it. A limit that changes
// starts counting afresh.
func TestRateLimitCountsSurviveReload(t *testing.T) {
	limit := &bff.RateLimit{Limit: bff.Limit{Requests: 2, Window: time.Hour},
		Views: map[string]bff.Limit{"web.home": {Requests: 1, Window: time.Hour}}}
	h := rateLimited(t, limit)
	from(h, "/web/home/7", "198.51.100.1")
	from(h, "/web/orders/ord-7-20", "198.51.100.1")
	if w := from(h, "/web/orders/ord-7-20", "198.51.100.1"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("third request in the window: %d, want 429", w.Code)
	}
	if w := from(h, "/web/home/7", "198.51.100.2"); w.Code != http.StatusOK {
		t.Fatalf("another caller's first home: %d", w.Code)
	}
	sets := builtinRoutes(t)
	for i := range sets {
		if sets[i].Client == "web" {
			sets[i].RateLimit = limit
		}
	}
	if err := h.front.Load(sets); err != nil {
		t.Fatal(err)
	}
	if w := from(h, "/web/orders/ord-7-20", "198.51.100.1"); w.Code != http.StatusTooManyRequests {
		t.Errorf("after a reload, a caller over the client's limit: %d, want 429", w.Code)
	}
	if w := from(h, "/web/home/7", "198.51.100.2"); w.Code != http.StatusTooManyRequests {
		t.Errorf("after a reload, a caller over the view's limit: %d, want 429", w.Code)
	}
	changed := *limit
	changed.Limit.Requests = 5
	for i := range sets {
		if sets[i].Client == "web" {
			sets[i].RateLimit = &changed
		}
	}
	if err := h.front.Load(sets); err != nil {
		t.Fatal(err)
	}
	if w := from(h, "/web/orders/ord-7-20", "198.51.100.1"); w.Code != http.StatusOK {
		t.Errorf("after the client's limit was raised: %d, want 200 (a new limit counts afresh)", w.Code)
	}
}

// Behind a trusted proxy, the caller is the address it vouches for.
func TestRateLimitBehindTrustedProxy(t *testing.T) {
	h := rateLimited(t, &bff.RateLimit{Limit: bff.Limit{Requests: 1, Window: time.Hour}}, "10.0.0.0/8")
	if w := from(h, "/web/home/7", "10.1.2.3", "X-Forwarded-For", "203.0.113.1"); w.Code != http.StatusOK {
		t.Fatalf("first caller: %d", w.Code)
	}
	if w := from(h, "/web/home/7", "10.1.2.3", "X-Forwarded-For", "203.0.113.2"); w.Code != http.StatusOK {
		t.Errorf("a second caller behind the same proxy: %d; want its own budget", w.Code)
	}
	if w := from(h, "/web/home/7", "10.9.9.9", "X-Forwarded-For", "203.0.113.1"); w.Code != http.StatusTooManyRequests {
		t.Errorf("the first caller through another proxy: %d; want 429", w.Code)
	}
	// Left of an untrusted hop nothing is believed: 198.51.100.7 is the caller.
	if w := from(h, "/web/home/7", "10.1.2.3", "X-Forwarded-For", "203.0.113.50, 198.51.100.7"); w.Code != http.StatusOK {
		t.Errorf("a new caller: %d", w.Code)
	}
	if w := from(h, "/web/home/7", "10.1.2.3", "X-Forwarded-For", "203.0.113.51, 198.51.100.7"); w.Code != http.StatusTooManyRequests {
		t.Errorf("the same caller with a forged entry on the left: %d; want 429", w.Code)
	}
}

// A view can have a tighter budget than its client.
func TestRateLimitPerView(t *testing.T) {
	h := rateLimited(t, &bff.RateLimit{Limit: bff.Limit{Requests: 100, Window: time.Hour},
		Views: map[string]bff.Limit{"web.home": {Requests: 1, Window: time.Hour}}})
	if w := from(h, "/web/home/7", "198.51.100.1"); w.Code != http.StatusOK {
		t.Fatalf("%d", w.Code)
	}
	if w := from(h, "/web/home/7", "198.51.100.1"); w.Code != http.StatusTooManyRequests || w.Header().Get("RateLimit-Policy") == "" {
		t.Errorf("the view's second request: %d", w.Code)
	}
	if w := from(h, "/web/orders/ord-7-20", "198.51.100.1"); w.Code != http.StatusOK {
		t.Errorf("another view of the client: %d", w.Code)
	}
}

// A caller that waits as long as Retry-After says is let through: the
// sliding window still counts the ended window's requests for a while
// after it ends, and Retry-After allows for it.
func TestRetryAfterIsLongEnough(t *testing.T) {
	h := rateLimited(t, &bff.RateLimit{Limit: bff.Limit{Requests: 20, Window: 2 * time.Second}})
	var w *httptest.ResponseRecorder
	for range 21 {
		if w = from(h, "/web/home/7", "198.51.100.1"); w.Code == http.StatusTooManyRequests {
			break
		}
	}
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("21 requests against a limit of 20: %d", w.Code)
	}
	secs, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil || secs < 1 || secs > 3 {
		t.Fatalf("Retry-After %q; want 1..3 s for a 2 s window", w.Header().Get("Retry-After"))
	}
	time.Sleep(time.Duration(secs) * time.Second) // as the caller is told: the state under test
	if w := from(h, "/web/home/7", "198.51.100.1"); w.Code != http.StatusOK {
		t.Fatalf("after waiting Retry-After (%ds): %d", secs, w.Code)
	}
}

// statusCounter is a bff.Metrics that counts status codes per
// client and view, as the bff_requests_total series labels them.
type statusCounter struct {
	mu     sync.Mutex
	counts map[string]int // "client/view status"
}

func (s *statusCounter) View(client, view string) bff.ViewMetrics {
	if client == "" {
		client, view = "none", "none" // as internal/telemetry labels them
	}
	return &statusView{s: s, key: client + "/" + view}
}

func (s *statusCounter) get(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key]
}

type statusView struct {
	s   *statusCounter
	key string
}

func (v *statusView) Request(status int, _ time.Duration, c bff.CacheResult, _ bool) {
	v.s.mu.Lock()
	v.s.counts[v.key+" "+http.StatusText(status)]++
	v.s.counts[v.key+" "+http.StatusText(status)+" cache="+c.String()]++
	v.s.mu.Unlock()
}
func (v *statusView) Shed()               {}
func (v *statusView) MissingField(string) {}

// A request a view's rate limit refuses is that view's, in its metrics (and
// access-log line): an operator watching a view's 4xx rate sees its 429s.
// Only a request no view took (a 404) is client="none".
func TestRateLimitedRequestCountedUnderItsView(t *testing.T) {
	sets := builtinRoutes(t)
	for i := range sets {
		if sets[i].Client == "web" {
			sets[i].RateLimit = &bff.RateLimit{
				Limit: bff.Limit{Requests: 100, Window: time.Hour},
				Views: map[string]bff.Limit{"web.home": {Requests: 1, Window: time.Hour}},
			}
		}
	}
	counts := &statusCounter{counts: map[string]int{}}
	h := newHarness(t, options{routeSets: sets, metrics: counts})
	if w := from(h, "/web/home/7", "198.51.100.7"); w.Code != http.StatusOK {
		t.Fatalf("first request: %d", w.Code)
	}
	w := from(h, "/web/home/7", "198.51.100.7")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("second request: %d; want 429", w.Code)
	}
	tooMany := http.StatusText(http.StatusTooManyRequests)
	if got := counts.get("web/web.home " + tooMany); got != 1 {
		t.Errorf("the 429 of web.home counted %d times under client=web view=web.home (%d times under client=none view=none); want 1",
			got, counts.get("none/none "+tooMany))
	}
}
