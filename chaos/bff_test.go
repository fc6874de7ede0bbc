package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// config is the part of the BFF's config file the rows set. JSON is YAML,
// so the file is written with encoding/json.
type config struct {
	Server    *serverConfig              `json:"server,omitempty"`
	Log       logConfig                  `json:"log"`
	Cache     *cacheConfig               `json:"cache,omitempty"`
	Views     *viewsConfig               `json:"views,omitempty"`
	Upstreams map[string]*upstreamConfig `json:"upstreams"`
	Clients   map[string]*clientConfig   `json:"clients,omitempty"`
}

type serverConfig struct {
	IdleTimeout     string `json:"idle_timeout,omitempty"`
	WriteTimeout    string `json:"write_timeout,omitempty"`
	ShutdownTimeout string `json:"shutdown_timeout,omitempty"`
	ShutdownDelay   string `json:"shutdown_delay,omitempty"`
	MaxInFlight     int    `json:"max_in_flight,omitempty"`
}

type clientConfig struct {
	RateLimit *rateLimitConfig `json:"rate_limit,omitempty"`
}

type rateLimitConfig struct {
	Requests int    `json:"requests"`
	Window   string `json:"window"`
}

type logConfig struct {
	AccessLog bool `json:"access_log"`
}

type cacheConfig struct {
	MaxBytes int64 `json:"max_bytes"`
}

type viewsConfig struct {
	Dir string `json:"dir"`
}

type upstreamConfig struct {
	URL           string         `json:"url"`
	Timeout       string         `json:"timeout,omitempty"`
	MaxBodyBytes  int64          `json:"max_body_bytes,omitempty"`
	MaxConcurrent int            `json:"max_concurrent,omitempty"`
	RetryBudget   *budgetConfig  `json:"retry_budget,omitempty"`
	Breaker       *breakerConfig `json:"breaker,omitempty"`
}

type budgetConfig struct {
	Ratio        float64 `json:"ratio,omitempty"`
	MinPerSecond float64 `json:"min_per_second,omitempty"`
	Window       string  `json:"window,omitempty"`
}

type breakerConfig struct {
	ConsecutiveFailures int     `json:"consecutive_failures,omitempty"`
	FailureRatio        float64 `json:"failure_ratio,omitempty"`
	MinRequests         int     `json:"min_requests,omitempty"`
	Interval            string  `json:"interval,omitempty"`
	OpenTimeout         string  `json:"open_timeout,omitempty"`
	HalfOpenProbes      int     `json:"half_open_probes,omitempty"`
}

// neverTrips keeps a breaker closed, for rows about something else.
var neverTrips = &breakerConfig{ConsecutiveFailures: 1 << 20, MinRequests: 1 << 30} // the ratio never has enough calls

// newConfig points every upstream the views call at ups, with the cache
// off unless cacheBytes > 0, no access log (it would cost the 2 cores more
// than the rows), and the chaos views of writeViews.
func newConfig(t *testing.T, ups *upstreams, cacheBytes int64, viewTimeout time.Duration) *config {
	t.Helper()
	cfg := &config{
		Cache:     &cacheConfig{MaxBytes: cacheBytes},
		Views:     &viewsConfig{Dir: writeViews(t, viewTimeout)},
		Upstreams: map[string]*upstreamConfig{},
	}
	for name, f := range ups.byName {
		cfg.Upstreams[name] = &upstreamConfig{URL: f.url}
	}
	return cfg
}

// bffProc is one running bff process.
type bffProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string // public listener, host:port
	admin  string // admin listener, host:port
	base   string // http://addr
	logs   *logSink
	exited chan struct{} // closed once the process is reaped
	err    error         // from Wait, valid after exited
	client *http.Client  // public listener, keep-alive
	adminC *http.Client  // admin listener, one connection per request
}

// startBFF writes cfg, starts the binary and waits until both listeners
// are up. The process is stopped with SIGTERM (SIGKILL if that fails) when
// the test ends, and must exit 0.
func startBFF(t *testing.T, cfg *config) *bffProc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bff.yaml")
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bffBinary, "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-config", path)
	cmd.Env = bffEnv()
	// If this test binary dies (a -timeout panic), the BFF dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &bffProc{
		t: t, cmd: cmd, logs: newLogSink(), exited: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 2048,
			DisableCompression:  true,
		}},
		adminC: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second},
	}
	go func() {
		p.logs.read(stderr)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	select {
	case <-p.logs.ready:
	case <-p.exited:
		t.Fatalf("bff exited at start-up (%v):\n%s", p.err, p.logs.tail(40))
	case <-time.After(30 * time.Second):
		t.Fatalf("bff did not report both listeners within 30s:\n%s", p.logs.tail(40))
	}
	p.addr, p.admin = p.logs.addrs()
	p.base = "http://" + p.addr
	return p
}

// bffEnv is this process's environment without BFF_* settings, which would
// override the config file, plus JSON logs.
func bffEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BFF_") {
			env = append(env, kv)
		}
	}
	return append(env, "BFF_LOG_FORMAT=json")
}

func (p *bffProc) pid() int { return p.cmd.Process.Pid }

func (p *bffProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop ends the process (a clean SIGTERM shutdown is part of every row) and
// frees the test's connections to it.
func (p *bffProc) stop() {
	p.client.CloseIdleConnections()
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.err != nil {
				p.t.Errorf("bff did not exit 0 after SIGTERM: %v\n%s", p.err, p.logs.tail(20))
			}
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.t.Errorf("bff still running 30s after SIGTERM; killed\n%s", p.logs.tail(20))
		}
	}
	if n := p.logs.panics(); n > 0 {
		p.t.Errorf("bff logged %d panic or data race line(s):\n%s", n, p.logs.grep("panic", 10))
	}
	if p.t.Failed() {
		p.t.Logf("bff log, last lines:\n%s", p.logs.tail(30))
	}
}

// waitExit waits for the process to end by itself.
func (p *bffProc) waitExit(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s", timeout)
	}
}

// response is one client request's outcome.
type response struct {
	status int
	header http.Header
	body   []byte
	err    error
	dur    time.Duration
}

func (r response) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// problemType is a problem+json body's type, "" for anything else.
func (r response) problemType() string {
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(r.body, &p)
	return p.Type
}

// get sends one request to the public listener.
func (p *bffProc) get(ctx context.Context, path string, header ...string) response {
	return do(ctx, p.client, p.base+path, header...)
}

// post sends a JSON body to the public listener.
func (p *bffProc) post(ctx context.Context, path, body string, header ...string) response {
	return doMethod(ctx, p.client, http.MethodPost, p.base+path, strings.NewReader(body), append(header, "Content-Type", "application/json")...)
}

func do(ctx context.Context, c *http.Client, url string, header ...string) response {
	return doMethod(ctx, c, http.MethodGet, url, nil, header...)
}

func doMethod(ctx context.Context, c *http.Client, method, url string, reqBody io.Reader, header ...string) response {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, reqBody)
	if err != nil {
		return response{err: err}
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return response{err: err, dur: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body, err: err, dur: time.Since(start)}
}

// adminGet reads an admin endpoint.
func (p *bffProc) adminGet(path string) ([]byte, error) {
	r := do(context.Background(), p.adminC, "http://"+p.admin+path)
	if r.err != nil {
		return nil, r.err
	}
	if r.status != http.StatusOK {
		return r.body, fmt.Errorf("%s: status %d", path, r.status)
	}
	return r.body, nil
}

// metrics scrapes /metrics.
func (p *bffProc) metrics() metrics {
	p.t.Helper()
	b, err := p.adminGet("/metrics")
	if err != nil {
		p.t.Fatalf("scrape: %v", err)
	}
	return parseMetrics(string(b))
}

// upstreamState is one entry of /_bff/upstreams.
type upstreamState struct {
	Name    string `json:"name"`
	Breaker struct {
		State               string `json:"state"`
		Requests            uint32 `json:"requests"`
		TotalFailures       uint32 `json:"total_failures"`
		ConsecutiveFailures uint32 `json:"consecutive_failures"`
	} `json:"breaker"`
	Calls    map[string]uint64 `json:"calls"`
	Retries  uint64            `json:"retries"`
	InFlight int64             `json:"in_flight"`
}

func (p *bffProc) upstreamStates() map[string]upstreamState {
	p.t.Helper()
	b, err := p.adminGet("/_bff/upstreams")
	if err != nil {
		p.t.Fatalf("/_bff/upstreams: %v", err)
	}
	var v struct {
		Upstreams []upstreamState `json:"upstreams"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		p.t.Fatalf("/_bff/upstreams: %v", err)
	}
	out := map[string]upstreamState{}
	for _, u := range v.Upstreams {
		out[u.Name] = u
	}
	return out
}

// waitBreaker polls until the upstream's breaker reports state (0 closed,
// 1 half-open, 2 open). Scraping also moves an expired open breaker to
// half-open: gobreaker does that when asked.
func (p *bffProc) waitBreaker(upstream string, state float64, within time.Duration) {
	p.t.Helper()
	eventually(p.t, within, fmt.Sprintf("breaker of %s in state %v", upstream, state), func() bool {
		return p.metrics().sum("bff_upstream_breaker_state", "upstream", upstream) == state
	})
}

// footprint is what a leak would grow.
type footprint struct {
	goroutines int
	fds        int
}

func (f footprint) String() string { return fmt.Sprintf("%d goroutines, %d fds", f.goroutines, f.fds) }

// footprint is the least of three readings 20 ms apart, baseline the
// greatest: the admin scrape that reads go_goroutines adds a goroutine or
// two of its own, and the previous scrape's connection may not have ended.
func (p *bffProc) footprint() footprint {
	return p.readFootprint(func(a, b int) int { return min(a, b) })
}

func (p *bffProc) baseline() footprint {
	return p.readFootprint(func(a, b int) int { return max(a, b) })
}

func (p *bffProc) readFootprint(pick func(a, b int) int) footprint {
	p.t.Helper()
	var f footprint
	for i := range 3 {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		g := int(p.metrics().sum("go_goroutines"))
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid()))
		if err != nil {
			p.t.Fatalf("open fds: %v", err)
		}
		if i == 0 {
			f = footprint{g, len(ents)}
			continue
		}
		f.goroutines, f.fds = pick(f.goroutines, g), pick(f.fds, len(ents))
	}
	return f
}

// Tolerances over the baseline once a row is over. The baseline is taken
// after start-up; a few goroutines that a library starts once, on first
// use, may remain afterwards (and the admin scrape that measures is in both
// numbers). A leak grows with a row's traffic (hundreds to thousands of
// requests or connections), so it cannot hide in these.
const (
	goroutineSlack = 5
	fdSlack        = 2
)

// expectBaseline waits (bounded) until the process is back to its
// baseline: the test's own keep-alive connections are closed first, and the
// BFF's pooled upstream connections end when the fake upstreams close them
// after their 500ms idle timeout. It waits up to 3s for the exact baseline,
// then up to 20s in all for the baseline plus the slack.
func (p *bffProc) expectBaseline(base footprint) {
	p.t.Helper()
	p.client.CloseIdleConnections()
	start := time.Now()
	var now footprint
	for {
		now = p.footprint()
		exact := now.goroutines <= base.goroutines && now.fds <= base.fds
		slack := now.goroutines <= base.goroutines+goroutineSlack && now.fds <= base.fds+fdSlack
		if exact || slack && time.Since(start) > 3*time.Second {
			p.t.Logf("footprint: baseline %v, %v after the row (%s later)", base, now, time.Since(start).Round(10*time.Millisecond))
			return
		}
		if time.Since(start) > 20*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stacks, _ := p.adminGet("/debug/pprof/goroutine?debug=1")
	p.t.Errorf("footprint did not return to baseline within 20s: baseline %v, now %v\n%s", base, now, firstLines(string(stacks), 80))
}

// procStatus reads a field of /proc/PID/status in bytes (VmRSS, VmHWM).
func (p *bffProc) procStatus(field string) int64 {
	p.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		p.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				p.t.Fatal(err)
			}
			return kb << 10
		}
	}
	p.t.Fatalf("no %s in /proc/%d/status", field, p.pid())
	return 0
}

// logSink keeps the BFF's log lines and finds the listening addresses.
type logSink struct {
	mu         sync.Mutex
	lines      []string
	dropped    int
	panicLines []string
	public     string
	admin      string
	ready      chan struct{} // closed once both addresses are known
	announced  bool
}

const keepLines = 5000

func newLogSink() *logSink { return &logSink{ready: make(chan struct{})} }

func (s *logSink) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		_ = json.Unmarshal([]byte(line), &rec)
		s.mu.Lock()
		switch rec.Msg {
		case "bff listening":
			s.public = rec.Addr
		case "admin listening":
			s.admin = rec.Addr
		}
		if s.public != "" && s.admin != "" && !s.announced {
			close(s.ready)
			s.announced = true
		}
		// A race-built BFF (CHAOS_RACE=1) reports races on stderr.
		if strings.Contains(strings.ToLower(line), "panic") || strings.Contains(line, "DATA RACE") {
			s.panicLines = append(s.panicLines, line)
		}
		s.lines = append(s.lines, line)
		if len(s.lines) > 2*keepLines {
			s.dropped += len(s.lines) - keepLines
			s.lines = append([]string(nil), s.lines[len(s.lines)-keepLines:]...)
		}
		s.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

func (s *logSink) addrs() (public, admin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.public, s.admin
}

func (s *logSink) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := max(len(s.lines)-n, 0)
	return strings.Join(s.lines[from:], "\n")
}

func (s *logSink) panics() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.panicLines)
}

// forgetPanics drops the panic lines seen so far: a test that reported
// them as a known bug does not fail on them again.
func (s *logSink) forgetPanics() {
	s.mu.Lock()
	s.panicLines = nil
	s.mu.Unlock()
}

func (s *logSink) grep(substr string, n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if strings.Contains(l, substr) {
			out = append(out, truncate(l, 600))
			if len(out) == n {
				break
			}
		}
	}
	if substr == "panic" && len(out) == 0 {
		for _, l := range s.panicLines[:min(n, len(s.panicLines))] {
			out = append(out, truncate(l, 600))
		}
	}
	return strings.Join(out, "\n")
}

// count is the number of kept lines containing every substring.
func (s *logSink) count(substrs ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
next:
	for _, l := range s.lines {
		for _, sub := range substrs {
			if !strings.Contains(l, sub) {
				continue next
			}
		}
		n++
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// eventually polls cond every 20ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
