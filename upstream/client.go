package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/sony/gobreaker/v2"
)

// Config describes one upstream API. The zero value of every field but
// Name and BaseURL is documented and usable.
type Config struct {
	// Name identifies the upstream in errors, metrics and logs.
	Name string
	// BaseURL is the scheme, host and optional path prefix, e.g.
	// "http://users.internal:8080/api". Request paths are appended below it.
	BaseURL string
	// Timeout bounds one call, all attempts included, when the request sets
	// none. The caller's deadline always wins. Zero means 2s.
	Timeout time.Duration
	// AttemptTimeout bounds a single attempt so that a hung attempt leaves
	// time for a retry. Zero means attempts are bounded by Timeout only.
	AttemptTimeout time.Duration
	// MinAttemptTime is the least time left before the deadline for which a
	// retry is still started. Zero means 10ms.
	MinAttemptTime time.Duration
	// DialTimeout bounds establishing a connection. Zero means 2s.
	DialTimeout time.Duration
	// MaxBodyBytes caps a response body, measured after decompression.
	// A larger body fails the call. Zero means 4 MiB.
	MaxBodyBytes int64
	// MaxConns caps concurrent connections to the upstream. Zero means no cap.
	MaxConns int
	// MaxIdleConns is the keep-alive pool size. Zero means 256, sized for
	// fan-out: net/http's default of 2 per host starves a BFF.
	MaxIdleConns int
	// IdleConnTimeout closes pooled connections idle this long. Zero means 90s.
	IdleConnTimeout time.Duration
	// ForwardAuthorization lets the caller's Authorization header reach this
	// upstream. Off by default: most upstreams must never see user tokens.
	ForwardAuthorization bool
	// Retry is the retry policy for idempotent calls.
	Retry RetryConfig
	// RetryBudget bounds the load retries add to a share of live traffic.
	RetryBudget BudgetConfig
	// MaxConcurrent bounds the calls in flight to this upstream (a
	// bulkhead), so one slow upstream cannot hold the goroutines,
	// connections and memory the others need. Zero means 256; negative
	// means no bound.
	MaxConcurrent int
	// QueueWait is how long a call waits for a free slot before failing
	// with KindBulkheadFull. Zero means 20ms.
	QueueWait time.Duration
	// DeadlineHeader names the request header that tells the upstream how
	// many milliseconds the attempt has left, so it can give up when the
	// answer would come too late. Empty means "X-Bff-Deadline-Ms"; "-"
	// sends none.
	DeadlineHeader string
	// Breaker is the circuit breaker policy.
	Breaker BreakerConfig
	// OnStateChange, if set, is called when the breaker changes state.
	OnStateChange func(upstream string, from, to gobreaker.State)
	// Transport replaces the client's own transport (tests, instrumentation).
	// Nil means a pooled *http.Transport owned by this client.
	Transport http.RoundTripper
	// WrapTransport, if set, wraps the transport that makes each network
	// attempt (below the breaker and the retries): one trace span per attempt.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Observer, if set, sees every call's start and outcome.
	Observer Observer
}

// RetryConfig: retries on a live request path are few and short.
type RetryConfig struct {
	// Max is the number of retries after the first attempt. Zero means none.
	Max int
	// WaitMin and WaitMax bound the exponential backoff, which is jittered.
	// Zero means 10ms and 100ms.
	WaitMin, WaitMax time.Duration
	// RetryAfterMax is the longest Retry-After that is waited for. A longer
	// one, or one that does not fit in the deadline, ends the retries at once
	// with the upstream's answer. Zero means 1s.
	RetryAfterMax time.Duration
}

// BreakerConfig: transport errors, timeouts and 5xx are failures; 4xx and
// the caller's own cancellation are not.
type BreakerConfig struct {
	// ConsecutiveFailures trips the breaker. Zero means 5.
	ConsecutiveFailures uint32
	// FailureRatio trips the breaker when at least MinRequests calls were
	// counted in the window. Zero means 0.5; above 1 disables it.
	FailureRatio float64
	// MinRequests before FailureRatio applies. Zero means 20.
	MinRequests uint32
	// Interval is the rolling window of closed-state counts. Zero means 10s.
	Interval time.Duration
	// OpenTimeout is how long the breaker stays open before letting probes
	// through. Zero means 5s.
	OpenTimeout time.Duration
	// HalfOpenProbes is how many calls may probe a half-open breaker, and how
	// many must succeed to close it. Zero means 1.
	HalfOpenProbes uint32
}

// Request is one call to an upstream.
type Request struct {
	// Method defaults to GET.
	Method string
	// Path is already escaped (see EscapeSegment) and starts with '/'. It
	// is appended to the base URL's path; it can never leave it.
	Path string
	// RawQuery is the encoded query string, without '?'.
	RawQuery string
	// Header is the inbound client request's header. Only an allowlist
	// reaches the upstream (see forwardHeaders).
	Header http.Header
	// Body is sent as is (mutations). Nil for reads.
	Body []byte
	// Timeout bounds this call; zero means the upstream's Timeout.
	Timeout time.Duration
	// Deadline, if set, ends the call by then even when Timeout is longer:
	// the caller keeps time for its own work after the call.
	Deadline time.Time
}

// Response is a successful (2xx) upstream answer with its body buffered.
type Response struct {
	Status int
	Header http.Header
	// Body is valid until Release.
	Body     []byte
	Attempts int
	Duration time.Duration
}

// Release recycles the body's buffer. The caller must not use Body, or
// anything that points into it, afterwards. Not calling it is safe.
func (r *Response) Release() {
	if r.Body != nil {
		putBuffer(r.Body)
		r.Body = nil
	}
}

// Client calls one upstream. It is safe for concurrent use.
type Client struct {
	cfg       Config
	origin    string                              // scheme://host
	basePath  string                              // escaped, without trailing '/'
	transport interface{ CloseIdleConnections() } // the client's own, if it has one
	http      *http.Client
	breaker   *gobreaker.TwoStepCircuitBreaker[struct{}]
	budget    *retryBudget
	slots     chan struct{} // the bulkhead; nil when unbounded
}

// New validates cfg and builds the client, its transport and its breaker.
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		return nil, errors.New("upstream: name is required")
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		// A *url.Error repeats the raw URL, credentials included: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("upstream %s: base URL: %w", cfg.Name, err)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("upstream %s: base URL %q must be http(s)://host[:port][/prefix]", cfg.Name, base.Redacted())
	}
	if base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		return nil, fmt.Errorf("upstream %s: base URL %q must not carry a query, fragment or credentials", cfg.Name, base.Redacted())
	}
	if p := base.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("upstream %s: base URL %q: port %s is not 1 to 65535", cfg.Name, base.Redacted(), p)
		}
	}
	cfg = withDefaults(cfg)

	c := &Client{
		cfg:      cfg,
		origin:   base.Scheme + "://" + base.Host,
		basePath: strings.TrimSuffix(base.EscapedPath(), "/"),
	}
	next := cfg.Transport
	if next == nil {
		dial := (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
		const maxHeader = 64 << 10
		std := &http.Transport{
			DialContext:            dial,
			MaxIdleConns:           cfg.MaxIdleConns,
			MaxIdleConnsPerHost:    cfg.MaxIdleConns,
			MaxConnsPerHost:        cfg.MaxConns,
			IdleConnTimeout:        cfg.IdleConnTimeout,
			TLSHandshakeTimeout:    5 * time.Second,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: maxHeader,
			ForceAttemptHTTP2:      true,
		}
		c.transport, next = std, std
		if base.Scheme == "http" {
			port := base.Port()
			if port == "" {
				port = "80"
			}
			direct := newDirectTransport(base.Host, net.JoinHostPort(base.Hostname(), port), dial, std, cfg, maxHeader)
			c.transport, next = direct, direct
		}
	}
	if cfg.WrapTransport != nil {
		next = cfg.WrapTransport(next)
	}
	c.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](c.breakerSettings())
	c.budget = newRetryBudget(cfg.RetryBudget)
	if cfg.MaxConcurrent > 0 {
		c.slots = make(chan struct{}, cfg.MaxConcurrent)
	}
	at := &attemptTransport{
		next:           next,
		breaker:        c.breaker,
		attemptTimeout: cfg.AttemptTimeout,
		maxBody:        cfg.MaxBodyBytes,
		observer:       cfg.Observer,
	}
	if cfg.DeadlineHeader != "-" {
		at.deadlineHeader = http.CanonicalHeaderKey(cfg.DeadlineHeader)
	}
	c.http = &http.Client{
		Transport: at,
		// Upstream APIs are called, not browsed: a redirect is an answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

func withDefaults(cfg Config) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, 2*time.Second)
	def(&cfg.MinAttemptTime, 10*time.Millisecond)
	def(&cfg.DialTimeout, 2*time.Second)
	def(&cfg.IdleConnTimeout, 90*time.Second)
	def(&cfg.Retry.WaitMin, 10*time.Millisecond)
	def(&cfg.Retry.WaitMax, 100*time.Millisecond)
	def(&cfg.Retry.RetryAfterMax, time.Second)
	def(&cfg.Breaker.Interval, 10*time.Second)
	def(&cfg.Breaker.OpenTimeout, 5*time.Second)
	def(&cfg.QueueWait, 20*time.Millisecond)
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 256
	}
	if cfg.DeadlineHeader == "" {
		cfg.DeadlineHeader = "X-Bff-Deadline-Ms"
	}
	if cfg.Retry.WaitMax < cfg.Retry.WaitMin {
		cfg.Retry.WaitMax = cfg.Retry.WaitMin
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = 256
	}
	if cfg.Breaker.ConsecutiveFailures == 0 {
		cfg.Breaker.ConsecutiveFailures = 5
	}
	if cfg.Breaker.FailureRatio == 0 {
		cfg.Breaker.FailureRatio = 0.5
	}
	if cfg.Breaker.MinRequests == 0 {
		cfg.Breaker.MinRequests = 20
	}
	if cfg.Breaker.HalfOpenProbes == 0 {
		cfg.Breaker.HalfOpenProbes = 1
	}
	return cfg
}

func (c *Client) breakerSettings() gobreaker.Settings {
	b := c.cfg.Breaker
	s := gobreaker.Settings{
		Name:         c.cfg.Name,
		MaxRequests:  b.HalfOpenProbes,
		Interval:     b.Interval,
		BucketPeriod: b.Interval / 10,
		Timeout:      b.OpenTimeout,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			if n.ConsecutiveFailures >= b.ConsecutiveFailures {
				return true
			}
			// gobreaker counts excluded calls (the caller hung up) in
			// Requests too: they must not dilute the ratio.
			counted := n.Requests - min(n.TotalExclusions, n.Requests)
			return counted >= b.MinRequests && float64(n.TotalFailures) >= b.FailureRatio*float64(counted)
		},
		// The caller hanging up says nothing about the upstream's health.
		IsExcluded: func(err error) bool { return errors.Is(err, errCallerCanceled) },
	}
	if c.cfg.OnStateChange != nil {
		name, f := c.cfg.Name, c.cfg.OnStateChange
		s.OnStateChange = func(_ string, from, to gobreaker.State) { f(name, from, to) }
	}
	return s
}

// acquire takes a bulkhead slot, waiting at most QueueWait (and never past
// the deadline or the caller's cancellation).
func (c *Client) acquire(ctx context.Context, deadline time.Time) bool {
	select {
	case c.slots <- struct{}{}:
		return true
	default:
	}
	wait := min(c.cfg.QueueWait, time.Until(deadline))
	if wait <= 0 {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case c.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// Name returns the upstream's name.
func (c *Client) Name() string { return c.cfg.Name }

// BreakerState returns the circuit breaker's current state.
func (c *Client) BreakerState() gobreaker.State { return c.breaker.State() }

// BreakerCounts returns the breaker's counts in the current window.
func (c *Client) BreakerCounts() gobreaker.Counts { return c.breaker.Counts() }

// PoolStats describes a client's own connection pool.
type PoolStats struct {
	Open  int    // connections open, idle ones included
	Idle  int    // connections waiting in the pool
	Dials uint64 // connections opened since the client was made
}

// PoolStats reports the connection pool of a plain-HTTP upstream's GETs;
// false when the client has none of its own (https://, or a Transport
// given in Config), as http.Transport does not report its pool.
func (c *Client) PoolStats() (PoolStats, bool) {
	if d, ok := c.transport.(*directTransport); ok {
		return d.stats(), true
	}
	return PoolStats{}, false
}

// CloseIdleConnections empties the client's own keep-alive pool.
func (c *Client) CloseIdleConnections() {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}

// Do makes one call: breaker, retries inside the deadline, size limit. A
// status >= 300 or any failure is returned as an *Error.
func (c *Client) Do(ctx context.Context, r *Request) (*Response, error) {
	obs := c.cfg.Observer
	if obs == nil {
		return c.do(ctx, r)
	}
	start := time.Now()
	obs.CallStarted(ctx)
	resp, err := c.do(ctx, r)
	res := CallResult{Duration: time.Since(start), Err: err}
	if resp != nil {
		res.Status, res.Attempts = resp.Status, resp.Attempts
	}
	var ue *Error
	if errors.As(err, &ue) {
		res.Kind, res.Status, res.Attempts, res.RetryDenied = ue.Kind, ue.Status, ue.Attempts, ue.RetryDenied
	}
	obs.CallDone(ctx, res)
	return resp, err
}

func (c *Client) do(ctx context.Context, r *Request) (*Response, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	fail := func(kind Kind, status, attempts int, err error) (*Response, error) {
		op := method + " " + r.Path // built only for an error: most calls succeed
		return nil, &Error{Upstream: c.cfg.Name, Op: op, Kind: kind, Status: status, Attempts: attempts, Err: err}
	}
	path, ok := joinPath(c.basePath, r.Path)
	if !ok {
		return fail(KindTransport, 0, 0, fmt.Errorf("unsafe path %q", r.Path))
	}
	target := c.origin + path + "?" + r.RawQuery // one allocation, not two
	if r.RawQuery == "" {
		target = target[:len(target)-1]
	}

	timeout := r.Timeout
	if timeout <= 0 {
		timeout = c.cfg.Timeout
	}
	deadline := time.Now().Add(timeout)
	if !r.Deadline.IsZero() && r.Deadline.Before(deadline) {
		deadline = r.Deadline
	}
	if cd, ok := ctx.Deadline(); ok && cd.Before(deadline) {
		deadline = cd
	}
	// A call with no time to do anything is not started: it would only
	// fail, and count against a healthy upstream's breaker.
	if time.Until(deadline) < c.cfg.MinAttemptTime {
		return fail(KindTimeout, 0, 0, fmt.Errorf("%w: less than %s left", context.DeadlineExceeded, c.cfg.MinAttemptTime))
	}
	if c.slots != nil {
		if !c.acquire(ctx, deadline) {
			if errors.Is(ctx.Err(), context.Canceled) { // the caller left while it waited
				return fail(KindCanceled, 0, 0, fmt.Errorf("waiting for a free slot: %w", ctx.Err()))
			}
			return fail(KindBulkheadFull, 0, 0, fmt.Errorf("%w: %d in flight, none freed within %s", ErrBulkheadFull, cap(c.slots), c.cfg.QueueWait))
		}
		defer func() { <-c.slots }()
	}
	c.budget.call(time.Now())
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var body any
	if r.Body != nil {
		body = r.Body
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fail(KindTransport, 0, 0, fmt.Errorf("build request: %w", err))
	}
	c.forwardHeaders(req.Header, r.Header)
	if r.Body != nil {
		req.Header["Content-Type"] = acceptJSON // bodies are JSON, validated by the view
	}

	// The policy and the retryablehttp.Client that uses it live and die with
	// this call: one allocation for both.
	call := &struct {
		policy retryPolicy
		rc     retryablehttp.Client
	}{policy: retryPolicy{client: c, retryable: retryable(method, r.Header)}}
	policy, rc := &call.policy, &call.rc
	*rc = retryablehttp.Client{
		HTTPClient:   c.http,
		RetryMax:     c.cfg.Retry.Max,
		RetryWaitMin: c.cfg.Retry.WaitMin,
		RetryWaitMax: c.cfg.Retry.WaitMax,
		CheckRetry:   policy.check,
		Backoff:      policy.backoff,
		// Keep the last answer: a 503 after the last retry is still a 503.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	start := time.Now()
	resp, err := rc.Do(req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return policy.fail(fail(classify(err), 0, policy.attempts, err))
	}
	if resp.StatusCode >= 300 {
		_ = resp.Body.Close()
		return policy.fail(fail(KindStatus, resp.StatusCode, policy.attempts, fmt.Errorf("status %d", resp.StatusCode)))
	}
	var b []byte
	if bb, ok := resp.Body.(*bufferedBody); ok {
		b = bb.data // handed out: Release recycles it
	}
	return &Response{
		Status:   resp.StatusCode,
		Header:   resp.Header,
		Body:     b,
		Attempts: policy.attempts,
		Duration: time.Since(start),
	}, nil
}
