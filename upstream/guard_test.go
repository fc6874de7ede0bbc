package upstream_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/upstream"
	"github.com/sony/gobreaker/v2"
)

// With every answer a 503, retries stop once they would add more than the
// budget's share of live traffic: the upstream sees at most calls×(1+ratio)
// plus the floor, not calls×(1+Max).
func TestRetryBudgetBoundsRetryLoad(t *testing.T) {
	s := newServer(t, statuses(503))
	cfg := testConfig(s.URL)
	cfg.Retry.Max = 3
	cfg.RetryBudget = upstream.BudgetConfig{Ratio: 0.2, MinPerSecond: 0.5, Window: time.Minute} // floor: 30 per minute
	obs := &countingObserver{}
	cfg.Observer = obs
	c := newClient(t, cfg)

	const calls = 500
	denied := 0
	for range calls {
		_, err := c.Do(context.Background(), &upstream.Request{Path: "/x"})
		if upstreamError(t, err).RetryDenied {
			denied++
		}
	}
	maxAttempts := int64(calls + 0.2*calls + 30)
	if got := s.calls.Load(); got > maxAttempts {
		t.Errorf("upstream saw %d attempts for %d calls; the budget allows at most %d", got, calls, maxAttempts)
	}
	if got := s.calls.Load(); got < calls+0.2*calls {
		t.Errorf("upstream saw %d attempts for %d calls; the budget should have let %d retries through", got, calls, int(0.2*calls))
	}
	if denied == 0 || obs.denied.Load() != int64(denied) {
		t.Errorf("%d calls said their retry was denied, the observer saw %d; want both > 0 and equal", denied, obs.denied.Load())
	}
	if obs.attempts.Load() != s.calls.Load() {
		t.Errorf("observer saw %d attempts, upstream %d", obs.attempts.Load(), s.calls.Load())
	}
}

// While traffic mostly succeeds, the budget does not get in the way of the
// retries that rescue the few failures.
func TestRetryBudgetLeavesOccasionalRetries(t *testing.T) {
	var n atomic.Int64
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		if n.Add(1)%10 == 0 { // every tenth attempt fails
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{}`))
	})
	cfg := testConfig(s.URL)
	cfg.RetryBudget = upstream.BudgetConfig{Ratio: 0.2, MinPerSecond: 0.1, Window: time.Minute}
	c := newClient(t, cfg)
	for i := range 300 {
		if _, err := c.Do(context.Background(), &upstream.Request{Path: "/x"}); err != nil {
			t.Fatalf("call %d failed: %v; a 10%% failure rate is within the budget", i, err)
		}
	}
}

// A negative ratio turns the budget off: Max alone bounds retries.
func TestRetryBudgetOff(t *testing.T) {
	s := newServer(t, statuses(503))
	cfg := testConfig(s.URL)
	cfg.RetryBudget = upstream.BudgetConfig{Ratio: -1}
	c := newClient(t, cfg)
	for range 50 {
		_, err := c.Do(context.Background(), &upstream.Request{Path: "/x"})
		wantStatusError(t, err, 503, 3)
	}
}

// A bulkhead bounds one upstream's calls in flight: past it a call fails
// fast, without a network attempt, and the slots come back when calls end.
func TestBulkheadFailsFastWhenFull(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	s := newServer(t, holding(release, arrived))
	cfg := testConfig(s.URL)
	cfg.MaxConcurrent = 2
	cfg.QueueWait = 5 * time.Millisecond
	obs := &countingObserver{}
	cfg.Observer = obs
	c := newClient(t, cfg)

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			_, err := c.Do(context.Background(), &upstream.Request{Path: "/slow"})
			errs <- err
		})
	}
	<-arrived
	<-arrived
	_, err := c.Do(context.Background(), &upstream.Request{Path: "/third"})
	ue := upstreamError(t, err)
	if ue.Kind != upstream.KindBulkheadFull || !errors.Is(err, upstream.ErrBulkheadFull) || ue.Attempts != 0 {
		t.Errorf("third call: kind %v attempts %d (%v); want bulkhead-full with no attempt", ue.Kind, ue.Attempts, err)
	}
	wantCalls(t, s, 2)
	if c.BreakerCounts().TotalFailures != 0 {
		t.Error("a full bulkhead counted against the upstream's breaker")
	}

	close(release)
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a call holding a slot failed: %v", err)
		}
	}
	if _, err := c.Do(context.Background(), &upstream.Request{Path: "/after"}); err != nil {
		t.Errorf("after the slow calls ended: %v; want the slots back", err)
	}
}

// A queued call gets a slot that frees up within QueueWait.
func TestBulkheadQueueWaitsForASlot(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		if call == 1 {
			arrived <- struct{}{}
			<-release
		}
		w.Write([]byte(`{}`))
	})
	cfg := testConfig(s.URL)
	cfg.MaxConcurrent = 1
	cfg.QueueWait = time.Minute // bounded by the call's deadline in practice
	c := newClient(t, cfg)
	first := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), &upstream.Request{Path: "/first"})
		first <- err
	}()
	<-arrived
	second := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), &upstream.Request{Path: "/second"})
		second <- err
	}()
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Errorf("queued call: %v; want it to get the freed slot", err)
	}
}

// holding answers each request once release is closed (or the caller
// leaves), after saying on arrived that it came.
func holding(release <-chan struct{}, arrived chan<- struct{}) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ int64) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write([]byte(`{}`))
	}
}

// A caller that leaves while its call waits for a slot is reported as
// canceled, not as a full bulkhead (which would page someone about an
// upstream's capacity for a client that hung up).
func TestCallerLeavingTheBulkheadQueueIsCanceled(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	s := newServer(t, holding(release, arrived))
	defer close(release)
	cfg := testConfig(s.URL)
	cfg.MaxConcurrent = 1
	cfg.QueueWait = time.Minute
	c := newClient(t, cfg)
	go func() { _, _ = c.Do(context.Background(), &upstream.Request{Path: "/holding"}) }()
	<-arrived
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, &upstream.Request{Path: "/queued"})
		waiting <- err
	}()
	cancel()
	if ue := upstreamError(t, <-waiting); ue.Kind != upstream.KindCanceled {
		t.Errorf("a caller that left the queue: kind %v (%v); want canceled", ue.Kind, ue)
	}
}

// Each attempt tells the upstream how long it has, in milliseconds, never
// more than the call's deadline allows; a client cannot set it.
func TestDeadlineHeader(t *testing.T) {
	var mu sync.Mutex
	var got []string
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		mu.Lock()
		got = append(got, r.Header.Get("X-Bff-Deadline-Ms"))
		mu.Unlock()
		if call == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{}`))
	})
	c := newClient(t, testConfig(s.URL))
	inbound := http.Header{"X-Bff-Deadline-Ms": {"999999"}}
	if _, err := c.Do(context.Background(), &upstream.Request{Path: "/x", Timeout: 800 * time.Millisecond, Header: inbound}); err != nil {
		t.Fatal(err)
	}
	values := seen()
	if len(values) != 2 {
		t.Fatalf("%d attempts; want 2", len(values))
	}
	prev := 801
	for i, v := range values {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 || ms >= prev {
			t.Errorf("attempt %d: X-Bff-Deadline-Ms %q; want a positive count of ms below %d", i+1, v, prev)
		}
		prev = ms
	}

	for _, name := range []string{"Request-Timeout", "-"} {
		cfg := testConfig(s.URL)
		cfg.DeadlineHeader = name
		if _, err := newClient(t, cfg).Do(context.Background(), &upstream.Request{Path: "/x"}); err != nil {
			t.Fatal(err)
		}
		if v := seen(); len(v) != 1 || v[0] != "" {
			t.Errorf("DeadlineHeader %q: X-Bff-Deadline-Ms still sent: %q", name, v)
		}
	}
}

// countingObserver counts what an upstream.Observer is told.
type countingObserver struct {
	started, done, attempts, denied atomic.Int64
}

func (o *countingObserver) CallStarted(context.Context) { o.started.Add(1) }
func (o *countingObserver) CallDone(_ context.Context, r upstream.CallResult) {
	o.done.Add(1)
	if r.RetryDenied {
		o.denied.Add(1)
	}
}
func (o *countingObserver) AttemptDone(context.Context, int, error) { o.attempts.Add(1) }

// Calls the caller abandoned are excluded from the breaker's judgement: a
// thousand hang-ups must not dilute the failure ratio of the calls that
// did reach a verdict.
func TestCancellationsDoNotDiluteTheFailureRatio(t *testing.T) {
	block := make(chan struct{})
	var fail atomic.Bool
	s := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		select {
		case <-block:
		case <-r.Context().Done():
		}
		w.Write([]byte(`{}`))
	})
	cfg := testConfig(s.URL)
	cfg.Retry.Max = 0
	cfg.Breaker = upstream.BreakerConfig{ConsecutiveFailures: 1000, FailureRatio: 0.5, MinRequests: 4, OpenTimeout: time.Minute}
	c := newClient(t, cfg)
	for range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			_, _ = c.Do(ctx, &upstream.Request{Path: "/x"})
			close(done)
		}()
		waitFor(t, "the call to reach the upstream", func() bool { return s.calls.Load() > 0 })
		cancel()
		<-done
		s.calls.Store(0)
	}
	close(block)
	fail.Store(true)
	for range 4 {
		_, _ = c.Do(context.Background(), &upstream.Request{Path: "/x"})
	}
	if st := c.BreakerState(); st != gobreaker.StateOpen {
		t.Errorf("breaker %v after 4 failures in 4 judged calls (and 50 hang-ups); want open", st)
	}
}
