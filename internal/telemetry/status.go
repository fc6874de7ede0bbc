package telemetry

import (
	"math"
	"time"

	"github.com/bffproxy/bff/upstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// ViewStats is one view's counts since start and its recent latency.
type ViewStats struct {
	Requests  map[string]uint64 // "2xx".."5xx"
	Partial   uint64
	Cache     map[string]uint64 // hit, miss, coalesced
	LatencyMS map[string]*float64
}

// latencyWindow: percentiles describe the last one to two minutes, not the
// whole uptime, so a view that just got slow shows it.
const latencyWindow = time.Minute

type histogramBaseline struct {
	at      time.Time
	count   uint64
	buckets []uint64 // cumulative, per latencyBuckets
}

// ViewStats reads the counts of one view; ok is false if it never had a recorder.
func (m *Metrics) ViewStats(client, view string) (ViewStats, bool) {
	m.mu.Lock()
	r, ok := m.views[client+"/"+view]
	m.mu.Unlock()
	if !ok {
		return ViewStats{}, false
	}
	s := ViewStats{Requests: map[string]uint64{}, Cache: map[string]uint64{}}
	for class := 2; class <= 5; class++ {
		s.Requests[string(rune('0'+class))+"xx"] = counterValue(r.byClass[class])
	}
	s.Partial = counterValue(r.partial)
	for i, name := range []string{1: "hit", 2: "miss", 3: "coalesced", 4: "stale", 5: "shared"} {
		if i > 0 && r.cache[i] != nil {
			s.Cache[name] = counterValue(r.cache[i])
		}
	}
	s.LatencyMS = r.recentLatency(time.Now())
	return s, true
}

// recentLatency estimates p50/p90/p99 from the histogram's growth since a
// baseline one to two windows old.
func (r *ViewRecorder) recentLatency(now time.Time) map[string]*float64 {
	var pb dto.Metric
	if err := r.duration.(prometheus.Metric).Write(&pb); err != nil || pb.Histogram == nil {
		return nil
	}
	cur := histogramBaseline{at: now, count: pb.Histogram.GetSampleCount()}
	for _, b := range pb.Histogram.Bucket {
		cur.buckets = append(cur.buckets, b.GetCumulativeCount())
	}
	r.mu.Lock()
	if r.newer == nil {
		r.newer = &cur
	} else if now.Sub(r.newer.at) >= latencyWindow {
		r.older, r.newer = r.newer, &cur
	}
	base := r.older
	r.mu.Unlock()

	// Within the first window there is no baseline: all requests so far
	// are recent. After it, no request in the window means no figures.
	count := cur.count
	diff := append([]uint64(nil), cur.buckets...)
	if base != nil {
		count -= base.count
		for i := range diff {
			diff[i] -= base.buckets[i]
		}
	}
	out := map[string]*float64{"p50": nil, "p90": nil, "p99": nil}
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", .5}, {"p90", .9}, {"p99", .99}} {
		if v, ok := quantile(q.q, latencyBuckets, diff, count); ok {
			ms := math.Round(v*1e6) / 1e3
			out[q.name] = &ms
		}
	}
	return out
}

// quantile interpolates linearly inside the bucket holding the rank, as
// Prometheus' histogram_quantile does; past the last bound it reports it.
func quantile(q float64, bounds []float64, cumulative []uint64, count uint64) (float64, bool) {
	if count == 0 || len(cumulative) != len(bounds) {
		return 0, false
	}
	rank := q * float64(count)
	lower, below := 0.0, uint64(0)
	for i, c := range cumulative {
		if float64(c) >= rank {
			inBucket := float64(c - below)
			if inBucket == 0 {
				return bounds[i], true
			}
			return lower + (bounds[i]-lower)*(rank-float64(below))/inBucket, true
		}
		lower, below = bounds[i], c
	}
	return bounds[len(bounds)-1], true
}

// UpstreamStats is one upstream's counts since start.
type UpstreamStats struct {
	Calls     map[string]uint64 // by outcome
	Retries   uint64
	InFlight  int64
	LastError *ErrorNote
}

// ErrorNote is the most recent failure of an upstream.
type ErrorNote struct {
	Time  time.Time `json:"time"`
	Error string    `json:"error"`
}

// UpstreamStats reads the counts of one upstream.
func (m *Metrics) UpstreamStats(name string) (UpstreamStats, bool) {
	m.mu.Lock()
	r, ok := m.upstreams[name]
	m.mu.Unlock()
	if !ok {
		return UpstreamStats{}, false
	}
	s := UpstreamStats{Calls: map[string]uint64{}, Retries: counterValue(r.retries)}
	for k, label := range outcomeNames {
		s.Calls[label] = counterValue(r.outcomes[upstream.Kind(k)])
	}
	var g dto.Metric
	if err := r.inFlight.Write(&g); err == nil {
		s.InFlight = int64(g.GetGauge().GetValue())
	}
	if e := r.lastError.Load(); e != nil {
		s.LastError = &ErrorNote{Time: e.at, Error: e.err}
	}
	return s, true
}

func counterValue(c prometheus.Counter) uint64 {
	if c == nil {
		return 0
	}
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}
