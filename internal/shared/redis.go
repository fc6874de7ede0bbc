// Package shared is the link to the Redis server that replicas share: the
// second cache tier, purges across replicas, cross-replica coalescing and
// rate-limit counters all go through it. Redis must never take the BFF
// down with it, so every command has a short deadline and passes a circuit
// breaker of its own; while Redis is unreachable, callers fall back to what
// one replica can do alone (memory cache, local rate limits).
package shared

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/sony/gobreaker/v2"
)

// Config is the connection to Redis.
type Config struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// for TLS.
	URL string
	// Prefix namespaces every key and channel, so several deployments can
	// share one Redis. Default "bff".
	Prefix string
	// Timeout bounds each command, connecting included. Default 100ms: a
	// Redis further away than that is slower than asking the upstreams.
	Timeout time.Duration
	// FailuresToOpen consecutive failures open the breaker. Default 3.
	FailuresToOpen uint32
	// OpenFor is how long the breaker stays open before one probe. Default 2s.
	OpenFor time.Duration
	// Logger receives the degradation and recovery, once each.
	Logger *slog.Logger
	// Observer receives per-command outcomes and state changes. Optional.
	Observer Observer
}

// Observer is told about commands and the link's state, for metrics.
type Observer interface {
	// Command is one command's outcome: ok, miss, error or rejected (the
	// breaker was open and Redis was not asked).
	Command(op, outcome string, d time.Duration)
	// Up reports a change: false when the breaker opens, true when it closes.
	Up(up bool)
}

// ErrUnavailable is returned, without asking Redis, while the breaker is open.
var ErrUnavailable = errors.New("shared: redis unavailable, falling back to memory")

// Redis is a Redis client behind short deadlines and a breaker.
type Redis struct {
	client  *redis.Client
	breaker *gobreaker.CircuitBreaker[struct{}]
	prefix  string
	timeout time.Duration
	log     *slog.Logger
	obs     Observer

	mu       sync.Mutex
	degraded bool
	since    time.Time
	lastErr  string
}

// quiet drops go-redis's own log lines: it logs every failed dial, which
// in an outage is one line per request. The degradation is logged once,
// by stateChanged, and counted in metrics.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

// New builds the client. It does not connect: the first commands do, and
// a Redis that is down at start is a degradation like any other.
func New(cfg Config) (*Redis, error) {
	quietOnce.Do(func() { redis.SetLogger(quiet{}) })
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// Not wrapped: the parser's message quotes the URL, password and all.
		return nil, errors.New("shared: the redis url is not valid: want redis://[user:password@]host:port[/db] or rediss://")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 100 * time.Millisecond
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "bff"
	}
	if cfg.FailuresToOpen == 0 {
		cfg.FailuresToOpen = 3
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = 2 * time.Second
	}
	// go-redis ignores a context's deadline on a running command unless
	// told to, and its socket timeouts default to 5s: both are set.
	opt.ContextTimeoutEnabled = true
	opt.ReadTimeout = cfg.Timeout
	opt.WriteTimeout = cfg.Timeout
	opt.DialTimeout = 2 * cfg.Timeout
	opt.PoolTimeout = cfg.Timeout
	opt.DialerRetries = 1 // the default, 5 dials 100ms apart, outlasts any request
	opt.MaxRetries = -1   // a failed command falls back to memory; the breaker decides when to try again
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	r := &Redis{
		client:  redis.NewClient(opt),
		prefix:  cfg.Prefix,
		timeout: cfg.Timeout,
		log:     cfg.Logger,
		obs:     cfg.Observer,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.FailuresToOpen },
		// A miss is an answer, and a caller that gave up says nothing about Redis.
		IsSuccessful:  func(err error) bool { return err == nil || errors.Is(err, redis.Nil) },
		IsExcluded:    func(err error) bool { return errors.As(err, new(callerGone)) },
		OnStateChange: func(_ string, from, to gobreaker.State) { r.stateChanged(to) },
	})
	return r, nil
}

// Prefix is the namespace of keys and channels.
func (r *Redis) Prefix() string { return r.prefix }

// Client is the underlying client, for what Do cannot carry (a pub/sub
// connection outlives any one command).
func (r *Redis) Client() *redis.Client { return r.client }

// Do runs fn with a context bounded by the command timeout, through the
// breaker. While the breaker is open it returns ErrUnavailable at once.
// redis.Nil (no such key) is passed through and is not a failure.
func (r *Redis) Do(ctx context.Context, op string, fn func(ctx context.Context, c *redis.Client) error) error {
	start := time.Now()
	_, err := r.breaker.Execute(func() (struct{}, error) {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		defer cancel()
		err := fn(cctx, r.client)
		if err != nil && ctx.Err() != nil {
			err = callerGone{err} // the caller's own deadline or hang-up, not Redis's fault
		}
		return struct{}{}, err
	})
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, redis.Nil):
		outcome = "miss"
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		outcome, err = "rejected", ErrUnavailable
	default:
		outcome = "error"
		r.noteError(op, err)
		err = fmt.Errorf("shared: redis %s: %w", op, err)
	}
	if r.obs != nil {
		r.obs.Command(op, outcome, time.Since(start))
	}
	return err
}

// callerGone marks a failure that the caller's context caused.
type callerGone struct{ error }

func (c callerGone) Unwrap() error { return c.error }

// Available reports whether commands are being sent (the breaker is not open).
func (r *Redis) Available() bool { return r.breaker.State() != gobreaker.StateOpen }

func (r *Redis) noteError(op string, err error) {
	var ne net.Error
	msg := err.Error()
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "timeout"
	}
	r.mu.Lock()
	r.lastErr = op + ": " + msg
	r.mu.Unlock()
}

// stateChanged logs the degradation once when the breaker first opens and
// the recovery once when it closes again; half-open probes that fail do
// not log again.
func (r *Redis) stateChanged(to gobreaker.State) {
	r.mu.Lock()
	var log, up bool
	switch {
	case to == gobreaker.StateOpen && !r.degraded:
		r.degraded, r.since, log = true, time.Now(), true
	case to == gobreaker.StateClosed && r.degraded:
		r.degraded, r.since, log, up = false, time.Now(), true, true
	}
	lastErr := r.lastErr
	r.mu.Unlock()
	if !log {
		return
	}
	if up {
		r.log.Info("redis is reachable again: the shared cache tier, purges and rate limits are back")
	} else {
		r.log.Warn("redis is unreachable: serving from the memory cache with local rate limits until it is back (still ready)",
			"error", lastErr)
	}
	if r.obs != nil {
		r.obs.Up(up)
	}
}

// Status is the link's state, for /readyz and the status page.
type Status struct {
	Degraded bool      `json:"degraded"`
	Since    time.Time `json:"since,omitzero"`
	State    string    `json:"breaker"`
	// LastError is the most recent failure, without credentials.
	LastError string `json:"last_error,omitempty"`
}

// Status reports whether the link is degraded, since when, and why.
func (r *Redis) Status() Status {
	// The breaker's state is read before taking r.mu, never under it: the
	// breaker calls stateChanged, which takes r.mu, under its own lock.
	state := r.breaker.State().String()
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Degraded: r.degraded, Since: r.since, State: state, LastError: r.lastErr}
}

// Close closes the connections.
func (r *Redis) Close() error { return r.client.Close() }
