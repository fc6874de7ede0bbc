package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// During an upstream outage a failed request does not write a warning of
// its own beside its access line; with the access log off (to keep only
// problems), a sustained outage logs a bounded number of lines, not one per
// request: at thousands of requests a second that is the flood an outage
// must not cause.
func TestOutageDoesNotLogAWarningPerRequest(t *testing.T) {
	down := downUpstream(t)
	cfg := "upstreams:\n  users:\n    url: " + down + "\n    breaker: {consecutive_failures: 1, open_timeout: 1h}\n"
	addrs, logs, stop := serveInProcess(t, cfg, map[string]string{"BFF_ACCESS_LOG": "false"})
	addr := addrs.Public
	const n = 50
	for i := 1; i <= n; i++ {
		resp, err := http.Get(fmt.Sprintf("http://%s/web/home/%d", addr, i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 500 {
			t.Fatalf("request %d: %d; want a 5xx with users down", i, resp.StatusCode)
		}
	}
	stop()
	warns := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, `msg="view failed"`) {
			warns++
		}
	}
	if warns >= n {
		t.Errorf("%d failed requests with the access log off wrote %d WARN \"view failed\" lines; want far fewer than one per request", n, warns)
	}
}
