package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/bffproxy/bff/internal/telemetry"
	"github.com/bffproxy/bff/upstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics as Prometheus would.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", w.Code, w.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.Reader(w.Body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no series %s", name)
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

// bffSeries counts the BFF's own series (runtime and process ones aside).
func bffSeries(fams map[string]*dto.MetricFamily) int {
	n := 0
	for name, f := range fams {
		if strings.HasPrefix(name, "bff_") {
			n += len(f.Metric)
		}
	}
	return n
}

// With recs failing, /metrics shows the breaker open, the retries made,
// the partial responses served, and every upstream's outcomes.
func TestMetricsAfterTrafficWithAFailingUpstream(t *testing.T) {
	down := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"down"}`, http.StatusServiceUnavailable)
	})
	s := newStack(t, nil, map[string]http.Handler{"recs": down})
	const n = 6
	for id := 1; id <= n; id++ {
		if w := s.get(t, fmt.Sprintf("/web/home/%d", id)); w.Code != http.StatusOK || w.Header().Get("Bff-Partial") == "" {
			t.Fatalf("/web/home/%d: %d %q; want a partial 200", id, w.Code, w.Header().Get("Bff-Partial"))
		}
	}
	s.get(t, "/web/home/1") // a hit of a partial entry
	s.get(t, "/web/home/x") // 400
	s.get(t, "/nowhere")    // 404, no view

	fams := scrape(t, s.metrics.Handler())
	checks := []struct {
		name   string
		labels []string
		want   func(float64) bool
		says   string
	}{
		{"bff_upstream_breaker_state", []string{"upstream", "recs"}, eq(2), "2 (open)"},
		{"bff_upstream_breaker_state", []string{"upstream", "users"}, eq(0), "0 (closed)"},
		// Sequential calls share one keep-alive connection, pooled between them.
		{"bff_upstream_dials_total", []string{"upstream", "users"}, eq(1), "1"},
		{"bff_upstream_connections", []string{"upstream", "users", "state", "idle"}, eq(1), "1"},
		{"bff_upstream_connections", []string{"upstream", "users", "state", "active"}, eq(0), "0"},
		{"bff_upstream_breaker_transitions_total", []string{"upstream", "recs", "to", "open"}, eq(1), "1"},
		// Five attempts trip the breaker: 3 in the first call (2 retries), 2 in
		// the second, which ends with the 503 that opened it.
		{"bff_upstream_retries_total", []string{"upstream", "recs"}, eq(3), "3"},
		{"bff_upstream_calls_total", []string{"upstream", "recs", "outcome", "http_error"}, eq(2), "2"},
		{"bff_upstream_calls_total", []string{"upstream", "recs", "outcome", "breaker_open"}, eq(n - 2), fmt.Sprint(n - 2)},
		{"bff_upstream_calls_total", []string{"upstream", "users", "outcome", "ok"}, eq(n), fmt.Sprint(n)},
		{"bff_upstream_calls_total", []string{"upstream", "orders", "outcome", "timeout"}, eq(0), "0"},
		{"bff_upstream_in_flight", []string{"upstream", "users"}, eq(0), "0"},
		{"bff_upstream_call_duration_seconds", []string{"upstream", "orders"}, eq(n), fmt.Sprint(n)},
		{"bff_partial_responses_total", []string{"client", "web", "view", "web.home"}, eq(n + 1), fmt.Sprint(n + 1)},
		{"bff_requests_total", []string{"client", "web", "view", "web.home", "code", "2xx"}, eq(n + 1), fmt.Sprint(n + 1)},
		{"bff_requests_total", []string{"client", "web", "view", "web.home", "code", "4xx"}, eq(1), "1"},
		{"bff_requests_total", []string{"client", "none", "view", "none", "code", "4xx"}, eq(1), "1"},
		{"bff_request_duration_seconds", []string{"client", "web", "view", "web.home"}, eq(n + 2), fmt.Sprint(n + 2)},
		{"bff_cache_requests_total", []string{"client", "web", "view", "web.home", "result", "hit"}, eq(1), "1"},
		{"bff_cache_requests_total", []string{"client", "web", "view", "web.home", "result", "miss"}, eq(n), fmt.Sprint(n)},
		{"bff_cache_max_bytes", nil, eq(16 << 20), "16 MiB"},
		{"bff_cache_entries", nil, func(v float64) bool { return v >= 1 && v <= n }, fmt.Sprintf("1..%d", n)},
		{"go_goroutines", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"process_resident_memory_bytes", nil, func(v float64) bool { return v > 0 }, "> 0"},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels...); !c.want(got) {
			t.Errorf("%s%v = %v; want %s", c.name, c.labels, got, c.says)
		}
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

// Ids, bad ids and unknown paths never become label values: the number of
// series does not grow with the number of distinct URLs.
func TestSeriesStayBoundedOverManyIDs(t *testing.T) {
	fixed := func(body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) })
	}
	s := buildStack(t, nil, map[string]http.Handler{
		"users": fixed(`{"id":1,"name":"a"}`), "orders": fixed(`{"orders":[]}`), "recs": fixed(`{"items":[]}`),
	}, true)
	for _, p := range []string{"/web/home/1", "/mobile/home/1", "/web/home/x", "/nowhere/1"} {
		s.get(t, p)
	}
	before := bffSeries(scrape(t, s.metrics.Handler()))

	const ids = 10_000
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for id := range next {
				switch id % 4 {
				case 0:
					s.get(t, fmt.Sprintf("/web/home/%d", id))
				case 1:
					s.get(t, fmt.Sprintf("/mobile/home/%d", id))
				case 2:
					s.get(t, fmt.Sprintf("/web/home/x%d", id)) // 400
				default:
					s.get(t, fmt.Sprintf("/nowhere/%d", id)) // 404
				}
			}
		})
	}
	for id := 2; id < 2+ids; id++ {
		next <- id
	}
	close(next)
	wg.Wait()

	fams := scrape(t, s.metrics.Handler())
	if after := bffSeries(fams); after != before {
		t.Errorf("%d bff_* series after %d distinct ids, %d before; want no growth", after, ids, before)
	}
	if got := value(t, fams, "bff_request_duration_seconds", "client", "none", "view", "none"); got < ids/4 {
		t.Errorf("unknown paths counted %v times; want at least %d", got, ids/4)
	}
}

// Every kind of upstream failure has its outcome label: a kind without one
// would panic on the request path.
func TestEveryOutcomeHasALabel(t *testing.T) {
	m := telemetry.New()
	r := m.Upstream("u")
	for k := upstream.Kind(0); k <= upstream.KindBulkheadFull; k++ {
		r.CallStarted(context.Background())
		r.CallDone(context.Background(), upstream.CallResult{Kind: k, Attempts: 1, Err: errors.New("x")})
	}
	fams := scrape(t, m.Handler())
	if got := value(t, fams, "bff_upstream_calls_total", "upstream", "u", "outcome", "bulkhead_full"); got != 1 {
		t.Errorf("bulkhead_full counted %v times; want 1", got)
	}
}

// Reloads of the views are counted by result, and a failed one is there at
// 0 from the start, so an alert on its increase needs no first failure.
func TestViewsReloadsAreCounted(t *testing.T) {
	m := telemetry.New()
	if got := value(t, scrape(t, m.Handler()), "bff_views_reloads_total", "result", "failed"); got != 0 {
		t.Fatalf("failed reloads before any: %v", got)
	}
	m.ViewsReloaded(true)
	m.ViewsReloaded(false)
	m.ViewsReloaded(false)
	fams := scrape(t, m.Handler())
	if ok, failed := value(t, fams, "bff_views_reloads_total", "result", "ok"), value(t, fams, "bff_views_reloads_total", "result", "failed"); ok != 1 || failed != 2 {
		t.Errorf("reloads ok %v, failed %v; want 1, 2", ok, failed)
	}
}
