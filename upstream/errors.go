package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/sony/gobreaker/v2"
)

// Kind classifies why an upstream call failed.
type Kind int

const (
	// KindTransport: the connection failed (refused, reset, DNS, TLS, ...).
	KindTransport Kind = iota + 1
	// KindTimeout: the call's or the request's deadline passed.
	KindTimeout
	// KindCanceled: the caller gave up (client hung up, sibling failed).
	KindCanceled
	// KindBreakerOpen: the circuit breaker rejected the call without a network attempt.
	KindBreakerOpen
	// KindStatus: the upstream answered with a status >= 300 (redirects are
	// not followed).
	KindStatus
	// KindBadResponse: the body was too large or not valid JSON.
	KindBadResponse
	// KindBulkheadFull: the upstream's concurrency bound was reached and no
	// slot freed up in time; no network attempt was made.
	KindBulkheadFull
)

func (k Kind) String() string {
	switch k {
	case KindTransport:
		return "transport"
	case KindTimeout:
		return "timeout"
	case KindCanceled:
		return "canceled"
	case KindBreakerOpen:
		return "breaker-open"
	case KindStatus:
		return "status"
	case KindBadResponse:
		return "bad-response"
	case KindBulkheadFull:
		return "bulkhead-full"
	}
	return "unknown"
}

var (
	// ErrBodyTooLarge: the response body exceeded the upstream's MaxBodyBytes.
	ErrBodyTooLarge = errors.New("response body too large")
	// ErrMalformedBody: a successful response whose body is not valid JSON.
	ErrMalformedBody = errors.New("response body is not valid JSON")
	// ErrBulkheadFull: every concurrent-call slot of the upstream was taken.
	ErrBulkheadFull = errors.New("too many concurrent calls")
)

// Error is a failed upstream call. It names the upstream and the operation
// and wraps the cause, so errors.Is(err, gobreaker.ErrOpenState) and
// errors.Is(err, context.DeadlineExceeded) keep working.
type Error struct {
	Upstream string
	Op       string // "GET /users/7"
	Kind     Kind
	Status   int // for KindStatus
	Attempts int
	// RetryDenied: a retry was due but the retry budget was spent.
	RetryDenied bool
	Err         error
}

func (e *Error) Error() string {
	if e.Kind == KindStatus {
		return fmt.Sprintf("upstream %s: %s: status %d after %d attempt(s)", e.Upstream, e.Op, e.Status, e.Attempts)
	}
	return fmt.Sprintf("upstream %s: %s: %s: %v", e.Upstream, e.Op, e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Refused reports whether err holds an upstream's own answer that the
// request cannot be served: a 4xx other than 429 (the resource is gone, the
// caller may not see it). That is an answer, not an outage: no stale copy
// stands in for it.
func Refused(err error) bool {
	var ue *Error
	return errors.As(err, &ue) && ue.Kind == KindStatus && ue.Status >= 400 && ue.Status < 500 && ue.Status != 429
}

// classify tells which Kind a transport-level error is.
func classify(err error) Kind {
	var ne net.Error
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return KindBreakerOpen
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, ErrBodyTooLarge), errors.Is(err, ErrMalformedBody):
		return KindBadResponse
	}
	return KindTransport
}
