package chaos

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// Requests still running when shutdown_timeout runs out (two reads and a
// mutation, held by a slow upstream) are answered 503 shutting-down with
// Retry-After, not dropped: a client, with a POST above all, can tell a
// shutdown from a crash.
func TestShutdownCutOffAnswers503(t *testing.T) {
	ups := newUpstreams(t)
	cfg := newConfig(t, ups, 0, 20*time.Second)
	cfg.Upstreams["users"].Timeout = "20s"
	cfg.Server = &serverConfig{ShutdownTimeout: "1s"}
	p := startBFF(t, cfg)
	ups.users.set(func(w http.ResponseWriter, r *http.Request) { wait(r, 5*time.Second) })
	const n = 3
	results := make(chan response, n)
	go func() { results <- p.get(context.Background(), fmt.Sprintf("/web/user/%d", nextID())) }()
	go func() { results <- p.get(context.Background(), fmt.Sprintf("/web/user/%d", nextID())) }()
	go func() {
		results <- p.post(context.Background(), fmt.Sprintf("/web/note/%d", nextID()), `{"text":"hi"}`)
	}()
	eventually(t, 10*time.Second, "all requests held by the upstream", func() bool { return ups.users.active.Load() == n })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range n {
		r := <-results
		if r.err != nil || r.status != http.StatusServiceUnavailable || r.problemType() != "urn:bff:problem:shutting-down" || r.header.Get("Retry-After") == "" {
			t.Errorf("a request cut off when shutdown_timeout ran out: %v; want 503 shutting-down with Retry-After", r)
		}
	}
	if err := p.waitExit(15 * time.Second); err != nil {
		t.Errorf("bff after SIGTERM: %v, want exit 0", err)
	}
}
