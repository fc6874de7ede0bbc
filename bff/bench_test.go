package bff_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/upstream"
)

// discardWriter is the cheapest ResponseWriter, so the benchmark measures
// the front, not the recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// demoUpstreams serves the demo upstreams over loopback and returns a
// client of each, configured by tweak if set.
func demoUpstreams(tb testing.TB, tweak func(*upstream.Config)) map[string]aggregate.Doer {
	tb.Helper()
	doers := map[string]aggregate.Doer{}
	for name, h := range demoHandlers() {
		srv := httptest.NewServer(h)
		tb.Cleanup(srv.Close)
		doers[name] = clientFor(tb, name, srv.URL, tweak)
	}
	return doers
}

func clientFor(tb testing.TB, name, url string, tweak func(*upstream.Config)) *upstream.Client {
	tb.Helper()
	cfg := upstream.Config{Name: name, BaseURL: url}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := upstream.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

func benchFront(b *testing.B, cacheBytes int64, accessLog bool) (*bff.Front, *cache.Cache) {
	b.Helper()
	doers := demoUpstreams(b, nil)
	rc, err := cache.New(cache.Config{MaxBytes: cacheBytes})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	var access io.Writer
	if accessLog {
		access = io.Discard
	}
	f, err := bff.New(bff.Config{
		Engine: aggregate.NewEngine(doers), Cache: rc, AccessLog: access,
		Logger:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
		RouteSets: builtinRoutes(b),
	})
	if err != nil {
		b.Fatal(err)
	}
	return f, rc
}

// BenchmarkHit is the hot path: a cached web home view.
func BenchmarkHit(b *testing.B) {
	for _, logged := range []bool{false, true} {
		b.Run("access_log="+strconv.FormatBool(logged), func(b *testing.B) {
			f, rc := benchFront(b, 64<<20, logged)
			req := httptest.NewRequest(http.MethodGet, "/web/home/7", nil)
			f.ServeHTTP(&discardWriter{h: http.Header{}}, req)
			rc.Wait() // ristretto applies sets asynchronously
			serveParallel(b, f, []*http.Request{req}, nil)
		})
	}
}

// BenchmarkMiss is the fan-out path with the cache off: three real upstreams
// over loopback, ids spread over 1..1000.
func BenchmarkMiss(b *testing.B) {
	f, _ := benchFront(b, 0, false)
	reqs := make([]*http.Request, 1000)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/web/home/"+strconv.Itoa(i+1), nil)
		f.ServeHTTP(&discardWriter{h: http.Header{}}, reqs[i]) // warm the demo's bodies
	}
	serveParallel(b, f, reqs, nil)
}

// serveParallel times reqs served round-robin by f on every core. check,
// if set, judges each response; a false stops the benchmark.
func serveParallel(b *testing.B, f http.Handler, reqs []*http.Request, check func(http.Header) bool) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: make(http.Header, 16)}
		for i := 0; pb.Next(); i++ {
			clear(w.h)
			f.ServeHTTP(w, reqs[i%len(reqs)])
			if check != nil && !check(w.h) {
				b.Errorf("request %d: unexpected response headers %v", i, w.h)
				return
			}
		}
	})
}
