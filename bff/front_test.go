package bff_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
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
	"github.com/bffproxy/bff/internal/demo"
	"github.com/bffproxy/bff/upstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstreamServer is a real HTTP upstream whose handler a test may swap, with
// a call counter.
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

func newUpstreamServer(t testing.TB, h http.Handler) *upstreamServer {
	u := &upstreamServer{handler: h}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		u.mu.Lock()
		h := u.handler
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

// harness is a Front over real upstream clients and servers.
type harness struct {
	front     *bff.Front
	cache     *cache.Cache
	upstreams map[string]*upstreamServer
	clients   map[string]*upstream.Client
}

type options struct {
	cacheBytes   int64
	routeSets    []bff.RouteSet
	handlers     map[string]http.Handler // default: the demo upstreams
	tweak        func(name string, c *upstream.Config)
	partialTTL   time.Duration
	forwardsAuth map[string]bool
	maxInFlight  int
	now          func() time.Time
	logger       *slog.Logger
	metrics      bff.Metrics
	accessLog    io.Writer // access lines in the text format, if set
}

func newHarness(t testing.TB, o options) *harness {
	t.Helper()
	if o.routeSets == nil {
		o.routeSets = builtinRoutes(t)
	}
	if o.handlers == nil {
		o.handlers = map[string]http.Handler{}
		for _, name := range demo.Names() {
			h, _ := demo.Handler(name)
			o.handlers[name] = h
		}
	}
	if o.cacheBytes == 0 {
		o.cacheBytes = 16 << 20
	}
	if o.cacheBytes < 0 {
		o.cacheBytes = 0
	}
	h := &harness{upstreams: map[string]*upstreamServer{}, clients: map[string]*upstream.Client{}}
	doers := map[string]aggregate.Doer{}
	for name, handler := range o.handlers {
		srv := newUpstreamServer(t, handler)
		cfg := upstream.Config{
			Name:                 name,
			BaseURL:              srv.URL,
			Retry:                upstream.RetryConfig{Max: 2, WaitMin: time.Millisecond, WaitMax: 2 * time.Millisecond},
			ForwardAuthorization: o.forwardsAuth[name],
		}
		if o.tweak != nil {
			o.tweak(name, &cfg)
		}
		c, err := upstream.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		h.upstreams[name], h.clients[name], doers[name] = srv, c, c
	}
	rc, err := cache.New(cache.Config{MaxBytes: o.cacheBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	front, err := bff.New(bff.Config{
		Engine:                aggregate.NewEngine(doers),
		Cache:                 rc,
		RouteSets:             o.routeSets,
		PartialTTL:            o.partialTTL,
		ForwardsAuthorization: func(name string) bool { return o.forwardsAuth[name] },
		MaxInFlight:           o.maxInFlight,
		Now:                   o.now,
		Logger:                o.logger,
		Metrics:               o.metrics,
		AccessLog:             o.accessLog,
		AccessLogFormat:       bff.AccessLogText,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.front, h.cache = front, rc
	return h
}

// get serves one request through the front.
func (h *harness) get(t testing.TB, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.front.ServeHTTP(w, req)
	return w
}

func (h *harness) calls(name string) int64 { return h.upstreams[name].calls.Load() }

func (h *harness) totalCalls() int64 {
	var n int64
	for _, u := range h.upstreams {
		n += u.calls.Load()
	}
	return n
}

// upstreamJSON fetches what an upstream serves, to compare values with.
func upstreamJSON(t testing.TB, name, target string) map[string]any {
	t.Helper()
	h, _ := demo.Handler(name)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("%s %s: %v", name, target, err)
	}
	return v
}

// keysInOrder lists an object's keys as they appear in the bytes.
func keysInOrder(t testing.TB, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func decodeObject(t testing.TB, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return m
}

func decodeList(t testing.TB, raw []byte) []json.RawMessage {
	t.Helper()
	var l []json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatalf("decode list %s: %v", raw, err)
	}
	return l
}

func equalKeys(t testing.TB, what string, raw []byte, want ...string) {
	t.Helper()
	got := keysInOrder(t, raw)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s keys = %v, want %v", what, got, want)
	}
}

// problem decodes a problem+json response and checks its status.
func problem(t testing.TB, w *httptest.ResponseRecorder, status int) bff.Problem {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p bff.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %s: %v", w.Body, err)
	}
	if p.Status != status || p.Type == "" || p.Title == "" {
		t.Errorf("problem = %+v", p)
	}
	return p
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// status500 always fails; slow waits for the request to be canceled.
var (
	status500 = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"secret":"internal upstream detail"}`, http.StatusInternalServerError)
	})
	slow = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
)

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var _ = errors.New
var _ = context.Background

func builtinRoutes(t testing.TB) []bff.RouteSet {
	t.Helper()
	w, err := web.Routes()
	if err != nil {
		t.Fatal(err)
	}
	m, err := mobile.Routes()
	if err != nil {
		t.Fatal(err)
	}
	return []bff.RouteSet{w, m}
}
