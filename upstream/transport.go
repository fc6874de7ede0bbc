package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sony/gobreaker/v2"
)

// errCallerCanceled marks an attempt the caller abandoned; the breaker
// excludes it from its counts.
var errCallerCanceled = errors.New("caller canceled")

// errAttemptPanicked is reported to the breaker for an attempt that
// panicked; the panic itself goes on up to the view's recovery.
var errAttemptPanicked = errors.New("attempt panicked")

// errServerStatus marks a 5xx answer as a failure for the breaker only;
// the status itself becomes an error one level up, in Client.Do.
var errServerStatus = errors.New("upstream 5xx")

// attemptTransport is one attempt: it asks the breaker, bounds the attempt,
// reads the whole body within the size limit (so a reset or a trickle in the
// middle of the body fails this attempt, where it can still be retried), and
// reports the outcome to the breaker.
type attemptTransport struct {
	next           http.RoundTripper
	breaker        *gobreaker.TwoStepCircuitBreaker[struct{}]
	attemptTimeout time.Duration
	maxBody        int64
	observer       Observer
	deadlineHeader string // "" sends none
}

func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err // over before it started: not the upstream's doing
	}
	allowDone, err := t.breaker.Allow()
	if err != nil {
		return nil, fmt.Errorf("circuit breaker: %w", err)
	}
	// The breaker hears how every attempt it allowed ended, a panic
	// included: a half-open breaker waits for its probes' outcomes, and one
	// never reported would refuse every call until a restart.
	reported := false
	done := func(err error) {
		reported = true
		allowDone(err)
	}
	defer func() {
		if !reported {
			allowDone(errAttemptPanicked)
		}
	}()
	callerCtx := req.Context()
	if t.attemptTimeout > 0 {
		ctx, cancel := context.WithTimeout(callerCtx, t.attemptTimeout)
		defer cancel()
		req = req.WithContext(ctx)
	}
	if t.deadlineHeader != "" {
		if dl, ok := req.Context().Deadline(); ok {
			req.Header[t.deadlineHeader] = []string{strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1), 10)}
		}
	}
	resp, err := t.next.RoundTrip(req)
	if err == nil {
		err = t.buffer(resp, req.Method == http.MethodHead)
	}
	if t.observer != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.observer.AttemptDone(callerCtx, status, err)
	}
	switch {
	case err != nil && errors.Is(callerCtx.Err(), context.Canceled):
		done(errCallerCanceled)
	case err != nil:
		done(err)
	case resp.StatusCode >= 500:
		done(errServerStatus)
	default:
		done(nil)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// buffer replaces resp.Body with its bytes, read under the request's context.
// An answer to HEAD has no body: its Content-Length is the GET body's size.
func (t *attemptTransport) buffer(resp *http.Response, head bool) error {
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		// Nothing reads an error's body (none reaches a client). Its size
		// must not turn a 404 into a bad response: a little is drained so
		// the connection can be reused, and past that it is closed.
		_, _ = io.CopyN(io.Discard, resp.Body, errorBodyDrain)
		resp.Body = &bufferedBody{Reader: bytes.NewReader(nil)}
		return nil
	}
	length := resp.ContentLength
	if head {
		length = 0
	}
	data, err := readBody(resp.Body, length, t.maxBody)
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	// A 2xx must carry JSON; only 204 and answers to HEAD have no body.
	if resp.StatusCode/100 == 2 && resp.StatusCode != http.StatusNoContent && !head && !validJSON(data) {
		putBuffer(data)
		return ErrMalformedBody
	}
	resp.Body = &bufferedBody{Reader: bytes.NewReader(data), data: data}
	return nil
}

// errorBodyDrain is how much of an error answer's body is read, to keep
// its connection; a longer one costs the connection instead.
const errorBodyDrain = 64 << 10

// bufferedBody is a response body already read into memory. Closing it
// recycles the buffer: only a body that is handed out (see Client.Do) is
// kept open.
type bufferedBody struct {
	*bytes.Reader
	data []byte
}

func (b *bufferedBody) Close() error {
	if b.data != nil {
		putBuffer(b.data)
		b.data = nil
	}
	return nil
}
