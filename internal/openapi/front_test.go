package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
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

// swappable is an upstream handler a test may replace, to make one fail.
type swappable struct {
	mu sync.Mutex
	h  http.Handler
}

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.h
	s.mu.Unlock()
	h.ServeHTTP(w, r)
}

func (s *swappable) set(h http.Handler) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

// demoFront is a front serving the built-in views over the demo upstreams,
// each behind a real httptest server and upstream client.
func demoFront(t testing.TB) (*bff.Front, map[string]*swappable) {
	t.Helper()
	doers := map[string]aggregate.Doer{}
	handlers := map[string]*swappable{}
	for _, name := range demo.Names() {
		h, _ := demo.Handler(name)
		handlers[name] = &swappable{h: h}
		srv := httptest.NewServer(handlers[name])
		t.Cleanup(srv.Close)
		c, err := upstream.New(upstream.Config{
			Name:    name,
			BaseURL: srv.URL,
			Retry:   upstream.RetryConfig{WaitMin: time.Millisecond, WaitMax: time.Millisecond}, // no retries
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		doers[name] = c
	}
	rc, err := cache.New(cache.Config{MaxBytes: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	w, err := web.Routes()
	if err != nil {
		t.Fatal(err)
	}
	m, err := mobile.Routes()
	if err != nil {
		t.Fatal(err)
	}
	front, err := bff.New(bff.Config{Engine: aggregate.NewEngine(doers), Cache: rc, RouteSets: []bff.RouteSet{w, m}})
	if err != nil {
		t.Fatal(err)
	}
	return front, handlers
}

// builtinRoutes are the routes of the built-in views, without upstreams
// behind them: enough to generate documents.
func builtinRoutes(t testing.TB) []bff.Route {
	t.Helper()
	front, _ := demoFront(t)
	return front.Routes()
}
