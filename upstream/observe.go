package upstream

import (
	"context"
	"time"
)

// Observer watches one upstream's calls: metrics and traces hang off it.
// Its methods run on the request path, concurrently, and must be cheap.
type Observer interface {
	// CallStarted is called as a call begins, before the breaker is asked.
	CallStarted(ctx context.Context)
	// CallDone is called once per started call with how it ended.
	CallDone(ctx context.Context, r CallResult)
	// AttemptDone is called after each network attempt with its status
	// (zero if none came) and error: the load the upstream actually saw.
	AttemptDone(ctx context.Context, status int, err error)
}

// CallResult is how one call ended, all attempts included.
type CallResult struct {
	// Kind is zero for a 2xx answer, else why the call failed.
	Kind Kind
	// Status is the last HTTP status received, zero if none.
	Status int
	// Attempts counts network attempts; the retries are Attempts-1.
	Attempts int
	Duration time.Duration
	// Err is the failure, nil on success.
	Err error
	// RetryDenied: a retry was due but the retry budget was spent.
	RetryDenied bool
}
