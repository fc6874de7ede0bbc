package upstream

import (
	"sync"
	"time"
)

// BudgetConfig bounds the load retries add, as Linkerd and Envoy do: when
// an upstream fails broadly, retrying every call multiplies the load on it
// just when it can least take it.
type BudgetConfig struct {
	// Ratio is the most retries may add, as a share of the calls counted in
	// the window. Zero means 0.2; negative turns the budget off (retries
	// are then bounded by RetryConfig.Max alone).
	Ratio float64
	// MinPerSecond retries are allowed whatever the traffic, so a quiet
	// upstream can still be retried. Zero means 10.
	MinPerSecond float64
	// Window is how far back calls and retries are counted. Zero means 10s.
	Window time.Duration
}

const budgetBuckets = 10

// retryBudget counts calls and retries in a ring of time buckets.
type retryBudget struct {
	ratio    float64
	floor    float64 // retries always allowed per window
	bucket   int64   // nanoseconds per bucket
	mu       sync.Mutex
	counts   [budgetBuckets]budgetCount
	disabled bool
}

type budgetCount struct {
	slot           int64 // which bucket period the counts belong to
	calls, retries float64
}

func newRetryBudget(cfg BudgetConfig) *retryBudget {
	if cfg.Ratio < 0 {
		return &retryBudget{disabled: true}
	}
	if cfg.Ratio == 0 {
		cfg.Ratio = 0.2
	}
	if cfg.MinPerSecond <= 0 {
		cfg.MinPerSecond = 10
	}
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Second
	}
	return &retryBudget{
		ratio:  cfg.Ratio,
		floor:  cfg.MinPerSecond * cfg.Window.Seconds(),
		bucket: max(int64(cfg.Window)/budgetBuckets, 1),
	}
}

// current returns the bucket of now, emptied if it held an older period.
func (b *retryBudget) current(now time.Time) *budgetCount {
	slot := now.UnixNano() / b.bucket
	c := &b.counts[slot%budgetBuckets]
	if c.slot != slot {
		*c = budgetCount{slot: slot}
	}
	return c
}

// call counts a call (not its retries).
func (b *retryBudget) call(now time.Time) {
	if b.disabled {
		return
	}
	b.mu.Lock()
	b.current(now).calls++
	b.mu.Unlock()
}

// spend takes one retry from the budget, or reports there is none left.
func (b *retryBudget) spend(now time.Time) bool {
	if b.disabled {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.current(now)
	var calls, retries float64
	for i := range b.counts {
		if c := &b.counts[i]; c.slot > cur.slot-budgetBuckets {
			calls += c.calls
			retries += c.retries
		}
	}
	if retries+1 > b.ratio*calls+b.floor {
		return false
	}
	cur.retries++
	return true
}
