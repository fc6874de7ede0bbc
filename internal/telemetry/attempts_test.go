package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bffproxy/bff/internal/telemetry"
	"github.com/bffproxy/bff/upstream"
)

// A healthy upstream whose call the BFF abandons (a sibling required call
// failed, or the client hung up) did nothing wrong: the attempt counts as
// canceled, not as the upstream's error, or an upstream error-rate alert
// would fire for every healthy upstream beside a failing one.
func TestCanceledAttemptIsNotAnUpstreamError(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // healthy, just not finished when the caller leaves
	}))
	defer srv.Close()

	m := telemetry.New()
	rec := m.Upstream("recs")
	c, err := upstream.New(upstream.Config{Name: "recs", BaseURL: srv.URL, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	rec.Attach(c, srv.URL)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, &upstream.Request{Path: "/recommendations"})
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the canceled call succeeded")
	}

	fams := scrape(t, m.Handler())
	if got := value(t, fams, "bff_upstream_calls_total", "upstream", "recs", "outcome", "canceled"); got != 1 {
		t.Fatalf("calls{outcome=canceled} = %v; want 1", got)
	}
	if got := value(t, fams, "bff_upstream_attempts_total", "upstream", "recs", "result", "error"); got != 0 {
		t.Errorf("bff_upstream_attempts_total{upstream=recs,result=error} = %v after one call the BFF itself canceled; want 0 (the upstream did not fail)", got)
	}
	if got := value(t, fams, "bff_upstream_attempts_total", "upstream", "recs", "result", "canceled"); got != 1 {
		t.Errorf("bff_upstream_attempts_total{upstream=recs,result=canceled} = %v; want 1", got)
	}
}
