package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runCode runs the binary's entry point to its end (check, or a serve that
// fails to start) and returns its exit code and stderr.
func runCode(t *testing.T, env map[string]string, conf string, args ...string) (int, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bff.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(args, "-config", path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan listeners, 1)
	done := make(chan int, 1)
	errs := &lockedBuffer{}
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, io.Discard, errs, listening) }()
	select {
	case code := <-done:
		return code, errs.String()
	case <-listening:
		cancel()
		<-done
		return 0, errs.String()
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("bff %v did not finish", args)
	}
	return -1, ""
}

// `bff check` is "validate config and views, exit non-zero on a problem":
// what stops serve at start stops check too. A tracing endpoint without a
// scheme, or a Redis URL whose database is not a number, passed check once
// and then stopped serve.
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	for name, conf := range map[string]string{
		"tracing endpoint without a scheme": "tracing:\n  endpoint: otel-collector:4318\n",
		"redis url with a bad database":     "cache:\n  redis:\n    url: redis://127.0.0.1:6379/cache\n",
	} {
		t.Run(name, func(t *testing.T) {
			if code, out := runCode(t, f.env(), conf); code == 0 {
				t.Errorf("serve started with:\n%s%s", conf, out)
			}
			if code, out := runCode(t, f.env(), conf, "check"); code == 0 {
				t.Errorf("bff check exits 0 for a config that serve refuses at start:\n%s%s", conf, out)
			}
		})
	}
}

// log.level: warn keeps warnings, and access lines are "at info (warn for
// 5xx)": at warn the lines of failed requests are written, those of the
// rest are not. (Any level above info turned the access log off once.)
func TestWarnLevelKeepsAccessLinesOf5xx(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(users.Close)
	env := f.env()
	env["BFF_UPSTREAM_USERS_URL"] = users.URL
	env["BFF_LOG_FORMAT"] = "json"
	env["BFF_LOG_LEVEL"] = "warn"
	l, logs, stop := start(t, env, "upstreams:\n  users:\n    retry: {max: 0}\n")
	if code, body := request(t, http.MethodGet, "http://"+l.Public+"/web/home/7", "X-Request-Id", "five-xx-1"); code != http.StatusBadGateway {
		t.Fatalf("users down: %d %s; want 502", code, body)
	}
	if code, _ := request(t, http.MethodGet, "http://"+l.Public+"/web/nowhere", "X-Request-Id", "four-oh-four-1"); code != http.StatusNotFound {
		t.Fatalf("/web/nowhere: %d", code)
	}
	stop()
	found := false
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "request" {
			continue
		}
		switch rec["request_id"] {
		case "five-xx-1":
			found = true
			if rec["level"] != "WARN" {
				t.Errorf("access line at %v; want WARN", rec["level"])
			}
		case "four-oh-four-1":
			t.Errorf("an INFO access line (a 404) was written at level warn: %s", line)
		}
	}
	if !found {
		t.Errorf("no access line for the 502 with log level warn:\n%s", logs.String())
	}
}

// SIGHUP means "reload the views" (README). Sent while the binary is still
// starting (here: fetching a client's JWKS, which can take up to 10s; a
// config-management tool or a sidecar that signals on every change of the
// views directory does not know), it does not kill the process: main
// takes SIGHUP from its first moment (it was handled only once the
// listener was up, and before that its default action ended the process).
func TestSIGHUPDuringStartDoesNotKill(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	asked := make(chan struct{}, 1)
	release := make(chan struct{})
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"keys":[]}`)
	}))
	t.Cleanup(jwks.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	path := filepath.Join(t.TempDir(), "bff.yaml")
	conf := "clients:\n  web:\n    auth:\n      issuer: https://id.example\n      audience: bff-web\n      jwks_url: " + jwks.URL + "/jwks.json\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, stderr := startProcess(t, f.env(), "-config", path)
	select {
	case <-asked: // the process is starting: inside the first JWKS fetch
	case <-time.After(30 * time.Second):
		t.Fatal("the process never asked for its JWKS")
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	close(release)
	lines := bufio.NewScanner(stderr)
	listening := false
	var log strings.Builder
	for lines.Scan() {
		log.WriteString(lines.Text() + "\n")
		if strings.Contains(lines.Text(), `msg="bff listening"`) {
			listening = true
			break
		}
	}
	if !listening {
		err := cmd.Wait()
		t.Fatalf("a SIGHUP during start ended the process (%v) before it listened; log:\n%s", err, log.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}
