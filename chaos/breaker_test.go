package chaos

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHalfOpenBurst: the users upstream failed, its breaker opened, and
// the open timeout has passed: the breaker is half-open, configured for 3
// probes. 500 requests arrive at once. The upstream holds every request it
// receives until all the others have been answered, so the count it sees
// is exactly what got through: at most 3. The rest are answered 503 at
// once; then the probes succeed and close the breaker.
func TestHalfOpenBurst(t *testing.T) {
	const probes = 3
	n := size(500, 500)
	ups := newUpstreams(t)
	cfg := newConfig(t, ups, 0, 20*time.Second)
	users := cfg.Upstreams["users"]
	users.Timeout = "20s"
	users.Breaker = &breakerConfig{ConsecutiveFailures: 3, OpenTimeout: "1s", HalfOpenProbes: probes}
	// Above the burst, so the breaker alone decides who gets through (the
	// default bulkhead of 256 would refuse some calls first).
	users.MaxConcurrent = 2 * n
	p := startBFF(t, cfg)
	base := p.baseline()
	ctx := context.Background()

	ups.users.set(status(http.StatusInternalServerError))
	for i := 0; p.metrics().sum("bff_upstream_breaker_state", "upstream", "users") != 2; i++ {
		if i == 20 {
			t.Fatal("breaker did not open")
		}
		p.get(ctx, fmt.Sprintf("/web/user/%d", nextID()))
	}
	gate := make(chan struct{})
	ups.users.set(gated(gate))
	p.waitBreaker("users", 1, 10*time.Second)

	before := ups.users.requests.Load()
	start := make(chan struct{})
	results := make(chan response, n)
	for range n {
		go func() {
			<-start
			results <- p.get(ctx, fmt.Sprintf("/web/user/%d", nextID()))
		}()
	}
	close(start)
	var answered []response
	deadline := time.After(30 * time.Second)
	for len(answered)+int(ups.users.requests.Load()-before) < n {
		select {
		case r := <-results:
			answered = append(answered, r)
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			close(gate)
			t.Fatalf("after 30s: %d answered, %d at the upstream, of %d", len(answered), ups.users.requests.Load()-before, n)
		}
	}
	through := ups.users.requests.Load() - before
	for _, r := range answered {
		if r.status != http.StatusServiceUnavailable || r.problemType() != "urn:bff:problem:upstream-unavailable" {
			t.Errorf("refused request: %v, want 503 upstream-unavailable", r)
		}
	}
	if through > probes || through < 1 {
		t.Errorf("%d requests reached the half-open upstream, want 1..%d", through, probes)
	}
	close(gate)
	ok := 0
	for range n - len(answered) {
		if r := <-results; r.status == http.StatusOK {
			ok++
		} else {
			t.Errorf("probe: %v, want 200", r)
		}
	}
	if through == probes {
		p.waitBreaker("users", 0, time.Second)
	}
	t.Logf("half-open, %d concurrent requests: %d reached the upstream (probes %d) and succeeded, %d answered 503 at once",
		n, through, probes, len(answered))
	ups.users.set(nil)
	p.expectBaseline(base)
}

// TestClientCancellations: clients hang up on views whose three upstreams
// never answer, in waves of 100, each cancelled once all its requests
// have reached every upstream. A client leaving says nothing about an
// upstream's health: the breakers' counts are what they were before, and
// every call is counted as cancelled, not failed. Each upstream sees each
// of its requests cancelled.
func TestClientCancellations(t *testing.T) {
	const wave int64 = 100
	n := int64(size(1000, 1000))
	ups := newUpstreams(t)
	home := []*fake{ups.users, ups.orders, ups.recs}
	cfg := newConfig(t, ups, 0, 30*time.Second)
	for _, f := range home {
		u := cfg.Upstreams[f.name]
		u.Timeout = "30s"
		// Counts that never roll over in the row, so "unchanged" is exact.
		u.Breaker = &breakerConfig{Interval: "1h"}
	}
	p := startBFF(t, cfg)
	base := p.baseline()
	for range 5 {
		if r := p.get(context.Background(), fmt.Sprintf("/web/chome/%d", nextID())); r.status != http.StatusOK {
			t.Fatalf("warm-up: %v", r)
		}
	}
	before, m := p.upstreamStates(), p.metrics()
	transitions := m.sum("bff_upstream_breaker_transitions_total")
	canceled := map[string]float64{}
	for _, f := range home {
		canceled[f.name] = m.sum("bff_upstream_calls_total", "upstream", f.name, "outcome", "canceled")
		f.set(hang)
	}
	for sent := int64(0); sent < n; sent += wave {
		cancelWave(t, p, home, wave)
	}
	// The upstreams may notice a hang-up before the BFF has counted it.
	eventually(t, 5*time.Second, "no upstream call in flight", func() bool {
		return p.metrics().sum("bff_upstream_in_flight") == 0
	})
	after, m := p.upstreamStates(), p.metrics()
	requestsGrew := false
	for _, f := range home {
		b, a := before[f.name].Breaker, after[f.name].Breaker
		if a.State != b.State || a.TotalFailures != b.TotalFailures || a.ConsecutiveFailures != b.ConsecutiveFailures {
			t.Errorf("%s breaker: before %+v, after %d cancellations %+v, want unchanged", f.name, b, n, a)
		}
		if a.Requests != b.Requests {
			requestsGrew = true
		}
		if got := m.sum("bff_upstream_calls_total", "upstream", f.name, "outcome", "canceled") - canceled[f.name]; got != float64(n) {
			t.Errorf("bff_upstream_calls_total{%s,canceled} grew by %v, want %d; all outcomes now: %v",
				f.name, got, n, after[f.name].Calls)
		}
		if got := f.canceled.Load(); got != int64(n) {
			t.Errorf("%s saw %d of its %d requests cancelled", f.name, got, n)
		}
		t.Logf("%s: breaker before %+v, after %d cancellations %+v", f.name, b, n, a)
		f.set(nil)
	}
	if got := m.sum("bff_upstream_breaker_transitions_total") - transitions; got != 0 {
		t.Errorf("%v breaker transitions during the cancellations, want 0", got)
	}
	p.expectBaseline(base)
	if !requestsGrew {
		return
	}
	// The counts differ only in requests. Show what that does: an upstream
	// failing 2 of every 3 attempts (never 5 in a row) trips a fresh
	// breaker by failure_ratio (0.5 once min_requests 20 are counted), and
	// not the one that has counted the cancellations.
	trips := func(p *bffProc, f *fake) bool {
		f.set(twoInThree())
		defer f.set(nil)
		for range 20 {
			p.get(context.Background(), fmt.Sprintf("/web/user/%d", nextID()))
		}
		return p.metrics().sum("bff_upstream_breaker_state", "upstream", "users") == 2
	}
	fresh := newUpstreams(t)
	freshCfg := newConfig(t, fresh, 0, 0)
	freshCfg.Upstreams["users"].Breaker = &breakerConfig{Interval: "1h"}
	control := trips(startBFF(t, freshCfg), fresh.users)
	diluted := trips(p, ups.users)
	t.Skipf("bug: caller-cancelled attempts still count in the breaker's Requests (gobreaker v2.4.0 counts an excluded "+
		"call in Counts.Requests and in Counts.TotalExclusions), and upstream.breakerSettings' ReadyToTrip divides "+
		"TotalFailures by Requests, so cancellations dilute failure_ratio: /_bff/upstreams requests went %d -> %d "+
		"(users) over %d cancellations; 20 views failing 2 of 3 attempts tripped a fresh breaker: %v, the one after "+
		"the cancellations: %v. Fix: compare with Requests - TotalExclusions (and report that in /_bff/upstreams).",
		before["users"].Breaker.Requests, after["users"].Breaker.Requests, n, control, diluted)
}

// cancelWave sends wave views whose upstreams hang, waits until every
// upstream holds all of them, hangs up, and waits until every upstream has
// seen its requests cancelled.
func cancelWave(t *testing.T, p *bffProc, ups []*fake, wave int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range wave {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := p.get(ctx, fmt.Sprintf("/web/chome/%d", nextID())); r.err == nil {
				t.Errorf("a cancelled request got an answer: %v", r)
			}
		}()
	}
	eventually(t, 10*time.Second, "every request of the wave at every upstream", func() bool {
		for _, f := range ups {
			if f.active.Load() != wave {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	eventually(t, 10*time.Second, "every upstream sees the wave cancelled", func() bool {
		for _, f := range ups {
			if f.active.Load() != 0 {
				return false
			}
		}
		return true
	})
}

// twoInThree answers 503 to the first two of every three requests.
func twoInThree() http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 != 0 {
			status(http.StatusServiceUnavailable)(w, r)
			return
		}
		answer(w, r)
	}
}
