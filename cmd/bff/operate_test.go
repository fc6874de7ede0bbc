package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/config"
)

// start runs the binary's serve path with env and an optional config file,
// and returns its addresses, its log and a stop function that waits for exit.
func start(t *testing.T, env map[string]string, config string) (listeners, *lockedBuffer, func() int) {
	t.Helper()
	var args []string
	if config != "" {
		path := filepath.Join(t.TempDir(), "bff.yaml")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = []string{"-config", path}
	}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan listeners, 1)
	done := make(chan int, 1)
	logs := &lockedBuffer{}
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, io.Discard, logs, listening) }()
	var l listeners
	select {
	case l = <-listening:
	case code := <-done:
		cancel()
		t.Fatalf("bff exited with %d before listening:\n%s", code, logs.String())
	}
	stopped := false
	var code int
	stop := func() int {
		if !stopped {
			stopped = true
			cancel()
			code = <-done
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return l, logs, stop
}

func request(t *testing.T, method, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Tokens, cookies and API keys in requests never reach the logs: not in
// access lines (a failed view's says why), not from the admin listener,
// whatever the request's fate.
func TestLogsHoldNoSecrets(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/users/8" {
			http.Error(w, `{"error":"`+r.Header.Get("Authorization")+`"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"id":7,"name":"n","email":"e","avatar_url":"a"}`)
	}))
	t.Cleanup(users.Close)
	env := f.env()
	env["BFF_UPSTREAM_USERS_URL"] = users.URL
	env["BFF_LOG_FORMAT"] = "json"
	env["BFF_LOG_LEVEL"] = "debug"
	env["BFF_ADMIN_TOKEN"] = "admin-SECRET-0"
	l, logs, stop := start(t, env, "upstreams:\n  users:\n    retry: {max: 1}\n")
	secrets := []string{"Authorization", "Bearer tok-SECRET-1", "Cookie", "session=cookie-SECRET-2", "X-Api-Key", "key-SECRET-3"}
	base := "http://" + l.Public
	for _, path := range []string{"/web/home/7", "/web/home/7?access_token=qs-SECRET-4", "/web/home/8", "/nowhere", "/web/home/x"} {
		request(t, http.MethodGet, base+path, secrets...)
	}
	request(t, http.MethodGet, base+"/web/home/9", "Authorization", "Basic dXNlcjpiasic-SECRET-5")
	if code, _ := request(t, http.MethodGet, "http://"+l.Admin+"/_bff/upstreams", "Authorization", "Bearer wrong-SECRET-6"); code != http.StatusUnauthorized {
		t.Errorf("admin with a wrong token: %d; want 401", code)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	out := logs.String()
	for _, s := range []string{"SECRET", "dXNlcjpi"} {
		if strings.Contains(out, s) {
			t.Errorf("the log holds %q:\n%s", s, out)
		}
	}
	// The log is not empty by accident: each request has its line.
	lines := 0
	for line := range strings.Lines(out) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" {
			lines++
		}
	}
	if lines != 6 {
		t.Errorf("%d access lines; want 6, one per public request:\n%s", lines, out)
	}
	if !strings.Contains(out, `"status":502`) || !strings.Contains(out, `"error":"view web.home:`) {
		t.Errorf("the failed view's access line does not say why:\n%s", out)
	}
}

// From the first moment of shutdown, /readyz says "not ready" on both
// listeners while the public one still serves requests (shutdown_delay), so
// load balancers stop sending traffic before the listener closes.
func TestReadyzFailsAsSoonAsShutdownStarts(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	l, _, stop := start(t, f.env(), "server:\n  shutdown_delay: 3s\n")
	public, adminBase := "http://"+l.Public, "http://"+l.Admin
	for _, u := range []string{public + "/readyz", adminBase + "/readyz"} {
		if code, body := request(t, http.MethodGet, u); code != http.StatusOK {
			t.Fatalf("%s before shutdown: %d %s", u, code, body)
		}
	}

	stopped := make(chan int, 1)
	go func() { stopped <- stop() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := request(t, http.MethodGet, adminBase+"/readyz")
		if code == http.StatusServiceUnavailable {
			if !strings.Contains(body, `"draining":true`) {
				t.Errorf("admin /readyz while draining: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("admin /readyz never turned not-ready after the stop signal")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Not ready, yet still serving.
	if code, body := request(t, http.MethodGet, public+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("public /readyz while draining: %d %s; want 503", code, body)
	}
	if code, body := request(t, http.MethodGet, public+"/web/home/7"); code != http.StatusOK {
		t.Errorf("a request during the shutdown delay: %d %s; want 200", code, body)
	}
	if code := <-stopped; code != 0 {
		t.Errorf("exit code %d; want 0", code)
	}
}

// The public listener never serves the admin endpoints.
func TestAdminEndpointsAreNotPublic(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	l, _, _ := start(t, f.env(), "")
	for _, p := range []string{"/metrics", "/_bff/", "/_bff/status", "/debug/pprof/", "/_bff/upstreams"} {
		if code, _ := request(t, http.MethodGet, "http://"+l.Public+p); code != http.StatusNotFound {
			t.Errorf("public %s: %d; want 404", p, code)
		}
		if code, _ := request(t, http.MethodGet, "http://"+l.Admin+p); code != http.StatusOK {
			t.Errorf("admin %s: %d; want 200", p, code)
		}
	}
}

// Slowloris: a client that sends its headers a byte at a time, or never
// finishes them, is cut off by the header timeout while others are served.
func TestSlowHeadersAreCutOff(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	l, _, _ := start(t, f.env(), "server:\n  read_header_timeout: 300ms\n")
	conns := make([]net.Conn, 20)
	for i := range conns {
		c, err := net.Dial("tcp", l.Public)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /web/home/7 HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	// Meanwhile, a normal client is served.
	if code, body := request(t, http.MethodGet, "http://"+l.Public+"/web/home/7"); code != http.StatusOK {
		t.Errorf("a normal request beside slow clients: %d %s", code, body)
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound, far above the 300ms asked for
		b, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("slow client %d still connected after 10s; the header timeout did not cut it", i)
		}
		if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408") {
			t.Errorf("slow client %d got %q; want the connection closed (or a 408)", i, b)
		}
	}
}

// With only demo upstreams, Bff-Fault makes a named upstream misbehave for
// that request, through the real engine, and nothing of it is cached; with
// real upstreams configured, the header is ignored.
func TestFaultInjectionInDemoOnly(t *testing.T) {
	demo, _, _ := start(t, map[string]string{"BFF_ADDR": "127.0.0.1:0", "BFF_ADMIN_ADDR": "127.0.0.1:0"}, "")
	base := "http://" + demo.Public
	get := func(base, path string, header ...string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	code, h, _ := get(base, "/web/home/7", "Bff-Fault", "recs=timeout")
	if code != http.StatusOK || h.Get("Bff-Partial") != "recommendations;reason=timeout" {
		t.Errorf("recs=timeout: %d partial %q", code, h.Get("Bff-Partial"))
	}
	if code, _, body := get(base, "/web/home/7", "Bff-Fault", "users=503"); code != http.StatusBadGateway || !strings.Contains(body, "upstream-error") {
		t.Errorf("users=503: %d %s; want 502 problem", code, body)
	}
	if code, _, body := get(base, "/web/home/7", "Bff-Fault", "users=slow"); code != http.StatusBadRequest || !strings.Contains(body, "Bff-Fault") {
		t.Errorf("a bad fault: %d %s; want 400 naming the header", code, body)
	}
	// The degraded answers were not cached: the next plain request is whole and fresh.
	if code, h, _ := get(base, "/web/home/7"); code != http.StatusOK || h.Get("Bff-Partial") != "" || h.Get("X-Cache") != "MISS" {
		t.Errorf("plain request after faults: %d partial %q X-Cache %s", code, h.Get("Bff-Partial"), h.Get("X-Cache"))
	}

	f := newFakeUpstreams(t, nil, nil)
	real, _, _ := start(t, f.env(), "")
	if code, h, _ := get("http://"+real.Public, "/web/home/7", "Bff-Fault", "recs=timeout"); code != http.StatusOK || h.Get("Bff-Partial") != "" {
		t.Errorf("real upstreams: %d partial %q; the header must be ignored", code, h.Get("Bff-Partial"))
	}
}

// The config's CORS policy reaches the web client only; a bad policy or an
// unknown client stops the start with a message saying what to fix.
func TestCORSFromConfig(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	l, _, _ := start(t, f.env(), "clients:\n  web:\n    cors:\n      allowed_origins: [https://app.example.com]\n      allow_credentials: true\n")
	for path, want := range map[string]string{"/web/home/7": "https://app.example.com", "/mobile/home/7": ""} {
		req, _ := http.NewRequest(http.MethodOptions, "http://"+l.Public+path, nil)
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("preflight %s: Allow-Origin %q, want %q", path, got, want)
		}
	}
	for conf, want := range map[string]string{
		"clients:\n  web:\n    cors: {allowed_origins: ['*'], allow_credentials: true}\n": `the origin "*" cannot be combined with allow_credentials`,
		"clients:\n  tv: {}\n": "clients.tv: no such client (clients: web, mobile)",
	} {
		path := filepath.Join(t.TempDir(), "bff.yaml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		var errs strings.Builder
		if code := run(context.Background(), []string{"check", "-config", path}, func(string) string { return "" }, io.Discard, &errs, nil); code == 0 || !strings.Contains(errs.String(), want) {
			t.Errorf("%s: exit %d, %q; want it to say %q", conf, code, errs.String(), want)
		}
	}
}

// Rate limits come from the config per client and view; a bad one stops
// the start with a message.
func TestRateLimitFromConfig(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	l, _, _ := start(t, f.env(), "clients:\n  web:\n    rate_limit: {requests: 2, window: 1h}\n")
	codes := []int{}
	for range 3 {
		code, _ := request(t, http.MethodGet, "http://"+l.Public+"/web/home/7")
		codes = append(codes, code)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests {
		t.Errorf("codes %v; want 200 200 429", codes)
	}
	for conf, want := range map[string]string{
		"clients:\n  web:\n    rate_limit: {requests: 0, window: 1s}\n":                                               "want requests > 0 per window of at least 1s",
		"clients:\n  web:\n    rate_limit: {requests: 5, window: 500ms}\n":                                            "want requests > 0 per window of at least 1s",
		"clients:\n  web:\n    rate_limit: {requests: 5, window: 1s, views: {web.nope: {requests: 1, window: 1s}}}\n": `rate limit for view "web.nope": the client has no such view`,
		"server:\n  trusted_proxies: [10.0.0.1]\nclients:\n  web:\n    rate_limit: {requests: 5, window: 1s}\n":       `server.trusted_proxies: "10.0.0.1": want a CIDR prefix`,
	} {
		path := filepath.Join(t.TempDir(), "bff.yaml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		var errs strings.Builder
		if code := run(context.Background(), []string{"check", "-config", path}, func(string) string { return "" }, io.Discard, &errs, nil); code == 0 || !strings.Contains(errs.String(), want) {
			t.Errorf("%s: exit %d, %q; want %q", conf, code, errs.String(), want)
		}
	}
}

// The README's auth walkthrough: a config with auth on for web, a token
// minted by bff token, a view that needs it.
func TestAuthFromConfigAndMintedToken(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	conf := "clients:\n  web:\n    auth:\n      issuer: https://id.example\n      audience: bff-web\n      default_mode: required\n" +
		"      keys:\n        - {kid: demo, alg: HS256, secret_env: BFF_JWT_SECRET}\n"
	env := f.env()
	env["BFF_JWT_SECRET"] = "a demo secret of at least 32 bytes!"
	l, _, _ := start(t, env, conf)
	path := filepath.Join(t.TempDir(), "bff.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var tok, errs strings.Builder
	if code := run(context.Background(), []string{"token", "-config", path, "-sub", "7"}, func(k string) string { return env[k] }, &tok, &errs, nil); code != 0 {
		t.Fatalf("bff token: %d %s", code, errs.String())
	}
	base := "http://" + l.Public
	if code, _ := request(t, http.MethodGet, base+"/web/home/7"); code != http.StatusUnauthorized {
		t.Errorf("no token: %d; want 401", code)
	}
	if code, body := request(t, http.MethodGet, base+"/web/home/7", "Authorization", "Bearer "+strings.TrimSpace(tok.String())); code != http.StatusOK {
		t.Errorf("minted token: %d %s", code, body)
	}
	if code, _ := request(t, http.MethodGet, base+"/mobile/home/7"); code != http.StatusOK {
		t.Errorf("mobile, without auth: %d", code)
	}
}

// A request body may take read_timeout to arrive, longer than the header's
// read_header_timeout; one that never ends is cut off.
func TestSlowBodyGetsReadTimeout(t *testing.T) {
	got := make(chan int, 2)
	srv := newServer(config.Server{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 3 * time.Second},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				got <- -1
				http.Error(w, err.Error(), http.StatusRequestTimeout)
				return
			}
			got <- len(b)
			w.WriteHeader(http.StatusNoContent)
		}), slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	send := func(bodyChunks int) net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
		for range bodyChunks {
			time.Sleep(150 * time.Millisecond) // 600 ms in all: past the header's 200 ms
			_, _ = io.WriteString(c, "ab")
		}
		return c
	}

	c := send(5)
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("slow but finite body: %v", err)
	}
	if n := <-got; resp.StatusCode != http.StatusNoContent || n != 10 {
		t.Fatalf("slow but finite body: status %d, %d bytes read; want 204 and 10", resp.StatusCode, n)
	}

	never := send(1)
	defer never.Close()
	_ = never.SetReadDeadline(time.Now().Add(15 * time.Second)) // a bound, far above the 3 s asked for
	b, err := io.ReadAll(never)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a body that never ends still held its connection after 15s")
	}
	if n := <-got; n != -1 {
		t.Fatalf("unfinished body: handler read %d bytes without an error (%q)", n, b)
	}
}
