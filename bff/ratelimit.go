package bff

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/bffproxy/bff/internal/shared"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httprate"
	"github.com/redis/go-redis/v9"
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
	// Windows are counted per whole second (httprate's counter keys, the
	// RateLimit-Policy header): a shorter one would share its key with the
	// previous window and count every request twice.
	if l.Requests <= 0 || l.Window < time.Second {
		return fmt.Errorf("rate limit%s: want requests > 0 per window of at least 1s, found %d per %s", what, l.Requests, l.Window)
	}
	return nil
}

// counters are the rate limiters' counts, kept across reloads: a reload
// (a view deployed, a SIGHUP) must not give every caller a new budget.
// A limiter is kept as long as its scope, name and limit stay the same.
type counters struct {
	mu   sync.Mutex
	live map[string]*httprate.RateLimiter // those the routes being served use
	next map[string]*httprate.RateLimiter // those the table being built uses
}

// begin starts a build; keep or drop ends it.
func (c *counters) begin() {
	c.mu.Lock()
	c.next = map[string]*httprate.RateLimiter{}
}

// get returns the counter for scope, name and l: the one already counting,
// if any, else a new one made by build.
func (c *counters) get(scope, name string, l Limit, build func() *httprate.RateLimiter) *httprate.RateLimiter {
	key := scope + "\x00" + name + "\x00" + strconv.Itoa(l.Requests) + "/" + l.Window.String()
	lc, ok := c.next[key]
	if !ok {
		if lc, ok = c.live[key]; !ok {
			lc = build()
		}
		c.next[key] = lc
	}
	return lc
}

// keep makes the build's counters the live ones; drop forgets them.
func (c *counters) keep() { c.live, c.next = c.next, nil; c.mu.Unlock() }
func (c *counters) drop() { c.next = nil; c.mu.Unlock() }

// limiter builds the middleware enforcing l, keyed by client IP. With
// counters in Redis the limit holds across replicas; while Redis is
// unavailable each replica enforces it alone. scope keeps the counters of a client's limit and a view's apart in Redis,
// even where a view is named like a client.
func (l Limit) limiter(name, scope string, rdb *shared.Redis, counts *counters) func(http.Handler) http.Handler {
	policy := []string{strconv.Quote(name) + ";q=" + strconv.Itoa(l.Requests) + ";w=" + strconv.Itoa(int(max(l.Window/time.Second, 1)))}
	// limitedIn answers a refused request. windowStart is the counter's
	// window: httprate's own aligns its windows to when it was made, the
	// shared one to the clock.
	limitedIn := func(windowStart func(time.Time) time.Time) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			// When the window ends, the sliding count still weighs the
			// requests of the one that ended by how much of the new one is
			// left; the caller is let through again once 1/limit of it has
			// passed. Telling it the end of the window alone would earn it
			// another 429.
			now := time.Now().UTC()
			wait := windowStart(now).Add(l.Window).Sub(now) + (l.Window+time.Duration(l.Requests)-1)/time.Duration(l.Requests)
			secs := strconv.Itoa(int((wait + time.Second - 1) / time.Second))
			h := w.Header()
			h["Retry-After"] = []string{secs}
			h["Ratelimit"] = []string{strconv.Quote(name) + ";r=0;t=" + secs}
			writeProblem(w, r, newProblem(http.StatusTooManyRequests, ProblemTooManyRequests,
				"more than "+strconv.Itoa(l.Requests)+" requests in "+l.Window.String()+"; try again in "+secs+"s"))
		}
	}
	rl := counts.get(scope, name, l, func() *httprate.RateLimiter {
		// httprate aligns its windows to the moment it is made, as here.
		made := time.Now().UTC()
		offset := made.Sub(made.Truncate(l.Window))
		return httprate.NewRateLimiter(l.Requests, l.Window,
			httprate.WithKeyFuncs(clientKey),
			httprate.WithLimitHandler(limitedIn(func(t time.Time) time.Time { return t.Add(-offset).Truncate(l.Window).Add(offset) })),
			httprate.WithResponseHeaders(httprate.ResponseHeaders{}), // ours follow the IETF draft
		)
	})
	return func(next http.Handler) http.Handler {
		limit := rl.Handler(next)
		if rdb != nil {
			limit = sharedLimiter{rdb: rdb, prefix: rdb.Prefix() + ":rl:" + scope + ":" + name + ":", limit: l, local: limit, next: next,
				limited: limitedIn(func(t time.Time) time.Time { return t.Truncate(l.Window) })}
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Ratelimit-Policy"] = policy
			limit.ServeHTTP(w, r)
		})
	}
}

// sharedLimiter counts in Redis with httprate's sliding window: the
// previous window's count, weighted by how much of it still overlaps, plus
// the current one's. The check and the count are one script, so replicas
// cannot both take the last request, and no lock is held across the
// network (httprate's own counter interface is called under a per-limiter
// mutex, which would serialise every request on a Redis round trip).
type sharedLimiter struct {
	rdb     *shared.Redis
	prefix  string // of this limit's counters in Redis
	limit   Limit
	local   http.Handler // the same limit, counted by this replica alone
	next    http.Handler
	limited http.HandlerFunc
}

// slidingWindow returns 1 and counts the request if it is within the
// limit, 0 if not. KEYS: current window, previous window. ARGV: limit, the
// previous window's weight, the counters' lifetime in ms.
var slidingWindow = redis.NewScript(`
local curr = tonumber(redis.call("GET", KEYS[1]) or "0")
local prev = tonumber(redis.call("GET", KEYS[2]) or "0")
local rate = math.floor(prev * tonumber(ARGV[2]) + curr + 0.5)
if rate + 1 > tonumber(ARGV[1]) then return 0 end
redis.call("INCR", KEYS[1])
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return 1`)

func (s sharedLimiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, _ := clientKey(r)
	now := time.Now().UTC()
	current := now.Truncate(s.limit.Window)
	previous := current.Add(-s.limit.Window)
	weight := float64(s.limit.Window-now.Sub(current)) / float64(s.limit.Window)
	var allowed int64
	err := s.rdb.Do(r.Context(), "ratelimit", func(ctx context.Context, c *redis.Client) error {
		var err error
		allowed, err = slidingWindow.Run(ctx, c,
			[]string{s.prefix + strconv.FormatUint(httprate.LimitCounterKey(key, current), 16),
				s.prefix + strconv.FormatUint(httprate.LimitCounterKey(key, previous), 16)},
			s.limit.Requests, strconv.FormatFloat(weight, 'f', 4, 64), (3 * s.limit.Window).Milliseconds()).Int64()
		return err
	})
	switch {
	case err != nil:
		s.local.ServeHTTP(w, r)
	case allowed == 1:
		s.next.ServeHTTP(w, r)
	default:
		s.limited(w, r)
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
// when the peer is one of the trusted proxies (prefixes checked by New).
func clientIP(trusted []string) func(http.Handler) http.Handler {
	if len(trusted) == 0 {
		return middleware.ClientIPFromRemoteAddr
	}
	return middleware.ClientIPFromXFF(trusted...)
}
