package bff_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

// A client that hangs up cancels the upstream calls made for it, and that
// is not held against the upstream; a client waiting for the same answer
// still gets it.
func TestHangUpCancelsUpstreamWorkButNotOtherWaiters(t *testing.T) {
	arrived := make(chan struct{}, 4)
	canceled := make(chan struct{}, 4)
	release := make(chan struct{})
	users := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
			_, _ = io.WriteString(w, `{"version":1}`)
		case <-r.Context().Done():
			canceled <- struct{}{}
		}
	})
	h := newHarness(t, options{
		routeSets: profileView(aggregate.CachePolicy{TTL: time.Minute}),
		handlers:  map[string]http.Handler{"users": users},
	})
	srv := httptest.NewServer(h.front)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(ctx context.Context, path string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}

	// Alone: hanging up cancels the upstream call.
	ctx, hangUp := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := get(ctx, "/web/profile/1"); done <- err }()
	<-arrived
	hangUp()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream call went on after its only client hung up")
	}
	<-done
	if n := h.clients["users"].BreakerCounts(); n.TotalFailures != 0 || n.ConsecutiveFailures != 0 {
		t.Errorf("breaker counts %+v after a hang-up; want no failures", n)
	}

	// Together: the first client leaves, the second still gets the answer.
	ctx, hangUp = context.WithCancel(context.Background())
	go func() { _, err := get(ctx, "/web/profile/2"); done <- err }()
	<-arrived
	second := make(chan int, 1)
	go func() { code, _ := get(context.Background(), "/web/profile/2"); second <- code }()
	waitFor(t, "the second client to join", func() bool { return h.front.Coalesced() == 1 })
	hangUp()
	<-done
	close(release)
	if code := <-second; code != http.StatusOK {
		t.Errorf("the waiter that stayed got %d; want 200", code)
	}
	if n := h.calls("users"); n != 2 {
		t.Errorf("users called %d times; want one call per key", n)
	}
}

// When the server itself cuts requests off (a shutdown out of time), the
// cut-off request is answered 503, not left as an empty 200.
func TestAbortedRequestGets503(t *testing.T) {
	arrived := make(chan struct{}, 1)
	users := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	h := newHarness(t, options{
		routeSets: profileView(aggregate.CachePolicy{TTL: time.Minute}),
		handlers:  map[string]http.Handler{"users": users},
	})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/web/profile/1", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { h.front.ServeHTTP(w, req); close(done) }()
	<-arrived
	h.front.Abort()
	cancel()
	<-done
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), bff.ProblemShuttingDown) {
		t.Errorf("cut-off request: %d %s; want 503 shutting-down", w.Code, w.Body)
	}
}
