package upstream_test

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/bffproxy/bff/upstream"
)

// rawServer is an upstream that speaks HTTP/1.1 by hand, to misbehave in
// ways net/http's server never would. serve gets each connection's reader
// and writer and the connection's 1-based number.
type rawServer struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  []net.Conn
}

func newRawServer(t *testing.T, serve func(br *bufio.Reader, c net.Conn, conn int64)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
			n := s.conns.Add(1)
			s.wg.Go(func() {
				defer c.Close()
				serve(bufio.NewReader(c), c, n)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

// readRequest reads one request's head; false when the client went away.
func readRequest(br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	return req.Body.Close() == nil
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"

// An upstream that closes each connection after one answer, without saying
// so, leaves a dead connection in the pool. The next GET finds it dead
// before any of its answer arrived and goes again on a fresh connection:
// one attempt as far as retries and the breaker know, and no error.
func TestStaleKeepAliveConnectionIsReplaced(t *testing.T) {
	srv := newRawServer(t, func(br *bufio.Reader, c net.Conn, _ int64) {
		if readRequest(br) {
			c.Write([]byte(okAnswer))
		}
	})
	cfg := testConfig(srv.url())
	cfg.Retry.Max = 0 // a failure would show: no retries to hide it
	c := newClient(t, cfg)

	for i := range 5 {
		resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if resp.Attempts != 1 || string(resp.Body) != `{"ok":true}` {
			t.Fatalf("call %d: %d attempts, body %q", i+1, resp.Attempts, resp.Body)
		}
		resp.Release()
	}
	if got := srv.conns.Load(); got != 5 {
		t.Fatalf("%d connections for 5 calls to an upstream that closes each, want 5", got)
	}
	if n := c.BreakerCounts(); n.TotalFailures != 0 {
		t.Fatalf("breaker counted %d failures", n.TotalFailures)
	}
}

// An upstream whose answer never ends its header fails the call once the
// header passes 64 KiB: memory stays bounded.
func TestEndlessResponseHeader(t *testing.T) {
	srv := newRawServer(t, func(br *bufio.Reader, c net.Conn, _ int64) {
		if !readRequest(br) {
			return
		}
		c.Write([]byte("HTTP/1.1 200 OK\r\n"))
		line := []byte("X-Filler: " + strings.Repeat("a", 1000) + "\r\n")
		for range 1000 { // 1 MB of header, unless the client hangs up first
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	})
	cfg := testConfig(srv.url())
	cfg.Retry.Max = 0
	c := newClient(t, cfg)

	_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
	ue := upstreamError(t, err)
	if ue.Kind != upstream.KindTransport || !strings.Contains(err.Error(), "header too large") {
		t.Fatalf("err = kind %v (%v), want a transport error for the header's size", ue.Kind, err)
	}
}

// 1xx answers (103 Early Hints, 100 Continue) come before the real answer.
func TestInformationalAnswersAreSkipped(t *testing.T) {
	srv := newRawServer(t, func(br *bufio.Reader, c net.Conn, _ int64) {
		for readRequest(br) {
			c.Write([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n" + okAnswer))
		}
	})
	c := newClient(t, testConfig(srv.url()))

	for range 2 {
		resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusOK || string(resp.Body) != `{"ok":true}` {
			t.Fatalf("status %d, body %q", resp.Status, resp.Body)
		}
	}
	if got := srv.conns.Load(); got != 1 {
		t.Fatalf("%d connections, want the one kept alive", got)
	}
}

// Sequential calls share one keep-alive connection; an answer that asks
// for the connection to be closed is not followed by another on it.
func TestConnectionReuse(t *testing.T) {
	for _, tt := range []struct {
		name      string
		answer    string
		wantConns int64
	}{
		{"keep-alive", okAnswer, 1},
		{"Connection: close", strings.Replace(okAnswer, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1), 3},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"ok\"\r\n6\r\n:true}\r\n0\r\n\r\n", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t, func(br *bufio.Reader, c net.Conn, _ int64) {
				for readRequest(br) {
					if _, err := c.Write([]byte(tt.answer)); err != nil {
						return
					}
				}
			})
			c := newClient(t, testConfig(srv.url()))
			for range 3 {
				resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
				if err != nil {
					t.Fatal(err)
				}
				if string(resp.Body) != `{"ok":true}` {
					t.Fatalf("body %q", resp.Body)
				}
			}
			if got := srv.conns.Load(); got != tt.wantConns {
				t.Fatalf("%d connections for 3 calls, want %d", got, tt.wantConns)
			}
		})
	}
}

// A body cut short by the upstream fails the attempt, and its connection
// is not pooled: the retry gets a fresh one.
func TestShortBodyIsNotPooled(t *testing.T) {
	srv := newRawServer(t, func(br *bufio.Reader, c net.Conn, conn int64) {
		for readRequest(br) {
			if conn == 1 {
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ok\""))
				return
			}
			c.Write([]byte(okAnswer))
		}
	})
	c := newClient(t, testConfig(srv.url()))
	resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Attempts != 2 || srv.conns.Load() != 2 {
		t.Fatalf("%d attempts on %d connections, want 2 on 2", resp.Attempts, srv.conns.Load())
	}
}

// An upstream that writes something unasked on an idle connection (some
// send a 408 before closing it) must not have that read as the next call's
// answer.
func TestUnsolicitedBytesOnIdleConnection(t *testing.T) {
	answered := make(chan struct{}, 10)
	srv := newRawServer(t, func(br *bufio.Reader, c net.Conn, conn int64) {
		for readRequest(br) {
			c.Write([]byte(okAnswer))
			answered <- struct{}{}
			if conn == 1 {
				// Later, on its own: what an idle-timeout 408 looks like.
				time.Sleep(50 * time.Millisecond)
				c.Write([]byte("HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"))
			}
		}
	})
	cfg := testConfig(srv.url())
	cfg.Retry.Max = 0
	c := newClient(t, cfg)

	if _, err := c.Do(t.Context(), &upstream.Request{Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	<-answered
	time.Sleep(200 * time.Millisecond) // let the 408 arrive: this is the state under test, not a timing check
	resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
	if err != nil {
		t.Fatalf("the call after an unsolicited 408: %v", err)
	}
	if resp.Status != http.StatusOK || srv.conns.Load() != 2 {
		t.Fatalf("status %d on connection %d; want 200 on a second connection", resp.Status, srv.conns.Load())
	}
}

// With MaxConns reached, a caller waits for a connection another call
// gives back, rather than only for one to close.
func TestMaxConnsCallersShareFreedConnections(t *testing.T) {
	release := make(chan struct{})
	var inFlight atomic.Int64
	var conns atomic.Int64
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		inFlight.Add(1)
		<-release
		inFlight.Add(-1)
		w.Write([]byte(`{}`))
	}, &conns)
	cfg := testConfig(srv.URL)
	cfg.MaxConns = 1
	cfg.Retry.Max = 0
	c := newClient(t, cfg)

	const n = 3
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
			errs <- err
		}()
	}
	for i := range n {
		waitFor(t, "a call at the upstream", func() bool { return inFlight.Load() == 1 })
		release <- struct{}{}
		if err := <-errs; err != nil {
			t.Fatalf("call %d of %d with MaxConns 1: %v", i+1, n, err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Fatalf("%d connections with MaxConns 1", got)
	}
}

// The gzip an attempt asks for is undone on every attempt: retries send the
// same request again.
func TestGzipAcrossRetries(t *testing.T) {
	body := gzipped(t, []byte(`{"ok":true}`))
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, call int64) {
		if call == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Accept-Encoding") != "gzip" {
			http.Error(w, "no gzip asked for", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(body)
	})
	c := newClient(t, testConfig(srv.URL))
	resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Attempts != 2 || string(resp.Body) != `{"ok":true}` {
		t.Fatalf("%d attempts, body %q; want 2 and the decompressed JSON", resp.Attempts, resp.Body)
	}
}

// An empty answer marked gzip is an empty answer: a 204 stays a 204, a 429
// stays a 429 with its Retry-After.
func TestEmptyGzipAnswer(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request, call int64) {
		w.Header().Set("Content-Encoding", "gzip")
		if call == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	c := newClient(t, testConfig(srv.URL))
	resp, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusNoContent || resp.Attempts != 2 {
		t.Fatalf("status %d after %d attempts; want 204 after the 429's retry", resp.Status, resp.Attempts)
	}
}

// A body refused for its size fails the call at once: closing it does not
// wait for bytes the upstream has not sent.
func TestRefusedBodyDoesNotWaitForTheRest(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Content-Length", "10000000")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select { // the body comes only when the test is over
		case <-release:
		case <-r.Context().Done():
		}
	})
	cfg := testConfig(srv.URL)
	cfg.MaxBodyBytes = 1000
	cfg.Timeout = time.Minute // only the refusal can end the call early
	c := newClient(t, cfg)
	var done atomic.Bool
	errc := make(chan error, 1)
	go func() {
		_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
		done.Store(true)
		errc <- err
	}()
	waitFor(t, "the call to fail on the Content-Length alone", done.Load)
	if err := <-errc; !errors.Is(err, upstream.ErrBodyTooLarge) {
		t.Fatalf("err = %v, want ErrBodyTooLarge before the body is sent", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An attempt that panics (a bug of ours or of a library below the breaker)
// still counts for the breaker: a half-open breaker whose probe never
// reported back would refuse every call until a restart.
func TestPanickingProbeDoesNotWedgeTheBreaker(t *testing.T) {
	srv := newServer(t, statuses(500, 200))
	var panicNext atomic.Bool
	cfg := testConfig(srv.URL)
	cfg.Retry.Max = 0
	cfg.Breaker.ConsecutiveFailures = 1
	cfg.Breaker.OpenTimeout = 10 * time.Millisecond
	cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if panicNext.CompareAndSwap(true, false) {
				panic("a bug below the breaker")
			}
			return next.RoundTrip(r)
		})
	}
	c := newClient(t, cfg)
	call := func() error {
		_, err := c.Do(t.Context(), &upstream.Request{Path: "/x"})
		return err
	}

	if err := call(); err == nil {
		t.Fatal("the 500 did not fail the call")
	}
	waitFor(t, "the breaker to let a probe through", func() bool { return c.BreakerState() == gobreaker.StateHalfOpen })
	panicNext.Store(true)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the probe did not panic")
			}
		}()
		_ = call()
	}()
	waitFor(t, "a healthy call after the panicking probe", func() bool { return call() == nil })
}
