package upstream

import (
	"net"
	"net/http"
	"net/http/httptest"
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
