package main

// Tracing as configured: the sample ratio as written, and nothing of the
// caller's but trace context passed on.

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// otlpCollector counts OTLP/HTTP trace exports.
func otlpCollector(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var exports atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" && len(b) > 0 {
			exports.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.Close)
	return s, &exports
}

// tracing.sample_ratio is "the share of new traces recorded": 0 records no
// new trace (only callers' sampled ones). It was taken for "unset" once,
// and recorded every one, as 1 does.
func TestSampleRatioZeroRecordsNoNewTraces(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	for _, c := range []struct {
		ratio string
		want  bool
	}{{"1", true}, {"0", false}} {
		collector, exports := otlpCollector(t)
		l, logs, stop := start(t, f.env(), "tracing:\n  endpoint: "+collector.URL+"\n  sample_ratio: "+c.ratio+"\n")
		for range 5 {
			if code, body := request(t, http.MethodGet, "http://"+l.Public+"/web/home/7"); code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
		}
		if code := stop(); code != 0 { // flushes the spans
			t.Fatalf("exit %d:\n%s", code, logs.String())
		}
		if got := exports.Load() > 0; got != c.want {
			t.Errorf("sample_ratio %s: spans exported: %v; want %v (5 requests without traceparent)", c.ratio, got, c.want)
		}
	}
}

// Only an allowlist of request headers reaches upstreams (issue 2: request
// ID, Accept-Language, W3C trace context; the upstream package's list is
// X-Request-Id, Accept-Language, Traceparent, Tracestate, Idempotency-Key).
// With tracing on, a public caller's Baggage header (key=value pairs an
// internal service may trust: tenant, user, role) reaches no upstream: the
// server's propagator once read it and the transport injected it.
func TestTracingDoesNotForwardCallersBaggage(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	var got atomic.Value
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Baggage"))
		_, _ = io.WriteString(w, `{"id":7,"name":"n","email":"e","avatar_url":"a"}`)
	}))
	t.Cleanup(users.Close)
	collector, _ := otlpCollector(t)
	env := f.env()
	env["BFF_UPSTREAM_USERS_URL"] = users.URL
	env["BFF_TRACING_ENDPOINT"] = collector.URL
	l, _, _ := start(t, env, "")
	if code, body := request(t, http.MethodGet, "http://"+l.Public+"/web/home/7", "Baggage", "tenant=acme,role=admin"); code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	if b, _ := got.Load().(string); b != "" {
		t.Errorf("the users upstream received the caller's Baggage %q; it is not on the header allowlist", b)
	}
}
