// Package faults lets frontend teams build degraded UI states against the
// real engine: in demo and development setups only, a request header makes
// named upstreams misbehave for that request.
//
//	Bff-Fault: recs=timeout, users=503, orders=latency:300ms, catalog=breaker-open
//
// Faults replace the upstream call itself (no network, no breaker counts),
// so they never trip a real breaker or reach a real upstream.
package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/upstream"
)

// Header names the request header that carries faults.
const Header = "Bff-Fault"

// Fault is what one upstream does for one request.
type Fault struct {
	// Status > 0: the upstream answers with this status.
	Status int
	// Timeout: the upstream never answers before the call's deadline.
	Timeout bool
	// BreakerOpen: the upstream's breaker refuses the call.
	BreakerOpen bool
	// Reset: the connection fails.
	Reset bool
	// Latency delays the call (then it runs normally, or fails as above).
	Latency time.Duration
}

// maxLatency bounds an injected delay: a typo must not park a request.
const maxLatency = 30 * time.Second

// Parse reads a Bff-Fault value: comma-separated upstream=fault pairs, where
// a fault is a status (400..599), timeout, breaker-open, reset, or
// latency:DURATION, and several faults of one upstream join with '+'
// (recs=latency:200ms+503).
func Parse(v string) (map[string]Fault, error) {
	if len(v) > 1024 {
		return nil, fmt.Errorf("%s is longer than 1024 bytes", Header)
	}
	out := map[string]Fault{}
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, spec, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want upstream=fault", item)
		}
		var f Fault
		for part := range strings.SplitSeq(spec, "+") {
			part = strings.TrimSpace(part)
			switch {
			case part == "timeout":
				f.Timeout = true
			case part == "breaker-open":
				f.BreakerOpen = true
			case part == "reset":
				f.Reset = true
			case strings.HasPrefix(part, "latency:"):
				d, err := time.ParseDuration(strings.TrimPrefix(part, "latency:"))
				if err != nil || d < 0 || d > maxLatency {
					return nil, fmt.Errorf("%q: latency wants a duration up to %s, such as 300ms", item, maxLatency)
				}
				f.Latency = d
			default:
				n, err := strconv.Atoi(part)
				if err != nil || n < 400 || n > 599 {
					return nil, fmt.Errorf("%q: %q is not a fault (a status 400..599, timeout, breaker-open, reset or latency:DURATION)", item, part)
				}
				f.Status = n
			}
		}
		out[name] = f
	}
	return out, nil
}

// Wrap makes a Doer that applies the faults a request asks for to upstream
// name, and otherwise calls next.
func Wrap(name string, next aggregate.Doer) aggregate.Doer {
	return &doer{name: name, next: next}
}

type doer struct {
	name string
	next aggregate.Doer
}

func (d *doer) Do(ctx context.Context, r *upstream.Request) (*upstream.Response, error) {
	vs := r.Header.Values(Header)
	if len(vs) == 0 {
		return d.next.Do(ctx, r)
	}
	v := strings.Join(vs, ",")
	all, err := Parse(v)
	if err != nil {
		return d.next.Do(ctx, r) // the front rejects a bad header before any call
	}
	f, ok := all[d.name]
	if !ok {
		return d.next.Do(ctx, r)
	}
	op := r.Method + " " + r.Path
	if op[0] == ' ' {
		op = http.MethodGet + op
	}
	fail := func(kind upstream.Kind, status int, err error) (*upstream.Response, error) {
		return nil, &upstream.Error{Upstream: d.name, Op: op, Kind: kind, Status: status, Attempts: 1,
			Err: fmt.Errorf("injected by %s: %w", Header, err)}
	}
	ended := func() (*upstream.Response, error) {
		if errors.Is(ctx.Err(), context.Canceled) {
			return fail(upstream.KindCanceled, 0, ctx.Err())
		}
		return fail(upstream.KindTimeout, 0, context.DeadlineExceeded)
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ended()
		}
	}
	switch {
	case f.BreakerOpen:
		return fail(upstream.KindBreakerOpen, 0, fmt.Errorf("circuit breaker is open"))
	case f.Reset:
		return fail(upstream.KindTransport, 0, fmt.Errorf("connection reset"))
	case f.Status > 0:
		return fail(upstream.KindStatus, f.Status, fmt.Errorf("status %d", f.Status))
	case f.Timeout:
		deadline := time.Now().Add(2 * time.Second)
		if !r.Deadline.IsZero() {
			deadline = r.Deadline
		}
		if r.Timeout > 0 && time.Now().Add(r.Timeout).Before(deadline) {
			deadline = time.Now().Add(r.Timeout)
		}
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return ended()
	}
	return d.next.Do(ctx, r)
}
