package telemetry_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/bff/mobile"
	"github.com/bffproxy/bff/bff/web"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/demo"
	"github.com/bffproxy/bff/internal/telemetry"
	"github.com/bffproxy/bff/upstream"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stack is the BFF wired as cmd/bff wires it, over real HTTP upstreams.
type stack struct {
	metrics *telemetry.Metrics
	front   *bff.Front
	handler http.Handler
	clients map[string]*upstream.Client
}

// newStack serves the built-in views from the demo upstreams, with
// override replacing some of them.
func newStack(t *testing.T, tracer *telemetry.Tracer, override map[string]http.Handler) *stack {
	return buildStack(t, tracer, override, false)
}

// inProcess calls an upstream handler without a network hop: for tests of
// bookkeeping over many thousands of calls, not of HTTP behaviour.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	p.h.ServeHTTP(w, req)
	return w.Result(), nil
}

func buildStack(t *testing.T, tracer *telemetry.Tracer, override map[string]http.Handler, noNetwork bool) *stack {
	t.Helper()
	s := &stack{metrics: telemetry.New(), clients: map[string]*upstream.Client{}}
	doers := map[string]aggregate.Doer{}
	for _, name := range demo.Names() {
		h, _ := demo.Handler(name)
		if o, ok := override[name]; ok {
			h = o
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		var transport http.RoundTripper
		if noNetwork {
			transport = inProcess{h}
		}
		rec := s.metrics.Upstream(name)
		c, err := upstream.New(upstream.Config{
			Name:          name,
			BaseURL:       srv.URL,
			Retry:         upstream.RetryConfig{Max: 2, WaitMin: time.Millisecond, WaitMax: 2 * time.Millisecond},
			Breaker:       upstream.BreakerConfig{ConsecutiveFailures: 5, OpenTimeout: time.Hour},
			Observer:      rec,
			WrapTransport: tracer.Transport(name),
			OnStateChange: func(_ string, from, to gobreaker.State) { rec.BreakerChanged(from, to) },
			Transport:     transport,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		rec.Attach(c, srv.URL)
		s.clients[name], doers[name] = c, c
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
		Metrics: s.metrics, Tracing: tracer != nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.handler = tracer.Handler(s.front)
	return s
}

func (s *stack) get(t *testing.T, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, req)
	return w
}
