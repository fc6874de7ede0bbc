package telemetry

import (
	"time"

	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/shared"
	"github.com/prometheus/client_golang/prometheus"
)

// RedisRecorder is the shared.Observer of the link to Redis.
type RedisRecorder struct {
	commands *prometheus.CounterVec
	duration *prometheus.HistogramVec
	up       prometheus.Gauge
}

// redisBuckets span a loopback round trip to the command timeout.
var redisBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25}

// Redis registers the Redis series and returns their recorder.
func (m *Metrics) Redis() (*RedisRecorder, error) {
	r := &RedisRecorder{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bff_redis_commands_total",
			Help: "Commands to Redis by operation and outcome: ok, miss (no such key), error, rejected (breaker open, Redis not asked).",
		}, []string{"op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bff_redis_command_duration_seconds", Help: "Time of commands that reached Redis.", Buckets: redisBuckets,
		}, []string{"op"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bff_redis_up",
			Help: "1 while Redis is used; 0 while it is unreachable and the BFF serves from memory with local rate limits.",
		}),
	}
	r.up.Set(1)
	for _, c := range []prometheus.Collector{r.commands, r.duration, r.up} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// WatchShared exports the shared tier's dropped writes, unpublished
// purges and whether it is in step with the purge log.
func (m *Metrics) WatchShared(t *cache.Shared) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bff_cache_shared_dropped_writes_total",
			Help: "Responses kept in memory only because too many writes to Redis were under way.",
		}, func() float64 { return float64(t.DroppedWrites()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bff_cache_shared_pending_purges",
			Help: "Purges made on this replica and not yet published to the others (Redis unreachable).",
		}, func() float64 { return float64(t.PendingPurges()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bff_cache_shared_synced",
			Help: "1 while this replica has read the purge log within the last 5s; 0: the shared tier is not read.",
		}, func() float64 {
			if t.Synced() {
				return 1
			}
			return 0
		}),
	} {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Command implements shared.Observer.
func (r *RedisRecorder) Command(op, outcome string, d time.Duration) {
	r.commands.WithLabelValues(op, outcome).Inc()
	if outcome != "rejected" {
		r.duration.WithLabelValues(op).Observe(d.Seconds())
	}
}

// Up implements shared.Observer.
func (r *RedisRecorder) Up(up bool) {
	if up {
		r.up.Set(1)
	} else {
		r.up.Set(0)
	}
}

var _ shared.Observer = (*RedisRecorder)(nil)
