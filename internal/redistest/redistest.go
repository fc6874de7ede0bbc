// Package redistest runs real redis-server processes on loopback for tests.
// Without the binary a test is skipped, unless BFF_REQUIRE_REDIS is set
// (as .ci/run does), when it fails instead.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process that a test may kill and restart.
type Server struct {
	Addr string
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
}

// URL is the server's address as the BFF's configuration takes it.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Start runs a redis-server of the test's own on a free loopback port and
// stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("BFF_REQUIRE_REDIS") != "" {
			t.Fatalf("redis-server is not installed (apt-get install redis-server): %v", err)
		}
		t.Skip("redis-server is not installed; .ci/run installs it")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s := &Server{Addr: addr, t: t}
	s.start()
	t.Cleanup(s.Kill)
	return s
}

// Shared returns the URL of the server .ci/run started (BFF_TEST_REDIS_URL)
// or else of one started for this test, and a key prefix no other test
// uses, so tests can share one server.
func Shared(t testing.TB) (url, prefix string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix = "test-" + hex.EncodeToString(b[:])
	if u := os.Getenv("BFF_TEST_REDIS_URL"); u != "" {
		// Said at once: otherwise every shared-tier test waits out its
		// own bound and fails with a symptom (no purge log read).
		if p, err := neturl.Parse(u); err != nil {
			t.Fatalf("BFF_TEST_REDIS_URL %q: %v", u, err)
		} else if c, err := net.DialTimeout("tcp", p.Host, 2*time.Second); err != nil {
			t.Fatalf("BFF_TEST_REDIS_URL %s is not reachable: %v", u, err)
		} else {
			c.Close()
		}
		return u, prefix
	}
	return Start(t).URL(), prefix
}

func (s *Server) start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command("redis-server",
		"--bind", "127.0.0.1", "--port", port,
		"--save", "", "--appendonly", "no", // nothing on disk: a restart comes back empty
		"--dir", s.t.TempDir(), "--loglevel", "warning")
	dieWithTest(s.cmd)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DisableIdentity: true})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.Kill()
			s.t.Fatalf("redis-server on %s did not answer: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server at once, as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Hung listens on loopback, accepts connections and never answers: a Redis
// that hangs, or a network that drops packets. It returns the redis:// URL.
func Hung(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "redis://" + l.Addr().String()
}
