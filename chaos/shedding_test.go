package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// collected gathers the responses of requests made at once, as they come.
type collected struct {
	mu  sync.Mutex
	got []response
	wg  sync.WaitGroup
}

// collect runs fn n times at once.
func collect(n int, fn func(i int) response) *collected {
	c := &collected{}
	for i := range n {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			r := fn(i)
			c.mu.Lock()
			c.got = append(c.got, r)
			c.mu.Unlock()
		}()
	}
	return c
}

func (c *collected) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *collected) wait() []response {
	c.wg.Wait()
	return c.got
}

// startBehindGate starts a BFF with maxInFlight executions at most, whose
// users upstream holds every request until gate is closed.
func startBehindGate(t *testing.T, maxInFlight int) (*bffProc, *upstreams, chan struct{}) {
	t.Helper()
	ups := newUpstreams(t)
	cfg := newConfig(t, ups, 0, 10*time.Second)
	cfg.Upstreams["users"].Timeout = "10s"
	cfg.Server = &serverConfig{MaxInFlight: maxInFlight}
	p := startBFF(t, cfg)
	gate := make(chan struct{})
	ups.users.set(gated(gate))
	return p, ups, gate
}

// A burst of mutations against a slow upstream is shed like reads: with
// max_in_flight 2, two POSTs reach the upstream and the others get 503
// overloaded with Retry-After, before any upstream call.
func TestMutationsCountAgainstMaxInFlight(t *testing.T) {
	const (
		maxInFlight = 2
		posts       = 8
	)
	p, ups, gate := startBehindGate(t, maxInFlight)
	c := collect(posts, func(i int) response {
		return p.post(context.Background(), fmt.Sprintf("/web/note/%d", nextID()), `{"text":"hi"}`)
	})
	// Every POST is either held by the upstream or answered already.
	eventually(t, 10*time.Second, "every POST held upstream or answered", func() bool {
		return int(ups.users.active.Load())+c.count() >= posts
	})
	held := ups.users.active.Load()
	close(gate)
	shed := 0
	for _, r := range c.wait() {
		if r.status == http.StatusServiceUnavailable && r.problemType() == "urn:bff:problem:overloaded" && r.header.Get("Retry-After") != "" {
			shed++
		}
	}
	if held > maxInFlight || shed < posts-maxInFlight {
		t.Errorf("max_in_flight %d, %d concurrent POSTs to a mutation view: %d reached the upstream at once, %d were shed with 503 overloaded; "+
			"want at most %d at the upstream and the rest 503 with Retry-After", maxInFlight, posts, held, shed, maxInFlight)
	}
}

// Clients slow to read their answer (a phone on a bad network; here a
// 16 MiB answer nobody reads) hold no in-flight slot: their upstream work
// is over, so with max_in_flight 2 and two of them stuck, another miss is
// still served.
func TestSlowReaderDoesNotHoldInFlightSlot(t *testing.T) {
	const maxInFlight = 2
	ups := newUpstreams(t)
	cfg := newConfig(t, ups, 0, 5*time.Second)
	cfg.Upstreams["users"].MaxBodyBytes = 64 << 20
	cfg.Server = &serverConfig{MaxInFlight: maxInFlight, WriteTimeout: "60s"}
	p := startBFF(t, cfg)
	big := strings.Repeat("x", 16<<20)
	ups.users.set(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/users/77") {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"77","name":"%s"}`, big)
			return
		}
		answer(w, r)
	})
	// A tiny receive buffer, so the answer cannot vanish into the kernel.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	for i := range maxInFlight {
		c, err := d.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() }) // before the BFF's stop (cleanups run last-in first-out)
		if _, err := fmt.Fprintf(c, "GET /web/user/77%d HTTP/1.1\r\nHost: bff\r\n\r\n", i); err != nil {
			t.Fatal(err)
		}
	}
	// Both handlers are done with the upstream and blocked writing the answer.
	eventually(t, 20*time.Second, fmt.Sprintf("%d handlers blocked writing their answer", maxInFlight), func() bool {
		return p.goroutinesIn("viewHandler).write") >= maxInFlight
	})
	r := p.get(context.Background(), "/web/user/5")
	if r.status != http.StatusOK {
		t.Errorf("another view's miss while %d clients are slow to read their answers: %v; want 200 (nothing is doing upstream work)", maxInFlight, r)
	}
}

// goroutinesIn counts the BFF's goroutines with frame in their stack.
func (p *bffProc) goroutinesIn(frame string) int {
	b, err := p.adminGet("/debug/pprof/goroutine?debug=1")
	if err != nil {
		p.t.Fatal(err)
	}
	n := 0
	for _, stack := range strings.Split(string(b), "\n\n") {
		if !strings.Contains(stack, frame) {
			continue
		}
		var c int
		if _, err := fmt.Sscanf(stack, "%d @", &c); err == nil {
			n += c
		}
	}
	return n
}

// A herd on one cold key is one execution, and takes one in-flight slot:
// with max_in_flight 4, all 20 callers get the answer of one upstream
// call (with the default of 1024, a bigger herd after a purge or expiry
// would otherwise be shed).
func TestCoalescedHerdIsNotShed(t *testing.T) {
	const (
		maxInFlight = 4
		herd        = 20
	)
	p, ups, gate := startBehindGate(t, maxInFlight)
	path := fmt.Sprintf("/web/user/%d", nextID())
	c := collect(herd, func(int) response { return p.get(context.Background(), path) })
	eventually(t, 10*time.Second, "every request waiting on the execution or answered", func() bool {
		return p.flightWaiters()+c.count() >= herd
	})
	close(gate)
	statuses := map[int]int{}
	for _, r := range c.wait() {
		statuses[r.status]++
	}
	if calls := ups.users.requests.Load(); statuses[http.StatusOK] != herd || calls != 1 {
		t.Errorf("%d concurrent requests for one cold key, max_in_flight %d: statuses %v, %d upstream call(s); want %d × 200 from 1 call",
			herd, maxInFlight, statuses, calls, herd)
	}
}
