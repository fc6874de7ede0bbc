package admin_test

import (
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
	"github.com/bffproxy/bff/bff/mobile"
	"github.com/bffproxy/bff/bff/web"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/admin"
	"github.com/bffproxy/bff/internal/demo"
	"github.com/bffproxy/bff/internal/telemetry"
	"github.com/bffproxy/bff/upstream"
	"github.com/sony/gobreaker/v2"
)

// breakerTrips is the consecutive failures that open an upstream's breaker
// in the stack. A failing recs call makes 1+retries attempts, each counted.
const (
	breakerTrips = 5
	retries      = 2
)

// upstreamServer is a real HTTP upstream whose handler a test may swap.
type upstreamServer struct {
	*httptest.Server
	calls   atomic.Int64
	mu      sync.Mutex
	handler http.Handler
}

func (u *upstreamServer) set(h http.Handler) {
	u.mu.Lock()
	u.handler = h
	u.mu.Unlock()
}

// stack is the BFF wired as cmd/bff wires it: demo upstreams behind real
// listeners, upstream clients observed by the metrics, the front on a
// public listener and the admin handler on a listener of its own.
type stack struct {
	metrics   *telemetry.Metrics
	front     *bff.Front
	cache     *cache.Cache
	clients   map[string]*upstream.Client
	upstreams map[string]*upstreamServer
	public    *httptest.Server
	admin     *httptest.Server
	http      *http.Client
	token     string
	started   time.Time

	ready, draining atomic.Bool
}

const version = "v1.2.3-test"

// newStack starts the stack; token, if set, protects the admin endpoints.
func newStack(t *testing.T, token string) *stack {
	t.Helper()
	s := &stack{
		metrics:   telemetry.New(),
		clients:   map[string]*upstream.Client{},
		upstreams: map[string]*upstreamServer{},
		token:     token,
		// An hour ago, in a zone that is not UTC: the page reads UTC.
		started: time.Now().Add(-time.Hour).Truncate(time.Second).In(time.FixedZone("UTC+5", 5*3600)),
	}
	s.ready.Store(true)
	s.http = &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	doers := map[string]aggregate.Doer{}
	var ups []admin.Upstream
	for _, name := range demo.Names() {
		h, _ := demo.Handler(name)
		u := &upstreamServer{handler: h}
		u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.calls.Add(1)
			u.mu.Lock()
			h := u.handler
			u.mu.Unlock()
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(u.Close)
		rec := s.metrics.Upstream(name)
		c, err := upstream.New(upstream.Config{
			Name:    name,
			BaseURL: u.URL,
			Retry:   upstream.RetryConfig{Max: retries, WaitMin: time.Millisecond, WaitMax: 2 * time.Millisecond},
			// Hours, so that no count or state changes while a test runs.
			Breaker:       upstream.BreakerConfig{ConsecutiveFailures: breakerTrips, Interval: time.Hour, OpenTimeout: time.Hour},
			Observer:      rec,
			OnStateChange: func(_ string, from, to gobreaker.State) { rec.BreakerChanged(from, to) },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		rec.Attach(c, u.URL)
		s.clients[name], s.upstreams[name], doers[name] = c, u, c
		ups = append(ups, admin.Upstream{Name: name, URL: u.URL, Client: c})
	}
	rc, err := cache.New(cache.Config{MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	if err := s.metrics.WatchCache(rc); err != nil {
		t.Fatal(err)
	}
	w, err := web.Routes()
	if err != nil {
		t.Fatal(err)
	}
	m, err := mobile.Routes()
	if err != nil {
		t.Fatal(err)
	}
	s.front, err = bff.New(bff.Config{
		Engine: aggregate.NewEngine(doers), Cache: rc, RouteSets: []bff.RouteSet{w, m},
		Ready: s.ready.Load, Metrics: s.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.cache = rc
	s.public = httptest.NewServer(s.front)
	t.Cleanup(s.public.Close)
	s.admin = httptest.NewServer(admin.New(admin.Config{
		Metrics: s.metrics, Front: s.front, Cache: rc, Upstreams: ups, Token: token,
		Ready: s.ready.Load, Draining: s.draining.Load, Started: s.started, Version: version,
	}))
	t.Cleanup(s.admin.Close)
	t.Cleanup(s.http.CloseIdleConnections) // runs first
	return s
}

// response is a finished response with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (s *stack) do(t *testing.T, method, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// get calls the public listener and waits until what it cached can be read.
func (s *stack) get(t *testing.T, path string, header ...string) response {
	t.Helper()
	r := s.do(t, http.MethodGet, s.public.URL+path, header...)
	s.cache.Wait() // ristretto applies sets asynchronously
	return r
}

// adminDo calls the admin listener, with the stack's token if it has one.
func (s *stack) adminDo(t *testing.T, method, path string, header ...string) response {
	t.Helper()
	if s.token != "" {
		header = append([]string{"Authorization", "Bearer " + s.token}, header...)
	}
	return s.do(t, method, s.admin.URL+path, header...)
}

// adminJSON GETs an admin endpoint that must answer 200 JSON, decoded into v.
func (s *stack) adminJSON(t *testing.T, path string, v any) []byte {
	t.Helper()
	r := s.adminDo(t, http.MethodGet, path)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET %s: Cache-Control %q, want no-store", path, cc)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, r.body)
	}
	return r.body
}

// problem is the part of a problem+json body the admin tests check.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
}

// wantProblem checks that r is a problem+json response with this status
// and type, and returns it.
func wantProblem(t *testing.T, what string, r response, status int, typ string) problem {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d (%s)", what, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Errorf("%s: body is not JSON: %v: %s", what, err, r.body)
		return p
	}
	if p.Status != status || p.Type != typ || p.Title != http.StatusText(status) {
		t.Errorf("%s: problem %+v, want status %d, type %s, title %q", what, p, status, typ, http.StatusText(status))
	}
	return p
}

// wantCache checks the X-Cache header of a GET on the public listener.
func (s *stack) wantCache(t *testing.T, path, want string) {
	t.Helper()
	r := s.get(t, path)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	if got := r.header.Get("X-Cache"); got != want {
		t.Errorf("GET %s: X-Cache %q, want %q", path, got, want)
	}
}

// failing answers 503 to every request, the way an overloaded upstream does.
var failing = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, `{"error":"overloaded"}`)
})

// except answers with alt for requests whose "path?query" contains match
// ("/users/9?" is user 9 only), and with h otherwise.
func except(h http.Handler, match string, alt http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path+"?"+r.URL.RawQuery, match) {
			alt.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
