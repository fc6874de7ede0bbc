package bff

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httprate"
)

// Limit is a number of requests per window, per caller.
type Limit struct {
	Requests int
	Window   time.Duration
}

// RateLimit is one client's request budget per caller (the client IP, or
// the X-Forwarded-For address a trusted proxy vouches for), with tighter
// budgets for some views.
type RateLimit struct {
	Limit
	// Views override the client's limit for the views named; a request to
	// such a view counts against both.
	Views map[string]Limit
}

func (l Limit) validate(what string) error {
	if l.Requests <= 0 || l.Window <= 0 {
		return fmt.Errorf("rate limit%s: want requests > 0 per window > 0, found %d per %s", what, l.Requests, l.Window)
	}
	return nil
}

// limiter builds the middleware enforcing l, keyed by client IP.
func (l Limit) limiter(name string) func(http.Handler) http.Handler {
	policy := []string{strconv.Quote(name) + ";q=" + strconv.Itoa(l.Requests) + ";w=" + strconv.Itoa(int(max(l.Window/time.Second, 1)))}
	limited := func(w http.ResponseWriter, r *http.Request) {
		// The window is fixed in time: it resets at the next multiple of its length.
		reset := l.Window - time.Duration(time.Now().UnixNano()%int64(l.Window))
		secs := strconv.Itoa(int((reset + time.Second - 1) / time.Second))
		h := w.Header()
		h["Retry-After"] = []string{secs}
		h["Ratelimit"] = []string{strconv.Quote(name) + ";r=0;t=" + secs}
		writeProblem(w, r, newProblem(http.StatusTooManyRequests, ProblemTooManyRequests,
			"more than "+strconv.Itoa(l.Requests)+" requests in "+l.Window.String()+"; try again in "+secs+"s"))
	}
	rl := httprate.NewRateLimiter(l.Requests, l.Window,
		httprate.WithKeyFuncs(clientKey),
		httprate.WithLimitHandler(limited),
		httprate.WithResponseHeaders(httprate.ResponseHeaders{}), // ours follow the IETF draft
	)
	return func(next http.Handler) http.Handler {
		limit := rl.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Ratelimit-Policy"] = policy
			limit.ServeHTTP(w, r)
		})
	}
}

// clientKey is the verified subject, or else the caller's address as the
// client-IP middleware resolved it, or the peer's when it could not (a
// trusted proxy sent garbage).
func clientKey(r *http.Request) (string, error) {
	if sub := subjectOf(r.Context()); sub != "" {
		return "sub:" + sub, nil // the verified caller, wherever it connects from
	}
	if ip := middleware.GetClientIPAddr(r.Context()); ip.IsValid() {
		return httprate.CanonicalizeIP(ip.String()), nil
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return httprate.CanonicalizeIP(host), nil
}

// clientIP resolves the caller's address: X-Forwarded-For is believed only
// when the peer is one of the trusted proxies.
func clientIP(trusted []string) (func(http.Handler) http.Handler, error) {
	for _, p := range trusted {
		if _, err := netip.ParsePrefix(p); err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want a CIDR prefix such as 10.0.0.0/8", p)
		}
	}
	if len(trusted) == 0 {
		return middleware.ClientIPFromRemoteAddr, nil
	}
	return middleware.ClientIPFromXFF(trusted...), nil
}
