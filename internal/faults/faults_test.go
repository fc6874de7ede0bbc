package faults_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/faults"
	"github.com/bffproxy/bff/upstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	got, err := faults.Parse(" recs=timeout, users=503 ,orders=latency:300ms+502, catalog=breaker-open,x=reset,")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]faults.Fault{
		"recs": {Timeout: true}, "users": {Status: 503}, "orders": {Latency: 300 * time.Millisecond, Status: 502},
		"catalog": {BreakerOpen: true}, "x": {Reset: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %+v, want %+v", k, got[k], v)
		}
	}
	for _, bad := range []string{"recs", "=503", "recs=200", "recs=slow", "recs=latency:1h", "recs=latency:-1s", string(make([]byte, 2000))} {
		if _, err := faults.Parse(bad); err == nil {
			t.Errorf("Parse(%.20q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("recs=timeout, users=503")
	f.Add("a=latency:1ms+reset")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := faults.Parse(s)
		if err == nil {
			for _, v := range m {
				if v.Latency < 0 || v.Status != 0 && (v.Status < 400 || v.Status > 599) {
					t.Fatalf("Parse(%q) = %+v", s, m)
				}
			}
		}
	})
}

// Injected faults never reach the upstream (or its breaker); other
// upstreams, and requests without the header, are untouched.
func TestWrap(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, err := upstream.New(upstream.Config{Name: "recs", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	d := faults.Wrap("recs", c)
	do := func(fault string) (*upstream.Response, error) {
		h := http.Header{}
		if fault != "" {
			h.Set(faults.Header, fault)
		}
		return d.Do(context.Background(), &upstream.Request{Path: "/r", Header: h, Timeout: 50 * time.Millisecond})
	}
	for fault, kind := range map[string]upstream.Kind{
		"recs=503": upstream.KindStatus, "recs=timeout": upstream.KindTimeout,
		"recs=breaker-open": upstream.KindBreakerOpen, "recs=reset": upstream.KindTransport,
	} {
		_, err := do(fault)
		var ue *upstream.Error
		if !errors.As(err, &ue) || ue.Kind != kind || ue.Upstream != "recs" {
			t.Errorf("%s: %v; want an upstream error of kind %v", fault, err, kind)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("injected faults reached the upstream %d times", n)
	}
	if n := c.BreakerCounts(); n.Requests != 0 {
		t.Errorf("injected faults counted by the breaker: %+v", n)
	}
	for _, fault := range []string{"", "users=503", "recs=latency:1ms"} {
		if _, err := do(fault); err != nil {
			t.Errorf("%q: %v; want the real call", fault, err)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("upstream called %d times; want 3", n)
	}
}
