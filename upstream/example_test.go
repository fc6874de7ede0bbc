package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/bffproxy/bff/upstream"
)

// Configure one upstream and call it. A live request path wants a short call
// budget, a per-attempt bound that leaves time for one retry, and few, short,
// jittered retries; status codes come back as *upstream.Error.
func ExampleNew() {
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strings.CutPrefix(r.URL.EscapedPath(), "/api/v1/users/")
		if id != "7" {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":7,"name":"Ada"}`)
	}))
	defer users.Close()

	client, err := upstream.New(upstream.Config{
		Name:           "users",
		BaseURL:        users.URL + "/api/v1",
		Timeout:        800 * time.Millisecond, // the whole call, all attempts
		AttemptTimeout: 300 * time.Millisecond, // one attempt: a hung one leaves time to retry
		MaxBodyBytes:   1 << 20,
		Retry: upstream.RetryConfig{
			Max:           1, // GET, HEAD, OPTIONS, or a mutation with an Idempotency-Key
			WaitMin:       10 * time.Millisecond,
			WaitMax:       50 * time.Millisecond,
			RetryAfterMax: 200 * time.Millisecond, // a longer Retry-After fails fast
		},
		Breaker: upstream.BreakerConfig{
			ConsecutiveFailures: 5,
			OpenTimeout:         5 * time.Second,
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdleConnections()

	// The inbound request's headers: only an allowlist is forwarded.
	inbound := http.Header{"X-Request-Id": {"req-1"}, "Cookie": {"session=never-forwarded"}}
	ctx := context.Background()

	for _, id := range []string{"7", "../admin"} {
		resp, err := client.Do(ctx, &upstream.Request{
			Path:   "/users/" + upstream.EscapeSegment(id), // a client value stays one segment
			Header: inbound,
		})
		var uerr *upstream.Error
		switch {
		case errors.As(err, &uerr) && uerr.Kind == upstream.KindStatus:
			fmt.Println(uerr.Upstream, uerr.Op, "->", uerr.Status)
		case err != nil:
			fmt.Println("failed:", err)
		default:
			fmt.Println(resp.Status, string(resp.Body), "attempts:", resp.Attempts)
		}
	}
	// Output:
	// 200 {"id":7,"name":"Ada"} attempts: 1
	// users GET /users/..%2Fadmin -> 404
}

func ExampleEscapeSegment() {
	for _, v := range []string{"42", "..", "a/b", "a b?c#d"} {
		fmt.Println("/users/" + upstream.EscapeSegment(v))
	}
	// Output:
	// /users/42
	// /users/%2E%2E
	// /users/a%2Fb
	// /users/a%20b%3Fc%23d
}
