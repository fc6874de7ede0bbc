package shared

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/redistest"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBadURLDoesNotEchoThePassword(t *testing.T) {
	for _, u := range []string{"redis://user:s3cret@host:notaport", "http://user:s3cret@host", "redis://user:s3cret@[::1"} {
		if _, err := New(Config{URL: u}); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

type states struct {
	mu  sync.Mutex
	ups []bool
	ops map[string]int
}

func (s *states) Command(op, outcome string, _ time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ops == nil {
		s.ops = map[string]int{}
	}
	s.ops[outcome]++
}

func (s *states) Up(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ups = append(s.ups, up)
}

// A Redis that does not answer costs each command at most the timeout,
// then nothing at all while the breaker is open.
func TestUnreachableRedisOpensTheBreaker(t *testing.T) {
	hung := redistest.Hung(t) // every command times out
	obs := &states{}
	r, err := New(Config{URL: hung, Timeout: 20 * time.Millisecond, OpenFor: time.Hour, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	get := func() error {
		return r.Do(context.Background(), "get", func(ctx context.Context, c *redis.Client) error {
			return c.Get(ctx, "k").Err()
		})
	}
	for i := range 3 {
		if err := get(); err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("command %d: %v; want a timeout", i, err)
		}
	}
	if err := get(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after 3 failures: %v; want ErrUnavailable without asking", err)
	}
	st := r.Status()
	if !st.Degraded || st.State != "open" || st.LastError != "get: timeout" || r.Available() {
		t.Errorf("status %+v", st)
	}
	if len(obs.ups) != 1 || obs.ups[0] || obs.ops["error"] != 3 || obs.ops["rejected"] != 1 {
		t.Errorf("observed %v %v", obs.ups, obs.ops)
	}
	// A caller that gives up says nothing about Redis.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r2, _ := New(Config{URL: hung, Timeout: 20 * time.Millisecond})
	defer func() { _ = r2.Close() }()
	for range 5 {
		_ = r2.Do(ctx, "get", func(ctx context.Context, c *redis.Client) error { return c.Get(ctx, "k").Err() })
	}
	if !r2.Available() {
		t.Error("canceled callers opened the breaker")
	}
}

// Status is read (by /readyz, the status page) while the breaker changes
// state, which calls back into the link under the breaker's own lock: the
// two must not wait for each other.
func TestStatusWhileTheBreakerChangesState(t *testing.T) {
	r, err := New(Config{URL: "redis://127.0.0.1:1", FailuresToOpen: 1, OpenFor: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	fail := func(context.Context, *redis.Client) error { return errors.New("down") }
	succeed := func(context.Context, *redis.Client) error { return nil }

	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				_ = r.Status()
			}
		}
	}()
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		for range 300 { // closed -> open -> half-open -> closed, 300 times
			_ = r.Do(context.Background(), "get", fail)
			for r.Do(context.Background(), "get", succeed) != nil {
				time.Sleep(100 * time.Microsecond) // until the breaker lets a probe through
			}
		}
	}()
	select {
	case <-flipped:
	case <-time.After(30 * time.Second): // a bound on a deadlock, far above the ~1 s this takes
		t.Fatal("Status and the breaker's state changes deadlocked")
	}
	close(stop)
	<-done
}
