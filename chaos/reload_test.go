package chaos

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// A caller over its rate limit stays over it when the views are reloaded
// (SIGHUP here; any change in views.dir too): a deploy of a view file or a
// config-management run must not lift every caller's limit.
func TestReloadKeepsRateLimitCounts(t *testing.T) {
	const limit = 5
	ups := newUpstreams(t)
	cfg := newConfig(t, ups, 0, 0)
	cfg.Clients = map[string]*clientConfig{"web": {RateLimit: &rateLimitConfig{Requests: limit, Window: "1m"}}}
	p := startBFF(t, cfg)
	for i := range limit {
		if r := p.get(context.Background(), fmt.Sprintf("/web/user/%d", i)); r.status != http.StatusOK {
			t.Fatalf("request %d of %d: %v", i+1, limit, r)
		}
	}
	if r := p.get(context.Background(), "/web/user/99"); r.status != http.StatusTooManyRequests {
		t.Fatalf("request %d: %v, want 429", limit+1, r)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the views reloaded", func() bool { return p.logs.count("views reloaded") > 0 })
	allowed := 0
	for i := range limit {
		if r := p.get(context.Background(), fmt.Sprintf("/web/user/%d", 100+i)); r.status == http.StatusOK {
			allowed++
		}
	}
	if allowed > 0 {
		t.Errorf("after a reload, %d of %d more requests from a caller already over its limit of %d per minute were served; want 429 until the window passes",
			allowed, limit, limit)
	}
}
