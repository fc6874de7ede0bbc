package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/upstream"
)

// realUpstream serves h over loopback and returns a real upstream client
// for it (no retries, so a failure is one attempt).
func realUpstream(t *testing.T, name string, h http.Handler) *upstream.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := upstream.New(upstream.Config{Name: name, BaseURL: srv.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// A fan-out call's timeout bounds the whole call: 12 elements at
// concurrency 1, each well within the call's 300ms, would take 12 x 60ms,
// so the optional section is cut off and marked, not waited for.
func TestFanOutTimeoutBoundsTheWholeCall(t *testing.T) {
	var started atomic.Int64
	catalog := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		select {
		case <-time.After(60 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		b, _ := json.Marshal(map[string]string{"sku": strings.TrimPrefix(r.URL.Path, "/p/")})
		_, _ = w.Write(b)
	})
	skus := make([]string, 12)
	for i := range skus {
		skus[i] = `{"sku":"s` + string(rune('a'+i)) + `"}`
	}
	order := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"items":[` + strings.Join(skus, ",") + `]}`))
	})
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"orders":  realUpstream(t, "orders", order),
		"catalog": realUpstream(t, "catalog", catalog),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v", Timeout: 10 * time.Second,
		Calls: []aggregate.Call{
			{Name: "order", Upstream: "orders", Path: "/o"},
			{Name: "products", Upstream: "catalog", Path: "/p/{each}", ForEach: "order.items.#.sku",
				Optional: true, Timeout: 300 * time.Millisecond, Concurrency: 1},
		},
		Shape: []aggregate.Field{aggregate.List("products", "products", 0, aggregate.Pick("sku"))},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Missing) == 0 {
		t.Errorf("the fan-out ran %d requests of 60ms one after another (%s in all) and was not cut at its 300ms timeout: missing %v",
			started.Load(), res.Calls[1].Duration.Round(10*time.Millisecond), res.Missing)
	}
}

// When a required call fails, the view fails with its error, every time:
// not with that of a required call waiting for it, which once raced it to
// errgroup's first error (the dependency closes its done channel before
// its error reaches the group) and named an upstream never called (502
// "users" instead of 404 "orders").
func TestRequiredFailureNamesTheRootCause(t *testing.T) {
	var userCalls atomic.Int64
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"orders": realUpstream(t, "orders", http.NotFoundHandler()),
		"users": realUpstream(t, "users", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			userCalls.Add(1)
			_, _ = w.Write([]byte(`{"id":1}`))
		})),
	})
	orderCall := aggregate.Call{Name: "order", Upstream: "orders", Path: "/orders/{id}"}
	userCall := aggregate.Call{Name: "user", Upstream: "users", Path: "/users/{order.user_id}"}
	for _, tc := range []struct {
		name  string
		calls []aggregate.Call
	}{
		{"order first", []aggregate.Call{orderCall, userCall}},
		{"order last", []aggregate.Call{userCall, orderCall}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := compile(t, e, aggregate.View{
				Name: "v", Route: "/o/{id}", Params: []aggregate.Param{{Name: "id"}},
				Calls: tc.calls,
				Shape: []aggregate.Field{aggregate.Rename("user", "user.id"), aggregate.Rename("order", "order.id")},
			})
			// More Ps than work, as on a big machine: an idle P steals the
			// woken dependent and runs it while the failed call is still on
			// its way to the group.
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
			const runs = 1000
			wrong := map[string]int{}
			for range runs {
				_, err := e.Run(context.Background(), p, aggregate.Input{Params: []string{"o1"}})
				var ce *aggregate.CallError
				var ue *upstream.Error
				if !errors.As(err, &ce) || ce.Call != "order" || !errors.As(err, &ue) || ue.Status != http.StatusNotFound {
					wrong[fmt.Sprint(err)]++
				}
			}
			if len(wrong) > 0 {
				t.Errorf("of %d runs whose only failure is orders' 404, these ended with another error: %v", runs, wrong)
			}
			if n := userCalls.Load(); n != 0 {
				t.Errorf("users was called %d times", n)
			}
		})
	}
}

// depends_on is an ordering: a call skipped because its placeholder found
// an empty list has finished, and a call that only depends_on it runs.
// (It was skipped too, silently: an order without items made the
// recommendations, which read nothing from the products call, vanish.)
func TestDependsOnASkippedCallStillRuns(t *testing.T) {
	var recsCalls atomic.Int64
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"orders": realUpstream(t, "orders", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"id":"o1","items":[]}`))
		})),
		"catalog": realUpstream(t, "catalog", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"products":[]}`))
		})),
		"recs": realUpstream(t, "recs", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			recsCalls.Add(1)
			_, _ = w.Write([]byte(`{"items":[{"id":"r1"}]}`))
		})),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/o/{id}", Params: []aggregate.Param{{Name: "id"}},
		Calls: []aggregate.Call{
			{Name: "order", Upstream: "orders", Path: "/orders/{id}"},
			{Name: "products", Upstream: "catalog", Path: "/products", Query: "skus={order.items.#.sku}", Optional: true},
			{Name: "recs", Upstream: "recs", Path: "/recommendations", Query: "order={id}", DependsOn: []string{"products"}},
		},
		Shape: []aggregate.Field{
			aggregate.List("products", "products.products", 0),
			aggregate.List("recs", "recs.items", 0, aggregate.Pick("id")),
		},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{Params: []string{"o1"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"products":[],"recs":[{"id":"r1"}]}`; string(res.Body) != want || recsCalls.Load() != 1 {
		t.Errorf("body %s (want %s), recs called %d times, missing %v, calls %+v",
			res.Body, want, recsCalls.Load(), res.Missing, res.Calls)
	}
}
