// Package telemetry measures the BFF for operators: Prometheus metrics for
// views, upstreams and the cache, OpenTelemetry tracing, and the snapshot
// behind the status page. Label values are only names from the views and
// the config, never paths or ids, so the number of series stays bounded.
package telemetry

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/upstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sony/gobreaker/v2"
)

// latencyBuckets cover a cache hit (well under a millisecond) to a view
// that runs into its deadline (seconds).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics owns the registry and every series the BFF exports.
type Metrics struct {
	reg *prometheus.Registry

	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	partial     *prometheus.CounterVec
	cacheLookup *prometheus.CounterVec
	shed        *prometheus.CounterVec
	missing     *prometheus.CounterVec

	calls        *prometheus.CounterVec
	callDuration *prometheus.HistogramVec
	retries      *prometheus.CounterVec
	inFlight     *prometheus.GaugeVec
	transitions  *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	denied       *prometheus.CounterVec
	reloads      *prometheus.CounterVec
	jwks         *prometheus.CounterVec

	mu        sync.Mutex
	views     map[string]*ViewRecorder
	upstreams map[string]*UpstreamRecorder
}

// New registers the BFF's series and the Go runtime and process collectors
// in a registry of its own.
func New() *Metrics {
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		views:     map[string]*ViewRecorder{},
		upstreams: map[string]*UpstreamRecorder{},
	}
	view := []string{"client", "view"}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_requests_total", Help: "Requests by client, view and status class (code: 2xx..5xx).",
	}, append(view, "code"))
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "bff_request_duration_seconds", Help: "Time from the first byte of a request to the end of its response.",
		Buckets: latencyBuckets,
	}, view)
	m.partial = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_partial_responses_total", Help: "200 responses with an optional part missing (Bff-Partial).",
	}, view)
	m.cacheLookup = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_cache_requests_total",
		Help: "View requests by cache result: hit, miss (the view ran), coalesced (waited for an identical request), stale (a copy past its TTL was served), shared (a memory miss served from Redis).",
	}, append(view, "result"))
	m.shed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_shed_total", Help: "Requests turned away with 503 before any upstream work because too many were in progress.",
	}, view)

	up := []string{"upstream"}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_upstream_calls_total",
		Help: "Upstream calls, retries included, by outcome: ok, http_error, timeout, breaker_open, canceled, transport_error, bad_response.",
	}, append(up, "outcome"))
	m.callDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "bff_upstream_call_duration_seconds", Help: "Upstream call time, all attempts and backoff included.",
		Buckets: latencyBuckets,
	}, up)
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_upstream_retries_total", Help: "Attempts after the first one of a call.",
	}, up)
	m.inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bff_upstream_in_flight", Help: "Upstream calls running now.",
	}, up)
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_upstream_breaker_transitions_total", Help: "Circuit breaker state changes, by the state entered.",
	}, append(up, "to"))

	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_upstream_attempts_total",
		Help: "Network attempts, retries included: the load the upstream saw (result ok: an answer below 500 other than 429; canceled: the BFF abandoned it).",
	}, append(up, "result"))
	m.denied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_upstream_retries_denied_total", Help: "Retries not made because the upstream's retry budget was spent.",
	}, up)

	m.missing = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_view_missing_fields_total",
		Help: "Response fields their upstream did not send although the call succeeded (no default or omit): the upstream may have changed.",
	}, append(view, "field"))
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_views_reloads_total",
		Help: "Reloads of the views (a signal, a changed views directory), by result: ok, or failed (the previous views keep serving).",
	}, []string{"result"})
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed") // present at 0, for alerts on its increase
	m.jwks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bff_auth_jwks_failures_total",
		Help: "Failed reads of a client's jwks_url: while they last, tokens signed with keys not yet known are refused (401).",
	}, []string{"client"})
	m.reg.MustRegister(m.requests, m.duration, m.partial, m.cacheLookup, m.shed, m.missing, m.reloads, m.jwks,
		m.calls, m.callDuration, m.retries, m.inFlight, m.transitions, m.attempts, m.denied,
		&breakerCollector{m: m}, &poolCollector{m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry is where the series live, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ViewRecorder records one view's requests with its series resolved once.
type ViewRecorder struct {
	client, view string
	byClass      [6]prometheus.Counter // index status/100
	duration     prometheus.Observer
	partial      prometheus.Counter
	shed         prometheus.Counter
	missing      *prometheus.CounterVec
	cache        [6]prometheus.Counter // index bff.CacheResult; [0] unused

	mu           sync.Mutex // guards the latency baselines of the status page
	older, newer *histogramBaseline
}

// View implements bff.Metrics. Requests no view took are counted under
// client and view "none".
func (m *Metrics) View(client, view string) bff.ViewMetrics {
	if client == "" {
		client, view = "none", "none"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := client + "/" + view
	if r, ok := m.views[key]; ok {
		return r
	}
	r := &ViewRecorder{client: client, view: view}
	for class := 1; class <= 5; class++ {
		r.byClass[class] = m.requests.WithLabelValues(client, view, string(rune('0'+class))+"xx")
	}
	r.duration = m.duration.WithLabelValues(client, view)
	r.partial = m.partial.WithLabelValues(client, view)
	r.shed = m.shed.WithLabelValues(client, view)
	r.missing = m.missing
	if client != "none" {
		r.cache[bff.CacheHit] = m.cacheLookup.WithLabelValues(client, view, "hit")
		r.cache[bff.CacheMiss] = m.cacheLookup.WithLabelValues(client, view, "miss")
		r.cache[bff.CacheCoalesced] = m.cacheLookup.WithLabelValues(client, view, "coalesced")
		r.cache[bff.CacheStale] = m.cacheLookup.WithLabelValues(client, view, "stale")
		r.cache[bff.CacheShared] = m.cacheLookup.WithLabelValues(client, view, "shared")
	}
	m.views[key] = r
	return r
}

// Request implements bff.ViewMetrics.
func (r *ViewRecorder) Request(status int, d time.Duration, c bff.CacheResult, partial bool) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 5
	}
	r.byClass[class].Inc()
	r.duration.Observe(d.Seconds())
	if partial {
		r.partial.Inc()
	}
	if c != bff.CacheNone && r.cache[c] != nil {
		r.cache[c].Inc()
	}
}

// Shed implements bff.ViewMetrics.
func (r *ViewRecorder) Shed() { r.shed.Inc() }

// MissingField implements bff.ViewMetrics. Field names come from the view
// definition, so the series stay bounded.
func (r *ViewRecorder) MissingField(field string) {
	r.missing.WithLabelValues(r.client, r.view, field).Inc()
}

// UpstreamRecorder is one upstream's upstream.Observer, with its series
// resolved once. Attach the client to export its breaker state.
type UpstreamRecorder struct {
	name         string
	inFlight     prometheus.Gauge
	duration     prometheus.Observer
	retries      prometheus.Counter
	denied       prometheus.Counter
	attemptOK    prometheus.Counter
	attemptError prometheus.Counter
	// attemptCanceled: the BFF abandoned the attempt (its caller left, a
	// sibling failed): no fault of the upstream's.
	attemptCanceled prometheus.Counter
	outcomes        [upstream.KindBulkheadFull + 1]prometheus.Counter // index Kind; 0 is ok
	toState         map[gobreaker.State]prometheus.Counter
	client          atomic.Pointer[upstream.Client]
	url             atomic.Pointer[string]
	lastError       atomic.Pointer[lastError]
	onTransition    func(from, to gobreaker.State)
}

type lastError struct {
	at  time.Time
	err string
}

// outcomeNames label upstream.Kind values; index 0 is success.
var outcomeNames = [...]string{
	0:                         "ok",
	upstream.KindTransport:    "transport_error",
	upstream.KindTimeout:      "timeout",
	upstream.KindCanceled:     "canceled",
	upstream.KindBreakerOpen:  "breaker_open",
	upstream.KindStatus:       "http_error",
	upstream.KindBadResponse:  "bad_response",
	upstream.KindBulkheadFull: "bulkhead_full",
}

// Upstream returns the recorder of one upstream, creating its series.
func (m *Metrics) Upstream(name string) *UpstreamRecorder {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.upstreams[name]; ok {
		return r
	}
	r := &UpstreamRecorder{
		name:     name,
		inFlight: m.inFlight.WithLabelValues(name),
		duration: m.callDuration.WithLabelValues(name),
		retries:  m.retries.WithLabelValues(name),
		denied:   m.denied.WithLabelValues(name),
		toState:  map[gobreaker.State]prometheus.Counter{},
	}
	r.attemptOK = m.attempts.WithLabelValues(name, "ok")
	r.attemptError = m.attempts.WithLabelValues(name, "error")
	r.attemptCanceled = m.attempts.WithLabelValues(name, "canceled")
	for k, label := range outcomeNames {
		r.outcomes[k] = m.calls.WithLabelValues(name, label)
	}
	for _, s := range []gobreaker.State{gobreaker.StateClosed, gobreaker.StateHalfOpen, gobreaker.StateOpen} {
		r.toState[s] = m.transitions.WithLabelValues(name, s.String())
	}
	m.upstreams[name] = r
	return r
}

// Attach makes the recorder read the breaker state and URL of c.
func (r *UpstreamRecorder) Attach(c *upstream.Client, url string) {
	r.client.Store(c)
	r.url.Store(&url)
}

// CallStarted implements upstream.Observer.
func (r *UpstreamRecorder) CallStarted(context.Context) { r.inFlight.Inc() }

// CallDone implements upstream.Observer.
func (r *UpstreamRecorder) CallDone(ctx context.Context, res upstream.CallResult) {
	r.inFlight.Dec()
	kind := res.Kind
	if int(kind) >= len(r.outcomes) {
		kind = upstream.KindTransport
	}
	r.outcomes[kind].Inc()
	r.duration.Observe(res.Duration.Seconds())
	if res.Attempts > 1 {
		r.retries.Add(float64(res.Attempts - 1))
	}
	if res.RetryDenied {
		r.denied.Inc()
	}
	if res.Err != nil && kind != upstream.KindCanceled {
		r.lastError.Store(&lastError{at: time.Now(), err: res.Err.Error()})
	}
	if kind == upstream.KindBreakerOpen {
		breakerRejected(ctx, r.name)
	}
}

// AttemptDone implements upstream.Observer.
func (r *UpstreamRecorder) AttemptDone(ctx context.Context, status int, err error) {
	switch {
	case err == nil && status < 500 && status != http.StatusTooManyRequests:
		r.attemptOK.Inc()
	case err != nil && (errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled)):
		r.attemptCanceled.Inc()
	default:
		r.attemptError.Inc()
	}
}

// BreakerChanged counts a transition; wire it to upstream.Config.OnStateChange.
func (r *UpstreamRecorder) BreakerChanged(from, to gobreaker.State) {
	if c, ok := r.toState[to]; ok {
		c.Inc()
	}
}

// breakerCollector exports each attached upstream's breaker state, read at
// scrape time (gobreaker moves from open to half-open lazily, when asked).
type breakerCollector struct{ m *Metrics }

var breakerStateDesc = prometheus.NewDesc("bff_upstream_breaker_state",
	"Circuit breaker state: 0 closed, 1 half-open, 2 open.", []string{"upstream"}, nil)

func (b *breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- breakerStateDesc }

func (b *breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range b.m.upstreamList() {
		if c := r.client.Load(); c != nil {
			ch <- prometheus.MustNewConstMetric(breakerStateDesc, prometheus.GaugeValue, breakerValue(c.BreakerState()), r.name)
		}
	}
}

var (
	connectionsDesc = prometheus.NewDesc("bff_upstream_connections",
		"Keep-alive connections to the upstream, by state (active: carrying a call; idle: pooled). Plain-HTTP upstreams only.",
		[]string{"upstream", "state"}, nil)
	dialsDesc = prometheus.NewDesc("bff_upstream_dials_total",
		"Connections opened to the upstream. Growing with traffic rather than levelling off means connections are not reused. Plain-HTTP upstreams only.",
		[]string{"upstream"}, nil)
)

// poolCollector exports each attached upstream's connection pool, read at
// scrape time.
type poolCollector struct{ m *Metrics }

func (p *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectionsDesc
	ch <- dialsDesc
}

func (p *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range p.m.upstreamList() {
		c := r.client.Load()
		if c == nil {
			continue
		}
		st, ok := c.PoolStats()
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(max(st.Open-st.Idle, 0)), r.name, "active")
		ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(st.Idle), r.name, "idle")
		ch <- prometheus.MustNewConstMetric(dialsDesc, prometheus.CounterValue, float64(st.Dials), r.name)
	}
}

func breakerValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

func (m *Metrics) upstreamList() []*UpstreamRecorder {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*UpstreamRecorder, 0, len(m.upstreams))
	for _, r := range m.upstreams {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// ViewsReloaded counts a reload of the views (a signal, a changed views
// directory): loaded, or refused with the previous views still serving.
func (m *Metrics) ViewsReloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
	} else {
		m.reloads.WithLabelValues("failed").Inc()
	}
}

// JWKSWatched makes a client's failed key-set reads countable from 0, and
// returns what counts one.
func (m *Metrics) JWKSWatched(client string) (failed func()) {
	c := m.jwks.WithLabelValues(client)
	return c.Inc
}

// WatchLog exports how many log lines the process dropped because its log
// output was stuck or failing.
func (m *Metrics) WatchLog(dropped func() uint64) error {
	return m.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "bff_log_lines_dropped_total", Help: "Log lines dropped because the log output was stuck or failing.",
	}, func() float64 { return float64(dropped()) }))
}

// WatchCache exports the cache's size and evictions.
func (m *Metrics) WatchCache(c *cache.Cache) error {
	stat := func(f func(cache.Stats) float64) func() float64 { return func() float64 { return f(c.Stats()) } }
	for _, col := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bff_cache_bytes", Help: "Bytes held by cached responses (estimate)."},
			stat(func(s cache.Stats) float64 { return float64(s.Bytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bff_cache_max_bytes", Help: "The cache's size bound; 0 when the cache is off."},
			stat(func(s cache.Stats) float64 { return float64(s.MaxBytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bff_cache_entries", Help: "Cached responses (estimate)."},
			stat(func(s cache.Stats) float64 { return float64(s.Entries) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "bff_cache_evictions_total", Help: "Cached responses dropped for space or at their TTL."},
			stat(func(s cache.Stats) float64 { return float64(s.Evictions) })),
	} {
		if err := m.reg.Register(col); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}
