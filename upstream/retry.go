package upstream

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/sony/gobreaker/v2"
)

// retryable: only idempotent reads are retried, and a mutation only when the
// client made it safe to repeat with an Idempotency-Key.
func retryable(method string, inbound http.Header) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return inbound.Get("Idempotency-Key") != ""
}

// retryPolicy decides, for one call, whether and when to try again. It is
// the CheckRetry and Backoff of a retryablehttp.Client made for that call,
// so the decision can see the call's deadline and attempt count.
type retryPolicy struct {
	client    *Client
	retryable bool
	attempts  int
	wait      time.Duration
	denied    bool // the budget refused a retry
}

// fail marks a failed call's error with the budget's refusal, if any.
func (p *retryPolicy) fail(r *Response, err error) (*Response, error) {
	var ue *Error
	if p.denied && errors.As(err, &ue) {
		ue.RetryDenied = true
	}
	return r, err
}

func (p *retryPolicy) check(ctx context.Context, resp *http.Response, err error) (bool, error) {
	p.attempts++
	if !p.retryable || ctx.Err() != nil {
		return false, nil
	}
	// A half-open breaker is probing: its few probes must not be spent on retries.
	if p.client.breaker.State() != gobreaker.StateClosed {
		return false, nil
	}
	cfg := p.client.cfg.Retry
	// retryablehttp asks before it counts: the last attempt allowed must
	// not spend the budget (or be reported denied) for a retry never made.
	if p.attempts > cfg.Max {
		return false, nil
	}
	wait := time.Duration(-1)
	if err != nil {
		switch classify(err) {
		case KindTransport, KindTimeout: // the attempt failed, the call has time left
		default:
			return false, nil
		}
	} else {
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			return false, nil
		}
		if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			if ra > cfg.RetryAfterMax {
				return false, nil // fail fast rather than park the request
			}
			wait = ra
		}
	}
	if wait < 0 {
		wait = jittered(cfg.WaitMin, cfg.WaitMax, p.attempts)
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait+p.client.cfg.MinAttemptTime {
		return false, nil // the retry would not fit: keep the answer we have
	}
	if !p.client.budget.spend(time.Now()) {
		p.denied = true
		return false, nil
	}
	p.wait = wait
	return true, nil
}

func (p *retryPolicy) backoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return p.wait
}

// jittered is exponential backoff with equal jitter: after the n-th attempt
// it waits between half and all of min*2^(n-1), capped at max.
func jittered(minWait, maxWait time.Duration, n int) time.Duration {
	d := minWait
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	half := d / 2
	return half + rand.N(half+1)
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP-date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// forwardHeaders copies the allowlisted inbound headers. Hop-by-hop headers,
// cookies and everything else never reach an upstream.
func (c *Client) forwardHeaders(dst, inbound http.Header) {
	dst["Accept"] = acceptJSON
	dst["User-Agent"] = userAgent
	for _, k := range forwarded {
		if v, ok := inbound[k]; ok {
			dst[k] = v
		}
	}
	if c.cfg.ForwardAuthorization {
		if v, ok := inbound["Authorization"]; ok {
			dst["Authorization"] = v
		}
	}
}

var (
	acceptJSON = []string{"application/json"}
	userAgent  = []string{"bff"}
	// forwarded is the allowlist, in canonical form.
	forwarded = []string{"X-Request-Id", "Accept-Language", "Traceparent", "Tracestate", "Idempotency-Key"}
)
