package upstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/bffproxy/bff/upstream"
)

// The retry budget is spent only by retries that are made. A call whose
// last allowed attempt fails (Retry.Max reached) has no retry due, so it
// neither takes a token from the budget nor reports RetryDenied
// (retryablehttp asks CheckRetry before it checks RetryMax).
//
// Budget: a floor of 2 retries per window (0.2/s × 10s), ratio ~0. With
// Retry.Max = 1 against an always-503 upstream, each of two calls makes
// its one retry.
func TestRetryBudgetNotSpentOnLastAttempt(t *testing.T) {
	s := newServer(t, statuses(503))
	cfg := testConfig(s.URL)
	cfg.Retry.Max = 1
	cfg.RetryBudget = upstream.BudgetConfig{Ratio: 1e-9, MinPerSecond: 0.2, Window: 10 * time.Second}
	obs := &countingObserver{}
	cfg.Observer = obs
	c := newClient(t, cfg)

	_, err := c.Do(context.Background(), &upstream.Request{Path: "/x"})
	ue := upstreamError(t, err)
	if ue.Attempts != 2 {
		t.Fatalf("first call: %d attempts; want 2 (one retry, within the budget of 2)", ue.Attempts)
	}
	if ue.RetryDenied {
		t.Errorf("first call reports RetryDenied after using its only allowed retry: no retry was due, none was denied")
	}

	_, err = c.Do(context.Background(), &upstream.Request{Path: "/x"})
	ue = upstreamError(t, err)
	if ue.Attempts != 2 || ue.RetryDenied {
		t.Errorf("second call: %d attempts, RetryDenied %v; want 2 attempts: only 1 of the budget's 2 retries was made so far",
			ue.Attempts, ue.RetryDenied)
	}
	if got := s.calls.Load(); got != 4 {
		t.Errorf("upstream saw %d attempts for 2 calls with a budget of 2 retries; want 4", got)
	}
}

// With retries off (Retry.Max = 0), no failed call is "denied a retry":
// bff_upstream_retries_denied_total stays at zero however many calls fail.
func TestNoRetriesConfiguredMeansNoneDenied(t *testing.T) {
	s := newServer(t, statuses(503))
	cfg := testConfig(s.URL)
	cfg.Retry.Max = 0
	cfg.RetryBudget = upstream.BudgetConfig{Ratio: 0.2, MinPerSecond: 0.1, Window: 10 * time.Second}
	obs := &countingObserver{}
	cfg.Observer = obs
	c := newClient(t, cfg)
	for range 20 {
		_, err := c.Do(context.Background(), &upstream.Request{Path: "/x"})
		wantStatusError(t, err, 503, 1)
	}
	if n := obs.denied.Load(); n != 0 {
		t.Errorf("%d of 20 calls reported a denied retry with Retry.Max = 0; want 0 (no retry was ever due)", n)
	}
}
