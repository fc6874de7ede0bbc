package upstream_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/goleak"

	"github.com/bffproxy/bff/upstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server is a real upstream that misbehaves on purpose. Its handler gets the
// 1-based number of the call, so a test can script "fail twice, then answer".
type server struct {
	*httptest.Server
	calls atomic.Int64
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, call int64)

func newServer(t *testing.T, h handlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, s.calls.Add(1))
	}))
	t.Cleanup(s.Close)
	return s
}

// testConfig has tiny waits, a generous call timeout and a breaker that does
// not trip unless a test asks for it.
func testConfig(baseURL string) upstream.Config {
	return upstream.Config{
		Name:           "test",
		BaseURL:        baseURL,
		Timeout:        5 * time.Second,
		MinAttemptTime: time.Millisecond,
		Retry: upstream.RetryConfig{
			Max:           2,
			WaitMin:       time.Millisecond,
			WaitMax:       2 * time.Millisecond,
			RetryAfterMax: 2 * time.Second,
		},
		Breaker: upstream.BreakerConfig{
			ConsecutiveFailures: 1000,
			FailureRatio:        2, // disabled
			OpenTimeout:         time.Minute,
		},
	}
}

func newClient(t *testing.T, cfg upstream.Config) *upstream.Client {
	t.Helper()
	c, err := upstream.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Registered after the server's Close, so it runs first: goleak stays clean.
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// statuses answers call n with codes[n-1] (the last code repeats) and a JSON body.
func statuses(codes ...int) handlerFunc {
	return func(w http.ResponseWriter, _ *http.Request, call int64) {
		code := codes[min(int(call), len(codes))-1]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, `{"call":`+strconv.FormatInt(call, 10)+`}`)
	}
}

// upstreamError asserts err is an *upstream.Error and returns it.
func upstreamError(t *testing.T, err error) *upstream.Error {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want an *upstream.Error")
	}
	var ue *upstream.Error
	if !errors.As(err, &ue) {
		t.Fatalf("err = %T %v, want an *upstream.Error", err, err)
	}
	return ue
}

func wantStatusError(t *testing.T, err error, status, attempts int) {
	t.Helper()
	ue := upstreamError(t, err)
	if ue.Kind != upstream.KindStatus || ue.Status != status || ue.Attempts != attempts {
		t.Fatalf("err = kind %v status %d attempts %d (%v), want kind status, status %d, attempts %d",
			ue.Kind, ue.Status, ue.Attempts, err, status, attempts)
	}
}

func wantCalls(t *testing.T, s *server, n int64) {
	t.Helper()
	if got := s.calls.Load(); got != n {
		t.Fatalf("upstream saw %d call(s), want %d", got, n)
	}
}

// newCountingServer is newServer that also counts the connections it accepts.
func newCountingServer(t *testing.T, h handlerFunc, conns *atomic.Int64) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, s.calls.Add(1))
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// resetConn hijacks the connection and closes it with an RST.
func resetConn(t *testing.T, w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// waitFor polls cond; it is a bound on a state change, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		header    http.Header
		codes     []int
		wantCalls int64
		wantCode  int // 200 means success
	}{
		{"GET 503 twice then 200", "GET", nil, []int{503, 503, 200}, 3, 200},
		{"GET 502 twice then 200", "GET", nil, []int{502, 502, 200}, 3, 200},
		{"GET 504 twice then 200", "GET", nil, []int{504, 504, 200}, 3, 200},
		{"GET 429 twice then 200", "GET", nil, []int{429, 429, 200}, 3, 200},
		{"HEAD 503 then 200", "HEAD", nil, []int{503, 200}, 2, 200},
		{"default method is GET and is retried", "", nil, []int{503, 200}, 2, 200},
		{"GET retries run out: the last 503 is kept", "GET", nil, []int{503}, 3, 503},
		{"GET 500 is an answer, not retried", "GET", nil, []int{500, 200}, 1, 500},
		{"GET 404 not retried", "GET", nil, []int{404, 200}, 1, 404},
		{"GET 400 not retried", "GET", nil, []int{400, 200}, 1, 400},
		{"POST 503 not retried", "POST", nil, []int{503, 200}, 1, 503},
		{"PUT 503 not retried", "PUT", nil, []int{503, 200}, 1, 503},
		{"PATCH 502 not retried", "PATCH", nil, []int{502, 200}, 1, 502},
		{"DELETE 504 not retried", "DELETE", nil, []int{504, 200}, 1, 504},
		{"POST with Idempotency-Key retried", "POST", http.Header{"Idempotency-Key": {"k-1"}}, []int{503, 503, 200}, 3, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, statuses(tt.codes...))
			c := newClient(t, testConfig(srv.URL))

			resp, err := c.Do(t.Context(), &upstream.Request{Method: tt.method, Path: "/x", Header: tt.header})

			wantCalls(t, srv, tt.wantCalls)
			if tt.wantCode != 200 {
				wantStatusError(t, err, tt.wantCode, int(tt.wantCalls))
				return
			}
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if resp.Status != 200 || resp.Attempts != int(tt.wantCalls) {
				t.Fatalf("resp = status %d attempts %d, want 200 after %d", resp.Status, resp.Attempts, tt.wantCalls)
			}
		})
	}
}

// A retried mutation sends the same body and key every time.
func TestIdempotencyKeyForwardedOnEveryAttempt(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.Header.Get("Idempotency-Key")+" "+string(b))
		mu.Unlock()
		statuses(503, 503, 201)(w, r, call)
	})
	c := newClient(t, testConfig(srv.URL))

	resp, err := c.Do(t.Context(), &upstream.Request{
		Method: "POST",
		Path:   "/orders",
		Header: http.Header{"Idempotency-Key": {"order-42"}},
		Body:   []byte(`{"item":1}`),
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.Status != 201 || resp.Attempts != 3 {
		t.Fatalf("resp = status %d attempts %d, want 201 after 3", resp.Status, resp.Attempts)
	}
	mu.Lock()
	defer mu.Unlock()
	want := `POST order-42 {"item":1}`
	if len(seen) != 3 {
		t.Fatalf("upstream saw %d requests, want 3", len(seen))
	}
	for i, s := range seen {
		if s != want {
			t.Errorf("attempt %d: upstream saw %q, want %q", i+1, s, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	farFuture := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		code       int
		retryAfter string
		timeout    time.Duration
		wantCalls  int64
		wantStatus int // 200 means success
		// minGap: the retry waited at least this long after the first
		// answer (a lower bound: a slow machine only adds to it).
		minGap time.Duration
	}{
		{"Retry-After 0 is retried", 503, "0", 0, 2, 200, 0},
		{"Retry-After 1 within RetryAfterMax is retried after it", 503, "1", 0, 2, 200, 900 * time.Millisecond},
		{"HTTP-date in the past is retried", 503, past, 0, 2, 200, 0},
		{"Retry-After 3600 fails fast", 503, "3600", 0, 1, 503, 0},
		{"Retry-After 3 over RetryAfterMax 2s fails fast though it fits", 503, "3", 0, 1, 503, 0},
		{"429 with Retry-After 3600 fails fast", 429, "3600", 0, 1, 429, 0},
		{"HTTP-date an hour ahead fails fast", 503, farFuture, 0, 1, 503, 0},
		{"Retry-After that does not fit the deadline fails fast", 503, "1", 300 * time.Millisecond, 1, 503, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var answered, retried atomic.Int64 // unix ns
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
				if call == 1 {
					w.Header().Set("Retry-After", tt.retryAfter)
					w.WriteHeader(tt.code)
					answered.Store(time.Now().UnixNano())
					return
				}
				retried.Store(time.Now().UnixNano())
				io.WriteString(w, `{}`)
			})
			cfg := testConfig(srv.URL)
			cfg.Timeout = 5 * time.Second
			c := newClient(t, cfg)

			start := time.Now()
			resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x", Timeout: tt.timeout})
			elapsed := time.Since(start)

			wantCalls(t, srv, tt.wantCalls)
			if tt.wantStatus != 200 {
				wantStatusError(t, err, tt.wantStatus, 1)
				// The bound is the point: without the clamp the call would
				// park until its 5s deadline.
				if elapsed > 2*time.Second {
					t.Fatalf("failing fast took %v", elapsed)
				}
				return
			}
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if resp.Attempts != 2 {
				t.Fatalf("Attempts = %d, want 2", resp.Attempts)
			}
			if gap := time.Duration(retried.Load() - answered.Load()); gap < tt.minGap {
				t.Errorf("retried %v after the Retry-After answer; want at least %v", gap, tt.minGap)
			}
		})
	}
}

// A retry that cannot fit before the deadline is not started, and the error
// keeps the upstream's status rather than becoming a timeout.
func TestNoRetryPastDeadline(t *testing.T) {
	srv := newServer(t, statuses(503, 200))
	cfg := testConfig(srv.URL)
	cfg.Timeout = 500 * time.Millisecond
	cfg.MinAttemptTime = 10 * time.Millisecond
	cfg.Retry.WaitMin = time.Second // jittered wait is at least WaitMin/2 = 500ms
	cfg.Retry.WaitMax = time.Second
	c := newClient(t, cfg)

	_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})

	wantCalls(t, srv, 1)
	wantStatusError(t, err, 503, 1)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the 503, not a deadline", err)
	}
}

func TestBreakerOpensAndRejectsWithoutNetwork(t *testing.T) {
	srv := newServer(t, statuses(503))
	cfg := testConfig(srv.URL)
	cfg.Retry.Max = 0
	cfg.Breaker.ConsecutiveFailures = 3
	cfg.Breaker.OpenTimeout = time.Hour
	c := newClient(t, cfg)

	for i := range 3 {
		_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
		wantStatusError(t, err, 503, 1)
		if i < 2 && c.BreakerState() != gobreaker.StateClosed {
			t.Fatalf("breaker %v after %d failure(s), want closed", c.BreakerState(), i+1)
		}
	}
	if got := c.BreakerState(); got != gobreaker.StateOpen {
		t.Fatalf("breaker %v after 3 failures, want open", got)
	}
	for range 5 {
		_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
		ue := upstreamError(t, err)
		if ue.Kind != upstream.KindBreakerOpen || !errors.Is(err, gobreaker.ErrOpenState) {
			t.Fatalf("err = kind %v (%v), want breaker-open wrapping gobreaker.ErrOpenState", ue.Kind, err)
		}
		if ue.Attempts != 1 {
			t.Fatalf("Attempts = %d, want 1 rejected attempt", ue.Attempts)
		}
	}
	wantCalls(t, srv, 3)
}

// An open breaker ends the retries: the attempt that trips it is the last.
func TestBreakerEndsRetries(t *testing.T) {
	srv := newServer(t, statuses(503))
	cfg := testConfig(srv.URL)
	cfg.Retry.Max = 5
	cfg.Breaker.ConsecutiveFailures = 2
	cfg.Breaker.OpenTimeout = time.Hour
	c := newClient(t, cfg)

	_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})

	wantStatusError(t, err, 503, 2)
	wantCalls(t, srv, 2)
	if got := c.BreakerState(); got != gobreaker.StateOpen {
		t.Fatalf("breaker %v, want open", got)
	}
}

func TestBreakerRecovers(t *testing.T) {
	var healthy atomic.Bool
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		if healthy.Load() {
			io.WriteString(w, `{}`)
			return
		}
		w.WriteHeader(503)
	})
	var mu sync.Mutex
	var changes []string
	cfg := testConfig(srv.URL)
	cfg.Retry.Max = 0
	cfg.Breaker.ConsecutiveFailures = 2
	cfg.Breaker.OpenTimeout = 50 * time.Millisecond
	cfg.OnStateChange = func(name string, from, to gobreaker.State) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, name+": "+from.String()+"->"+to.String())
	}
	c := newClient(t, cfg)
	call := func() error {
		_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
		return err
	}
	halfOpen := func() bool { return c.BreakerState() == gobreaker.StateHalfOpen }

	call()
	call()
	// Open, or already half-open on a slow machine: not closed.
	if got := c.BreakerState(); got == gobreaker.StateClosed {
		t.Fatal("breaker closed after 2 failures, want open")
	}
	waitFor(t, "half-open", halfOpen)

	// A failing probe opens it again.
	wantStatusError(t, call(), 503, 1)
	wantCalls(t, srv, 3)
	if got := c.BreakerState(); got == gobreaker.StateClosed {
		t.Fatal("breaker closed after a failed probe, want open")
	}
	waitFor(t, "half-open again", halfOpen)

	// A successful probe closes it.
	healthy.Store(true)
	if err := call(); err != nil {
		t.Fatalf("probe: %v", err)
	}
	wantCalls(t, srv, 4)
	if got := c.BreakerState(); got != gobreaker.StateClosed {
		t.Fatalf("breaker %v after a successful probe, want closed", got)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"test: closed->open", "test: open->half-open", "test: half-open->open",
		"test: open->half-open", "test: half-open->closed",
	}
	if strings.Join(changes, ", ") != strings.Join(want, ", ") {
		t.Fatalf("state changes = %q, want %q", changes, want)
	}
}

func TestBreakerIgnores4xx(t *testing.T) {
	srv := newServer(t, statuses(404))
	cfg := testConfig(srv.URL)
	cfg.Breaker.ConsecutiveFailures = 3
	cfg.Breaker.FailureRatio = 0.5
	cfg.Breaker.MinRequests = 3
	c := newClient(t, cfg)

	for range 10 {
		_, err := c.Do(t.Context(), &upstream.Request{Path: "/missing"})
		wantStatusError(t, err, 404, 1)
	}
	wantCalls(t, srv, 10)
	if got := c.BreakerState(); got != gobreaker.StateClosed {
		t.Fatalf("breaker %v after 404s, want closed", got)
	}
	if n := c.BreakerCounts().TotalFailures; n != 0 {
		t.Fatalf("breaker counted %d failures, want 0", n)
	}
}

// A caller hanging up says nothing about the upstream: it is neither retried
// nor counted.
func TestBreakerIgnoresCallerCancellation(t *testing.T) {
	entered := make(chan struct{}, 100)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		entered <- struct{}{}
		<-r.Context().Done()
	})
	cfg := testConfig(srv.URL)
	cfg.Breaker.ConsecutiveFailures = 3
	cfg.Breaker.FailureRatio = 0.5
	cfg.Breaker.MinRequests = 3
	c := newClient(t, cfg)

	const n = 8
	for i := range n {
		ctx, cancel := context.WithCancel(t.Context())
		returned := make(chan struct{})
		go func() {
			select {
			case <-entered:
			case <-returned:
			}
			cancel()
		}()
		_, err := c.Do(ctx, &upstream.Request{Path: "/slow"})
		close(returned)
		cancel()

		ue := upstreamError(t, err)
		if ue.Kind != upstream.KindCanceled || !errors.Is(err, context.Canceled) {
			t.Fatalf("call %d: err = kind %v (%v), want canceled", i+1, ue.Kind, err)
		}
	}
	wantCalls(t, srv, n)
	if got := c.BreakerState(); got != gobreaker.StateClosed {
		t.Fatalf("breaker %v after caller cancellations, want closed", got)
	}
	if counts := c.BreakerCounts(); counts.TotalFailures != 0 {
		t.Fatalf("breaker counts %+v, want no failures", counts)
	}
}

func TestTransportErrorsRetriedAndCounted(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		resetConn(t, w)
	})
	c := newClient(t, testConfig(srv.URL)) // Retry.Max 2

	_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})

	ue := upstreamError(t, err)
	if ue.Kind != upstream.KindTransport || ue.Attempts != 3 {
		t.Fatalf("err = kind %v attempts %d (%v), want transport after 3", ue.Kind, ue.Attempts, err)
	}
	wantCalls(t, srv, 3)
	if n := c.BreakerCounts().ConsecutiveFailures; n != 3 {
		t.Fatalf("breaker counted %d consecutive failures, want 3", n)
	}
}

func TestTransportErrorsTripBreaker(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		resetConn(t, w)
	})
	cfg := testConfig(srv.URL)
	cfg.Retry.Max = 5
	cfg.Breaker.ConsecutiveFailures = 3
	cfg.Breaker.OpenTimeout = time.Hour
	c := newClient(t, cfg)

	_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
	if ue := upstreamError(t, err); ue.Kind != upstream.KindTransport || ue.Attempts != 3 {
		t.Fatalf("err = kind %v attempts %d, want transport after 3", ue.Kind, ue.Attempts)
	}
	_, err = c.Do(t.Context(), &upstream.Request{Path: "/x"})
	if ue := upstreamError(t, err); ue.Kind != upstream.KindBreakerOpen {
		t.Fatalf("err = kind %v, want breaker-open", ue.Kind)
	}
	wantCalls(t, srv, 3)
}

// blockUntilDone is a slow upstream that honours the request's context, so
// server.Close never waits on it.
func blockUntilDone(_ http.ResponseWriter, r *http.Request, _ int64) { <-r.Context().Done() }

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name       string
		cfgTimeout time.Duration
		reqTimeout time.Duration
		ctxTimeout time.Duration
	}{
		{"config timeout", 50 * time.Millisecond, 0, 0},
		{"request timeout wins over config", time.Minute, 50 * time.Millisecond, 0},
		{"caller deadline wins over a larger request timeout", time.Minute, time.Minute, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, blockUntilDone)
			cfg := testConfig(srv.URL)
			cfg.Timeout = tt.cfgTimeout
			c := newClient(t, cfg)
			ctx := t.Context()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}

			start := time.Now()
			_, err := c.Do(ctx, &upstream.Request{Path: "/slow", Timeout: tt.reqTimeout})
			elapsed := time.Since(start)

			ue := upstreamError(t, err)
			if ue.Kind != upstream.KindTimeout || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = kind %v (%v), want timeout wrapping context.DeadlineExceeded", ue.Kind, err)
			}
			// The bound is the point: the minute-long budgets must not apply.
			if elapsed > 5*time.Second {
				t.Fatalf("timed out after %v, want the 50ms budget", elapsed)
			}
			wantCalls(t, srv, 1) // no retry once the deadline has passed
			if n := c.BreakerCounts().TotalFailures; n != 1 {
				t.Fatalf("breaker counted %d failures, want the timeout counted once", n)
			}
		})
	}
}

func TestAttemptTimeoutLeavesTimeForARetry(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		if call == 1 {
			<-r.Context().Done()
			return
		}
		io.WriteString(w, `{"ok":true}`)
	})
	cfg := testConfig(srv.URL)
	cfg.Timeout = 5 * time.Second
	cfg.AttemptTimeout = 250 * time.Millisecond
	cfg.Retry.Max = 1
	c := newClient(t, cfg)

	resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.Attempts != 2 || string(resp.Body) != `{"ok":true}` {
		t.Fatalf("resp = attempts %d body %s, want the second attempt's answer", resp.Attempts, resp.Body)
	}
	wantCalls(t, srv, 2)
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jsonString is a valid JSON document of exactly n bytes (n >= 2).
func jsonString(n int) []byte {
	return []byte(`"` + strings.Repeat("a", n-2) + `"`)
}

func TestBodySizeLimit(t *testing.T) {
	const limit = 100
	bigGzip := gzipped(t, jsonString(100*limit))
	smallGzip := gzipped(t, jsonString(limit))
	if len(bigGzip) >= limit {
		t.Fatalf("compressed body is %d bytes, want under the %d limit", len(bigGzip), limit)
	}
	writeGzip := func(body []byte) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request, _ int64) {
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				http.Error(w, "test wants the transport's Accept-Encoding: gzip", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		}
	}
	chunked := func(body []byte) handlerFunc {
		return func(w http.ResponseWriter, _ *http.Request, _ int64) {
			half := len(body) / 2
			w.Write(body[:half])
			w.(http.Flusher).Flush() // no Content-Length from here on
			w.Write(body[half:])
		}
	}
	withLength := func(body []byte) handlerFunc {
		return func(w http.ResponseWriter, _ *http.Request, _ int64) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		}
	}
	endless := func(w http.ResponseWriter, r *http.Request, _ int64) {
		chunk := bytes.Repeat([]byte("a"), 1024)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
	tests := []struct {
		name    string
		handler handlerFunc
		tooBig  bool
	}{
		{"Content-Length over the limit", withLength(jsonString(limit + 1)), true},
		{"chunked body that never ends", endless, true},
		{"chunked over the limit", chunked(jsonString(limit + 1)), true},
		{"gzip small compressed, large decompressed", writeGzip(bigGzip), true},
		{"Content-Length exactly at the limit", withLength(jsonString(limit)), false},
		{"chunked exactly at the limit", chunked(jsonString(limit)), false},
		{"gzip exactly at the limit decompressed", writeGzip(smallGzip), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handler)
			cfg := testConfig(srv.URL)
			cfg.MaxBodyBytes = limit
			c := newClient(t, cfg)

			resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})

			wantCalls(t, srv, 1) // a bad response is not retried
			if !tt.tooBig {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				if len(resp.Body) != limit {
					t.Fatalf("body is %d bytes, want %d", len(resp.Body), limit)
				}
				return
			}
			ue := upstreamError(t, err)
			if ue.Kind != upstream.KindBadResponse || !errors.Is(err, upstream.ErrBodyTooLarge) {
				t.Fatalf("err = kind %v (%v), want bad-response wrapping ErrBodyTooLarge", ue.Kind, err)
			}
		})
	}
}

func TestMalformedJSON(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"truncated object on 200", 200, `{"id":`},
		{"HTML on 200", 200, `<html>oops</html>`},
		{"empty 200", 200, ``},
		{"empty 201", 201, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			c := newClient(t, testConfig(srv.URL))

			_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})

			ue := upstreamError(t, err)
			if ue.Kind != upstream.KindBadResponse || !errors.Is(err, upstream.ErrMalformedBody) {
				t.Fatalf("err = kind %v (%v), want bad-response wrapping ErrMalformedBody", ue.Kind, err)
			}
			wantCalls(t, srv, 1)
		})
	}
}

// An error page is not JSON either, but a non-2xx body is not validated: the
// status is the answer.
func TestErrorStatusWithHTMLBodyKeepsStatus(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		w.WriteHeader(404)
		io.WriteString(w, `<html>not found</html>`)
	})
	c := newClient(t, testConfig(srv.URL))

	_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
	wantStatusError(t, err, 404, 1)
}

// A body cut off in the middle fails that attempt, where it can still be retried.
func TestBodyResetMidwayIsRetried(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		if call == 1 {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			io.WriteString(w, `{"partial"`) // 10 of 1000 bytes
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
			return
		}
		io.WriteString(w, `{"whole":true}`)
	})
	c := newClient(t, testConfig(srv.URL))

	resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.Attempts != 2 || string(resp.Body) != `{"whole":true}` {
		t.Fatalf("resp = attempts %d body %s, want the second attempt's whole body", resp.Attempts, resp.Body)
	}
	wantCalls(t, srv, 2)
	if n := c.BreakerCounts().TotalFailures; n != 1 {
		t.Fatalf("breaker counted %d failures, want the cut-off attempt", n)
	}
}

// A HEAD answer's Content-Length describes the GET body it does not carry.
func TestHEADWithContentLength(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, _ int64) {
		w.Header().Set("Content-Length", "5000")
		w.WriteHeader(200)
	})
	cfg := testConfig(srv.URL)
	cfg.MaxBodyBytes = 100
	c := newClient(t, cfg)

	resp, err := c.Do(t.Context(), &upstream.Request{Method: "HEAD", Path: "/x"})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.Status != 200 || len(resp.Body) != 0 || resp.Attempts != 1 {
		t.Fatalf("resp = status %d body %d bytes attempts %d, want 200, empty, 1", resp.Status, len(resp.Body), resp.Attempts)
	}
	wantCalls(t, srv, 1)
}

func TestForwardedHeaders(t *testing.T) {
	inbound := http.Header{
		"X-Request-Id":        {"req-1"},
		"Accept-Language":     {"de-CH"},
		"Traceparent":         {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"Tracestate":          {"vendor=1"},
		"Idempotency-Key":     {"k-1"},
		"Authorization":       {"Bearer user-token"},
		"Cookie":              {"session=secret"},
		"Connection":          {"Upgrade, X-Secret"},
		"Upgrade":             {"websocket"},
		"Te":                  {"trailers"},
		"Proxy-Authorization": {"Basic cHJveHk="},
		"X-Forwarded-For":     {"10.0.0.1"},
		"X-Secret":            {"s3cr3t"},
		"Accept":              {"text/html"},
		"User-Agent":          {"Mozilla/5.0"},
		"Accept-Encoding":     {"br"},
	}
	passed := []string{"X-Request-Id", "Accept-Language", "Traceparent", "Tracestate", "Idempotency-Key"}
	blocked := []string{"Cookie", "Connection", "Upgrade", "Te", "Proxy-Authorization", "X-Forwarded-For", "X-Secret"}

	for _, forwardAuth := range []bool{false, true} {
		t.Run("ForwardAuthorization="+strconv.FormatBool(forwardAuth), func(t *testing.T) {
			var mu sync.Mutex
			var got http.Header
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
				mu.Lock()
				got = r.Header.Clone()
				mu.Unlock()
				io.WriteString(w, `{}`)
			})
			cfg := testConfig(srv.URL)
			cfg.ForwardAuthorization = forwardAuth
			c := newClient(t, cfg)

			if _, err := c.Do(t.Context(), &upstream.Request{Path: "/x", Header: inbound}); err != nil {
				t.Fatalf("Do: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, k := range passed {
				if got.Get(k) != inbound.Get(k) {
					t.Errorf("%s = %q upstream, want %q", k, got.Get(k), inbound.Get(k))
				}
			}
			for _, k := range blocked {
				if v, ok := got[k]; ok {
					t.Errorf("%s reached the upstream: %q", k, v)
				}
			}
			if wantAuth := map[bool]string{true: "Bearer user-token"}[forwardAuth]; got.Get("Authorization") != wantAuth {
				t.Errorf("Authorization = %q upstream, want %q", got.Get("Authorization"), wantAuth)
			}
			// The client's own headers replace the browser's.
			if got.Get("Accept") != "application/json" || got.Get("User-Agent") != "bff" {
				t.Errorf("Accept %q User-Agent %q, want application/json and bff", got.Get("Accept"), got.Get("User-Agent"))
			}
			if got.Get("Accept-Encoding") == "br" {
				t.Error("the browser's Accept-Encoding reached the upstream")
			}
		})
	}
}

func TestRedirectsNotFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			target := newServer(t, statuses(200))
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
				http.Redirect(w, r, target.URL+"/elsewhere", code)
			})
			c := newClient(t, testConfig(srv.URL))

			_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})

			wantStatusError(t, err, code, 1)
			wantCalls(t, srv, 1)
			wantCalls(t, target, 0)
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfgName string
		baseURL string
		wantErr bool
	}{
		{"http with prefix", "users", "http://users.internal:8080/api/v1", false},
		{"https with trailing slash", "users", "https://users.internal/api/", false},
		{"bare host", "users", "http://users.internal", false},
		{"missing name", "", "http://users.internal", true},
		{"no scheme", "users", "users.internal/api", true},
		{"host:port without scheme", "users", "users.internal:8080/api", true},
		{"ftp", "users", "ftp://users.internal/api", true},
		{"no host", "users", "http:///api", true},
		{"query", "users", "http://users.internal/api?x=1", true},
		{"fragment", "users", "http://users.internal/api#f", true},
		{"credentials", "users", "http://user:s3cret@users.internal/api", true},
		{"credentials and a bad scheme", "users", "ftp://user:s3cret@users.internal/api", true},
		{"credentials and a bad port", "users", "http://user:s3cret@users.internal:port/api", true},
		{"user only", "users", "http://user@users.internal/api", true},
		{"empty", "users", "", true},
		{"unparsable", "users", "http://users.internal:port/", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := upstream.New(upstream.Config{Name: tt.cfgName, BaseURL: tt.baseURL})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New(%q) = nil error, want a refusal", tt.baseURL)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error leaks credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.baseURL, err)
			}
			c.CloseIdleConnections()
		})
	}
}

// Retries running out make retryablehttp call CloseIdleConnections on its
// http.Client (PITFALLS: go-retryablehttp #237). With a shared transport that
// would empty every upstream's pool. Each Client owns its transport, and the
// attempt wrapper ignores the call even when a transport is shared.
func TestGivingUpKeepsConnectionPools(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run("shared Config.Transport="+strconv.FormatBool(shared), func(t *testing.T) {
			var newA, newB atomic.Int64
			failing := newCountingServer(t, statuses(503), &newA)
			healthy := newCountingServer(t, statuses(200), &newB)
			cfgA, cfgB := testConfig(failing.URL), testConfig(healthy.URL)
			if shared {
				tr := &http.Transport{MaxIdleConnsPerHost: 8}
				t.Cleanup(tr.CloseIdleConnections)
				cfgA.Transport, cfgB.Transport = tr, tr
			}
			a, b := newClient(t, cfgA), newClient(t, cfgB)

			for range 3 {
				if _, err := b.Do(t.Context(), &upstream.Request{Path: "/ok"}); err != nil {
					t.Fatalf("healthy upstream: %v", err)
				}
				_, err := a.Do(t.Context(), &upstream.Request{Path: "/down"})
				wantStatusError(t, err, 503, 3) // retries ran out
			}
			if _, err := b.Do(t.Context(), &upstream.Request{Path: "/ok"}); err != nil {
				t.Fatalf("healthy upstream: %v", err)
			}

			wantCalls(t, healthy, 4)
			wantCalls(t, failing, 9)
			if n := newB.Load(); n != 1 {
				t.Errorf("healthy upstream saw %d new connections over 4 calls, want 1 reused", n)
			}
			if n := newA.Load(); n != 1 {
				t.Errorf("failing upstream saw %d new connections over 9 attempts, want 1 reused", n)
			}
		})
	}
}

func TestCloseIdleConnections(t *testing.T) {
	var conns atomic.Int64
	srv := newCountingServer(t, statuses(200), &conns)
	c := newClient(t, testConfig(srv.URL))
	call := func() {
		t.Helper()
		if _, err := c.Do(t.Context(), &upstream.Request{Path: "/x"}); err != nil {
			t.Fatalf("Do: %v", err)
		}
	}

	call()
	call()
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 2 calls, want 1 reused", n)
	}
	c.CloseIdleConnections()
	call()
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after CloseIdleConnections, want a new one", n)
	}
}

func TestResponse(t *testing.T) {
	var mu sync.Mutex
	var uri string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		mu.Lock()
		uri = r.RequestURI
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "users")
		io.WriteString(w, `{"id":7}`)
	})
	c := newClient(t, testConfig(srv.URL+"/api/"))

	resp, err := c.Do(t.Context(), &upstream.Request{Path: "/users/7", RawQuery: "fields=id&x=%2F"})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.Status != 200 || string(resp.Body) != `{"id":7}` || resp.Attempts != 1 || resp.Header.Get("X-Upstream") != "users" {
		t.Fatalf("resp = %+v", resp)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "/api/users/7?fields=id&x=%2F"; uri != want {
		t.Fatalf("upstream saw %q, want %q", uri, want)
	}
}

func TestErrorNamesUpstreamAndOperation(t *testing.T) {
	srv := newServer(t, statuses(404))
	cfg := testConfig(srv.URL)
	cfg.Name = "users"
	c := newClient(t, cfg)

	_, err := c.Do(t.Context(), &upstream.Request{Path: "/users/7"})

	ue := upstreamError(t, err)
	if ue.Upstream != "users" || ue.Op != "GET /users/7" {
		t.Fatalf("err names %q %q, want users and GET /users/7", ue.Upstream, ue.Op)
	}
	if want := "upstream users: GET /users/7: status 404 after 1 attempt(s)"; err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
}

// A call whose deadline leaves no time is not started: no network, and no
// failure counted against a healthy upstream (a dependent call that got
// what an earlier, slow call left over must not open this breaker).
func TestNoTimeLeftIsNotTheUpstreamsFault(t *testing.T) {
	srv := newServer(t, statuses(200))
	cfg := testConfig(srv.URL)
	cfg.Breaker.ConsecutiveFailures = 2
	c := newClient(t, cfg)
	for range 5 {
		_, err := c.Do(t.Context(), &upstream.Request{Path: "/x", Deadline: time.Now().Add(-time.Millisecond)})
		if ue := upstreamError(t, err); ue.Kind != upstream.KindTimeout || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a timeout", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Microsecond)
		_, err = c.Do(ctx, &upstream.Request{Path: "/x"})
		cancel()
		if ue := upstreamError(t, err); ue.Kind != upstream.KindTimeout {
			t.Fatalf("err = %v, want a timeout", err)
		}
	}
	wantCalls(t, srv, 0)
	if got := c.BreakerState(); got != gobreaker.StateClosed {
		t.Fatalf("breaker %v, want closed", got)
	}
	if _, err := c.Do(t.Context(), &upstream.Request{Path: "/x"}); err != nil {
		t.Fatalf("a healthy call after them: %v", err)
	}
}

// 204 carries no body by definition: it is a success with nothing in it.
func TestNoContentIsNotMalformed(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, _ int64) { w.WriteHeader(http.StatusNoContent) })
	c := newClient(t, testConfig(srv.URL))
	resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
	if err != nil || resp.Status != http.StatusNoContent || len(resp.Body) != 0 {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
}
