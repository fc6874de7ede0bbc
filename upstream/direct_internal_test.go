package upstream

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestPeerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server := <-accepted
	if peerClosed(c) {
		t.Fatal("an open, quiet connection was reported closed")
	}
	// A pooled connection keeps its last call's deadline, long past.
	c.SetDeadline(time.Now().Add(-time.Second))
	server.Close()
	for start := time.Now(); !peerClosed(c); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the upstream's close was never seen")
		}
	}
}

// An upstream that closes idle connections gets them closed here too,
// without another call: sockets are not left half-closed in the pool.
func TestIdleConnectionsClosedByUpstreamAreReclaimed(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{}`))
	}))
	srv.Config.IdleTimeout = 50 * time.Millisecond
	srv.Start()
	defer srv.Close()
	c, err := New(Config{Name: "t", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	d, ok := c.transport.(*directTransport)
	if !ok {
		t.Fatalf("transport is %T, want the direct one for http://", c.transport)
	}
	for range 3 {
		resp, err := c.Do(t.Context(), &Request{Path: "/x"})
		if err != nil {
			t.Fatal(err)
		}
		resp.Release()
	}
	if n := d.idleCount(); n != 1 {
		t.Fatalf("%d idle connections after 3 sequential calls, want 1", n)
	}
	for start := time.Now(); d.idleCount() > 0; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the connection the upstream closed is still pooled")
		}
	}
}

// pastDeadline is a context whose deadline has passed but whose Err is not
// yet set: the moment between a connection's deadline firing and the
// context's timer running.
type pastDeadline struct{ context.Context }

func (pastDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// A call whose deadline has passed fails on the first connection; it does
// not take the pool's other connections down with it as "stale".
func TestDeadlineDoesNotDrainThePool(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(5)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived.Done()
		<-release
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c, err := New(Config{Name: "t", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	d := c.transport.(*directTransport)

	var calls sync.WaitGroup
	for range 5 { // five calls at once leave five pooled connections
		calls.Go(func() {
			if resp, err := c.Do(t.Context(), &Request{Path: "/x"}); err == nil {
				resp.Release()
			}
		})
	}
	arrived.Wait()
	close(release)
	calls.Wait()
	if n := d.idleCount(); n != 5 {
		t.Fatalf("%d pooled connections, want 5", n)
	}

	req, _ := http.NewRequestWithContext(pastDeadline{context.Background()}, http.MethodGet, srv.URL+"/x", nil)
	if _, err := d.RoundTrip(req); err == nil {
		t.Fatal("a call past its deadline succeeded")
	}
	if n := d.idleCount(); n != 4 {
		t.Fatalf("%d pooled connections after one call past its deadline, want 4", n)
	}
}

// At MaxConns, a caller that found the pool empty waits for a connection to
// come back; one put back between its look and its wait is not missed
// (each trial races the two).
func TestMaxConnsWaiterSeesEveryReturn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{}`)) }))
	defer srv.Close()
	c, err := New(Config{Name: "t", BaseURL: srv.URL, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	d := c.transport.(*directTransport)
	const trials = 5000
	for i := range trials {
		held, _, err := d.get(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // a bound on a hang, not a timing check
			defer cancel()
			c, _, err := d.get(ctx)
			if err == nil {
				d.put(c)
			}
			got <- err
		}()
		for range i % 7 {
			runtime.Gosched()
		}
		d.put(held)
		if err := <-got; err != nil {
			t.Fatalf("trial %d: the waiter missed the connection put back: %v (%d idle)", i, err, d.idleCount())
		}
	}
}
