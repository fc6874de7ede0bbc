package bff_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// A client that hangs up while an optional call is still running cancels
// the execution (nobody else waits for it), and the optional call ends
// "canceled". That answer was made for nobody: it must not be cached and
// served to the next callers as "recommendations;reason=canceled". Any
// client (a phone changing screens, or someone doing it on purpose, once
// per partial_ttl) would otherwise take a healthy section away from
// everyone asking for the same path.
func TestHangUpDoesNotCacheACanceledSection(t *testing.T) {
	var recsCalls atomic.Int64
	recsArrived := make(chan struct{}, 1)
	recs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if recsCalls.Add(1) == 1 {
			recsArrived <- struct{}{}
			<-r.Context().Done() // the first one is slow: its client leaves first
			return
		}
		_, _ = io.WriteString(w, `{"items":[{"id":"r1"}]}`)
	})
	users := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"name":"Ada"}`)
	})
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.card", Route: "/card/{id}", Params: []aggregate.Param{{Name: "id", Pattern: `[0-9]+`}},
		Cache: aggregate.CachePolicy{TTL: time.Minute},
		Calls: []aggregate.Call{
			{Name: "user", Upstream: "users", Path: "/users/{id}"},
			// After user, so the required call has answered when the client leaves.
			{Name: "recs", Upstream: "recs", Path: "/recommendations", Optional: true, DependsOn: []string{"user"}},
		},
		Shape: []aggregate.Field{aggregate.Pick("user.name"), aggregate.List("recs", "recs.items", 0)},
	}}}}
	// partial_ttl is 1s by default; a longer one keeps the test free of timing.
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"users": users, "recs": recs}, partialTTL: time.Minute})

	ctx, hangUp := context.WithCancel(context.Background())
	first := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.front.ServeHTTP(first, httptest.NewRequest(http.MethodGet, "/web/card/1", nil).WithContext(ctx))
	}()
	<-recsArrived
	hangUp()
	<-done
	h.cache.Wait()

	w := h.get(t, "/web/card/1")
	if p := w.Header().Get(bff.PartialHeader); w.Code != http.StatusOK || p != "" {
		t.Errorf("the next caller got %d, X-Cache %s, %s %q, %s; want a complete answer (recs is healthy; the canceled run was made for a client that left)",
			w.Code, w.Header().Get("X-Cache"), bff.PartialHeader, p, w.Body)
	}
}
