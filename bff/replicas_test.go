package bff_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/demo"
	"github.com/bffproxy/bff/internal/redistest"
	"github.com/bffproxy/bff/internal/shared"
	"github.com/bffproxy/bff/upstream"
	"github.com/redis/go-redis/v9"
)

// fleet is several replicas of the BFF, each with its own memory cache,
// over the same upstream servers and one Redis.
type fleet struct {
	upstreams map[string]*upstreamServer
	replicas  []*replica
}

type replica struct {
	front  *bff.Front
	mem    *cache.Cache
	rdb    *shared.Redis
	tier   *cache.Shared
	counts *commandCounter
}

type fleetOptions struct {
	replicas  int
	redisURL  string
	prefix    string
	lock      bool
	routeSets []bff.RouteSet
	handlers  map[string]http.Handler // default: the demo upstreams
	// timeout bounds each Redis command. Default 5s: a loaded test machine
	// must not turn a slow command into a fallback the test did not ask for.
	timeout time.Duration
	now     func() time.Time
}

func newFleet(t *testing.T, o fleetOptions) *fleet {
	t.Helper()
	if o.routeSets == nil {
		o.routeSets = builtinRoutes(t)
	}
	if o.handlers == nil {
		o.handlers = map[string]http.Handler{}
		for _, name := range demo.Names() {
			h, _ := demo.Handler(name)
			o.handlers[name] = h
		}
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	f := &fleet{upstreams: map[string]*upstreamServer{}}
	for name, h := range o.handlers {
		f.upstreams[name] = newUpstreamServer(t, h)
	}
	for range o.replicas {
		doers := map[string]aggregate.Doer{}
		for name, srv := range f.upstreams {
			doers[name] = clientFor(t, name, srv.URL, func(c *upstream.Config) {
				c.Retry = upstream.RetryConfig{Max: 1, WaitMin: time.Millisecond, WaitMax: 2 * time.Millisecond}
			})
		}
		mem, err := cache.New(cache.Config{MaxBytes: 16 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(mem.Close)
		counts := &commandCounter{}
		rdb, err := shared.New(shared.Config{URL: o.redisURL, Prefix: o.prefix, Timeout: o.timeout, OpenFor: 100 * time.Millisecond, Observer: counts})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rdb.Close() })
		// A long wait: on a loaded machine a waiter that gave up would
		// fetch, and the test counts fetches.
		tier, err := cache.NewShared(cache.SharedConfig{Redis: rdb, Memory: mem, Lock: o.lock, LockWait: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tier.Close)
		front, err := bff.New(bff.Config{Engine: aggregate.NewEngine(doers), Cache: mem, Shared: tier,
			SharedLimits: rdb, RouteSets: o.routeSets, Now: o.now})
		if err != nil {
			t.Fatal(err)
		}
		f.replicas = append(f.replicas, &replica{front: front, mem: mem, rdb: rdb, tier: tier, counts: counts})
		waitFor(t, "the replica to read the purge log", tier.Synced)
	}
	return f
}

func (f *fleet) calls() int64 {
	var n int64
	for _, u := range f.upstreams {
		n += u.calls.Load()
	}
	return n
}

func (r *replica) get(path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = "192.0.2.7:40000"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	r.front.ServeHTTP(w, req)
	return w
}

// from serves a request from the caller at addr.
func (r *replica) from(path, addr string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = addr + ":40000"
	w := httptest.NewRecorder()
	r.front.ServeHTTP(w, req)
	return w
}

func fromShared(w *httptest.ResponseRecorder) bool {
	return w.Code == http.StatusOK && w.Header().Get("X-Cache") == "HIT" &&
		strings.HasPrefix(w.Header().Get("Server-Timing"), "redis;")
}

// commandCounter counts Redis commands by operation, and those the
// breaker rejected without asking.
type commandCounter struct {
	mu       sync.Mutex
	ops      map[string]int
	refusals int
}

func (c *commandCounter) Command(op, outcome string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops == nil {
		c.ops = map[string]int{}
	}
	c.ops[op]++
	if outcome == "rejected" {
		c.refusals++
	}
}

func (c *commandCounter) rejected() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusals
}

func (c *commandCounter) Up(bool) {}

func (c *commandCounter) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[op]
}

// storedEntries counts the response entries in Redis under prefix.
func storedEntries(t *testing.T, url, prefix string) int {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer func() { _ = c.Close() }()
	keys, err := c.Keys(context.Background(), prefix+":e:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// A response one replica fetched is served by another from Redis, with
// no upstream call, and then from the second replica's memory.
func TestReplicasShareHits(t *testing.T) {
	url, prefix := redistest.Shared(t)
	f := newFleet(t, fleetOptions{replicas: 2, redisURL: url, prefix: prefix})
	a, b := f.replicas[0], f.replicas[1]

	first := a.get("/web/home/7")
	if first.Code != http.StatusOK || first.Header().Get("X-Cache") != "MISS" {
		t.Fatalf("first request: %d %s", first.Code, first.Header().Get("X-Cache"))
	}
	fetched := f.calls()
	waitFor(t, "the response to reach redis", func() bool { return storedEntries(t, url, prefix) == 1 })

	w := b.get("/web/home/7")
	if !fromShared(w) {
		t.Fatalf("second replica: %d X-Cache=%s Server-Timing=%s; want a hit from redis",
			w.Code, w.Header().Get("X-Cache"), w.Header().Get("Server-Timing"))
	}
	if w.Body.String() != first.Body.String() || w.Header().Get("Etag") != first.Header().Get("Etag") {
		t.Errorf("the shared copy differs:\n%s %s\n%s %s", first.Body, first.Header().Get("Etag"), w.Body, w.Header().Get("Etag"))
	}
	if w.Header().Get("Age") == "" || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != first.Header().Get("Cache-Control") {
		t.Errorf("the shared copy's headers: %v", w.Header())
	}
	if n := f.calls(); n != fetched {
		t.Errorf("upstream calls went from %d to %d; the second replica should have asked none", fetched, n)
	}
	b.mem.Wait() // the copy from redis is kept in memory (ristretto applies sets asynchronously)
	gets := b.counts.count("get")
	if w := b.get("/web/home/7"); w.Header().Get("X-Cache") != "HIT" || strings.HasPrefix(w.Header().Get("Server-Timing"), "redis;") {
		t.Errorf("third request: X-Cache=%s Server-Timing=%s; want a memory hit", w.Header().Get("X-Cache"), w.Header().Get("Server-Timing"))
	}
	if n := b.counts.count("get"); n != gets {
		t.Errorf("a memory hit asked redis")
	}
	// Other ids, languages and app versions are other entries.
	if w := b.get("/web/home/8"); w.Header().Get("X-Cache") != "MISS" {
		t.Errorf("another id: X-Cache=%s", w.Header().Get("X-Cache"))
	}
	if w := b.get("/web/home/7", "Accept-Language", "de"); w.Header().Get("X-Cache") != "MISS" {
		t.Errorf("another language: X-Cache=%s", w.Header().Get("X-Cache"))
	}
}

// Per-user responses are shared between replicas only with the same user.
func TestReplicasKeepUsersApart(t *testing.T) {
	url, prefix := redistest.Shared(t)
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.me", Route: "/me",
		Calls: []aggregate.Call{{Name: "me", Upstream: "echo", Path: "/me"}},
		Cache: aggregate.CachePolicy{TTL: time.Minute, Scope: aggregate.ScopeUser},
		Shape: []aggregate.Field{aggregate.Rename("who", "me.who")},
	}}}}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"who": r.Header.Get("X-Test-User")})
	})
	f := newFleet(t, fleetOptions{replicas: 2, redisURL: url, prefix: prefix, routeSets: sets,
		handlers: map[string]http.Handler{"echo": echo}})
	a, b := f.replicas[0], f.replicas[1]
	// The upstream cannot see the token here, so the body says nothing of
	// the user; the cache key is what keeps them apart.
	if w := a.get("/web/me", "Authorization", "Bearer alice"); w.Code != http.StatusOK {
		t.Fatalf("alice: %d %s", w.Code, w.Body)
	}
	waitFor(t, "alice's entry in redis", func() bool { return storedEntries(t, url, prefix) == 1 })
	if w := b.get("/web/me", "Authorization", "Bearer bob"); fromShared(w) {
		t.Errorf("bob was served alice's entry from redis")
	}
	if w := b.get("/web/me", "Authorization", "Bearer alice"); !fromShared(w) {
		t.Errorf("alice on the other replica: X-Cache=%s Server-Timing=%s; want her entry from redis",
			w.Header().Get("X-Cache"), w.Header().Get("Server-Timing"))
	}
	if w := b.get("/web/me"); fromShared(w) {
		t.Errorf("an anonymous caller was served alice's entry")
	}
}

// A purge on one replica (the admin endpoint's, or a mutation's) reaches
// the other's memory and the entries in Redis.
func TestPurgeReachesEveryReplica(t *testing.T) {
	url, prefix := redistest.Shared(t)
	cart := &cartUpstream{}
	f := newFleet(t, fleetOptions{replicas: 2, redisURL: url, prefix: prefix, routeSets: cartViews(),
		handlers: map[string]http.Handler{"carts": cart}})
	a, b := f.replicas[0], f.replicas[1]
	if w := a.get("/web/cart"); w.Body.String() != `{"items":[]}` {
		t.Fatalf("empty cart: %s", w.Body)
	}
	waitFor(t, "the cart in redis", func() bool { return storedEntries(t, url, prefix) == 1 })
	if w := b.get("/web/cart"); !fromShared(w) {
		t.Fatalf("b: X-Cache=%s; want the shared copy", w.Header().Get("X-Cache"))
	}

	// A mutation on b drops the cart from a's memory and from redis.
	req := httptest.NewRequest(http.MethodPost, "/web/cart/items", strings.NewReader(`{"sku":"A-1","qty":1}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	b.front.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	waitFor(t, "a to see the new cart", func() bool { return strings.Contains(a.get("/web/cart").Body.String(), "A-1") })

	// An admin purge on a reaches b, whose copy came from redis.
	if w := b.get("/web/cart"); !strings.Contains(w.Body.String(), "A-1") {
		t.Fatalf("b after the mutation: %s", w.Body)
	}
	cart.mu.Lock()
	cart.items = nil
	cart.mu.Unlock()
	if err := a.front.Purge("web.cart", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see the purge", func() bool { return b.get("/web/cart").Body.String() == `{"items":[]}` })
	if w := a.get("/web/cart"); w.Body.String() != `{"items":[]}` {
		t.Errorf("a after its own purge: %s", w.Body)
	}
}

// A replica that was away when a purge was published reads it from the
// purge log when it connects, before it reads anything from Redis.
func TestLateReplicaReadsMissedPurges(t *testing.T) {
	url, prefix := redistest.Shared(t)
	cart := &cartUpstream{}
	opts := fleetOptions{replicas: 1, redisURL: url, prefix: prefix, routeSets: cartViews(),
		handlers: map[string]http.Handler{"carts": cart}}
	f := newFleet(t, opts)
	a := f.replicas[0]
	a.get("/web/cart")
	waitFor(t, "the cart in redis", func() bool { return storedEntries(t, url, prefix) == 1 })
	if err := a.front.Purge("", "/web/cart"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the purge to be published", func() bool { return a.tier.PendingPurges() == 0 })

	late := newFleet(t, opts) // its own upstream servers: any call it makes shows
	if w := late.replicas[0].get("/web/cart"); fromShared(w) || late.calls() != 1 {
		t.Errorf("the late replica served the purged entry from redis (upstream calls %d)", late.calls())
	}
}

// A replica with nothing of its own in memory (new, or restarted) serves
// another replica's copy from Redis in place of an answer its upstream
// cannot give, within stale_if_error, marked; past it the failure shows.
func TestStaleIfErrorFromAnotherReplica(t *testing.T) {
	url, prefix := redistest.Shared(t)
	up := &switchable{}
	clk := &clock{now: time.Now()}
	f := newFleet(t, fleetOptions{replicas: 2, redisURL: url, prefix: prefix, now: clk.Now,
		routeSets: profileView(aggregate.CachePolicy{TTL: time.Second, StaleIfError: time.Hour}),
		handlers:  map[string]http.Handler{"users": up}})
	a, b := f.replicas[0], f.replicas[1]
	first := a.get("/web/profile/1")
	if first.Code != http.StatusOK {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	waitFor(t, "the profile in redis", func() bool { return storedEntries(t, url, prefix) == 1 })
	clk.advance(2 * time.Second)
	up.failing.Store(true)

	w := b.get("/web/profile/1")
	if w.Code != http.StatusOK || w.Body.String() != first.Body.String() || w.Header().Get("X-Cache") != "STALE" ||
		w.Header().Get(bff.PartialHeader) != "stale;reason=error" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("b with its upstream failing: %d %s X-Cache=%s partial=%q cache-control=%q; want a's copy, marked stale",
			w.Code, w.Body, w.Header().Get("X-Cache"), w.Header().Get(bff.PartialHeader), w.Header().Get("Cache-Control"))
	}
	clk.advance(2 * time.Hour)
	if w := b.get("/web/profile/1"); w.Code != http.StatusBadGateway {
		t.Errorf("past stale_if_error: %d %s; want 502", w.Code, w.Body)
	}
}

// A caller's rate limit holds across replicas.
func TestRateLimitAcrossReplicas(t *testing.T) {
	url, prefix := redistest.Shared(t)
	sets := builtinRoutes(t)
	for i := range sets {
		if sets[i].Client == "web" {
			sets[i].RateLimit = &bff.RateLimit{Limit: bff.Limit{Requests: 4, Window: time.Hour}}
		}
	}
	f := newFleet(t, fleetOptions{replicas: 2, redisURL: url, prefix: prefix, routeSets: sets})
	for i := range 7 {
		w := f.replicas[i%2].get("/web/home/7")
		want := http.StatusOK
		if i >= 4 {
			want = http.StatusTooManyRequests
		}
		if w.Code != want {
			t.Fatalf("request %d, on replica %d: %d; want %d", i+1, i%2, w.Code, want)
		}
	}
	// Another caller has a budget of its own.
	req := httptest.NewRequest(http.MethodGet, "/web/home/7", nil)
	req.RemoteAddr = "198.51.100.1:40000"
	w := httptest.NewRecorder()
	f.replicas[1].front.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Errorf("another caller: %d", w.Code)
	}
}

// With the lock on, replicas missing one key together make one fan-out:
// the others wait for its result in Redis.
func TestLockCoalescesAcrossReplicas(t *testing.T) {
	url, prefix := redistest.Shared(t)
	const n = 4
	var mu sync.Mutex
	release := make(chan struct{})
	var entered atomic.Int64
	users, _ := demo.Handler("users")
	gated := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		mu.Lock()
		gate := release
		mu.Unlock()
		<-gate
		users.ServeHTTP(w, r)
	})
	handlers := map[string]http.Handler{}
	for _, name := range demo.Names() {
		handlers[name], _ = demo.Handler(name)
	}
	handlers["users"] = gated
	f := newFleet(t, fleetOptions{replicas: n, redisURL: url, prefix: prefix, lock: true, handlers: handlers})
	var opened sync.Once
	open := func() { opened.Do(func() { mu.Lock(); close(release); mu.Unlock() }) }
	t.Cleanup(func() { open() }) // before the servers close, should the test fail while requests wait

	// Round 1: a cold key. Round 2: after a purge, when Redis still holds
	// the purged entry, which waiters must not take for the new one.
	for round := 1; round <= 2; round++ {
		awaits := make([]int, n)
		for i, r := range f.replicas {
			awaits[i] = r.counts.count("await")
		}
		before := entered.Load()
		var wg sync.WaitGroup
		responses := make([]*httptest.ResponseRecorder, n)
		for i, r := range f.replicas {
			wg.Go(func() { responses[i] = r.get("/web/home/7") })
		}
		// One replica is fetching; release it once every other one is waiting.
		waitFor(t, "one fetch and the others waiting", func() bool {
			waiting := 0
			for i, r := range f.replicas {
				if r.counts.count("await") > awaits[i] {
					waiting++
				}
			}
			return entered.Load() > before && waiting == n-1
		})
		open()
		wg.Wait()
		for i, w := range responses {
			if w.Code != http.StatusOK || w.Body.String() != responses[0].Body.String() || w.Header().Get("X-Cache") == "HIT" && !fromShared(w) {
				t.Errorf("round %d, replica %d: %d %s %s", round, i, w.Code, w.Header().Get("X-Cache"), w.Body)
			}
		}
		for name, u := range f.upstreams {
			if c := u.calls.Load(); c != int64(round) && name != "catalog" {
				t.Errorf("round %d: %s was called %d times in all by %d replicas; want %d", round, name, c, n, round)
			}
		}
		if round == 2 {
			break
		}
		// Next round: the gate closed again, the view purged everywhere.
		mu.Lock()
		release, opened = make(chan struct{}), sync.Once{}
		mu.Unlock()
		if err := f.replicas[0].front.Purge("", "/web/home/7"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the purge to be published", func() bool { return f.replicas[0].tier.PendingPurges() == 0 })
		published := time.Now()
		waitFor(t, "every replica to read it", func() bool {
			for _, r := range f.replicas {
				if !r.tier.PurgesReadAt().After(published) {
					return false
				}
			}
			return true
		})
	}
}

// Redis dies under traffic: both replicas go on serving (memory tier,
// local limits), say so in their status, and use Redis again once it is
// back.
func TestRedisDiesAndComesBack(t *testing.T) {
	srv := redistest.Start(t)
	sets := builtinRoutes(t)
	for i := range sets {
		sets[i].RateLimit = &bff.RateLimit{Limit: bff.Limit{Requests: 50, Window: time.Hour}}
	}
	f := newFleet(t, fleetOptions{replicas: 2, redisURL: srv.URL(), prefix: "bff", routeSets: sets, timeout: 200 * time.Millisecond})
	a, b := f.replicas[0], f.replicas[1]
	a.get("/web/home/1")
	waitFor(t, "the entry in redis", func() bool { return storedEntries(t, srv.URL(), "bff") == 1 })
	if w := b.get("/web/home/1"); !fromShared(w) {
		t.Fatalf("before the outage: not shared")
	}

	// Traffic from many callers on both replicas, with Redis killed in the
	// middle of it: not one request may fail.
	var served atomic.Int64
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	t.Cleanup(func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }) // should the test fail first
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := fmt.Sprintf("/%s/home/%d", []string{"web", "mobile"}[i%2], 1+(g*7+i)%25)
				w := f.replicas[g%2].from(path, fmt.Sprintf("203.0.113.%d", 1+(g*50+i)%200))
				if w.Code != http.StatusOK {
					t.Errorf("%s around the outage: %d %s", path, w.Code, w.Body)
					return
				}
				served.Add(1)
			}
		})
	}
	waitFor(t, "traffic before the kill", func() bool { return served.Load() >= 50 })
	srv.Kill()
	killedAt := served.Load()
	waitFor(t, "traffic after the kill", func() bool { return served.Load() >= killedAt+200 })
	stopOnce.Do(func() { close(stop) })
	wg.Wait()
	for i, r := range f.replicas {
		if st := r.rdb.Status(); !st.Degraded || st.LastError == "" {
			t.Errorf("replica %d status during the outage: %+v", i, st)
		}
	}
	// Limits hold per replica meanwhile: the 51st request of one caller is refused.
	for i := range 51 {
		w := a.from("/web/home/3", "198.51.100.9")
		if want := http.StatusOK; i == 50 {
			if w.Code != http.StatusTooManyRequests {
				t.Errorf("request 51 of one caller during the outage: %d; want 429 from the local limit", w.Code)
			}
		} else if w.Code != want {
			t.Fatalf("request %d of one caller during the outage: %d", i+1, w.Code)
		}
	}

	srv.Restart()
	id := 100
	waitFor(t, "the replicas to share through redis again", func() bool {
		id++
		path := fmt.Sprintf("/web/home/%d", id)
		if a.get(path).Code != http.StatusOK {
			return false
		}
		// a writes in the background: give it a moment before b asks.
		for range 50 {
			if storedEntries(t, srv.URL(), "bff") > 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		return fromShared(b.get(path))
	})
	for i, r := range f.replicas {
		if st := r.rdb.Status(); st.Degraded {
			t.Errorf("replica %d after recovery: %+v", i, st)
		}
	}
}

// A replica whose pub/sub connection was cut (a failover, an idle flow
// dropped by the network) still learns of purges: go-redis subscribes
// again, and the purge log is read every second anyway.
func TestPurgeArrivesAfterPubSubIsCut(t *testing.T) {
	url, prefix := redistest.Shared(t)
	cart := &cartUpstream{}
	f := newFleet(t, fleetOptions{replicas: 2, redisURL: url, prefix: prefix, routeSets: cartViews(),
		handlers: map[string]http.Handler{"carts": cart}})
	a, b := f.replicas[0], f.replicas[1]
	if w := b.get("/web/cart"); w.Body.String() != `{"items":[]}` {
		t.Fatalf("cart: %s", w.Body)
	}
	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	defer func() { _ = c.Close() }()
	if err := c.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	cart.mu.Lock()
	cart.items = append(cart.items, json.RawMessage(`{"sku":"B-2","qty":1}`))
	cart.mu.Unlock()
	if err := a.front.Purge("web.cart", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see the purge", func() bool { return strings.Contains(b.get("/web/cart").Body.String(), "B-2") })
}

// BenchmarkSharedHit is a hit in the shared tier: the memory tier is off,
// so every request asks Redis (on loopback) and serves what it holds.
// Compare with BenchmarkHit, a hit in memory.
func BenchmarkSharedHit(b *testing.B) {
	url, prefix := redistest.Shared(b)
	doers := demoUpstreams(b, nil)
	off, _ := cache.New(cache.Config{})
	rdb, err := shared.New(shared.Config{URL: url, Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rdb.Close() })
	tier, err := cache.NewShared(cache.SharedConfig{Redis: rdb, Memory: off})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(tier.Close)
	for deadline := time.Now().Add(10 * time.Second); !tier.Synced(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the purge log was not read")
		}
	}
	f, err := bff.New(bff.Config{Engine: aggregate.NewEngine(doers), Cache: off, Shared: tier, RouteSets: builtinRoutes(b)})
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]*http.Request, 100)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/web/home/"+strconv.Itoa(i+1), nil)
		f.ServeHTTP(&discardWriter{h: http.Header{}}, reqs[i])
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		w := &discardWriter{h: http.Header{}}
		f.ServeHTTP(w, reqs[len(reqs)-1])
		if w.h.Get("X-Cache") == "HIT" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the entries did not reach redis")
		}
	}
	serveParallel(b, f, reqs, func(h http.Header) bool { return h.Get("X-Cache") == "HIT" })
}

// A Redis that accepts connections and never answers (a hung server, a
// black-holed network) is worse than one that is down: each command waits
// for its deadline. After three such waits the breaker stops asking, and
// every request is served from memory and local limits.
func TestHungRedisIsAskedThreeTimes(t *testing.T) {
	hung := redistest.Hung(t)
	sets := builtinRoutes(t)
	for i := range sets {
		sets[i].RateLimit = &bff.RateLimit{Limit: bff.Limit{Requests: 1000, Window: time.Hour}}
	}
	doers := demoUpstreams(t, nil)
	mem, _ := cache.New(cache.Config{MaxBytes: 1 << 20})
	t.Cleanup(mem.Close)
	counts := &commandCounter{}
	rdb, err := shared.New(shared.Config{URL: hung, Timeout: 20 * time.Millisecond, OpenFor: time.Hour, Observer: counts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	tier, err := cache.NewShared(cache.SharedConfig{Redis: rdb, Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tier.Close)
	front, err := bff.New(bff.Config{Engine: aggregate.NewEngine(doers), Cache: mem, Shared: tier, SharedLimits: rdb, RouteSets: sets})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{front: front}
	for i := range 50 {
		if w := r.get(fmt.Sprintf("/web/home/%d", 1+i%10)); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	if st := rdb.Status(); !st.Degraded || st.LastError == "" {
		t.Errorf("status %+v; want degraded", st)
	}
	asked := 0
	for _, op := range []string{"get", "set", "ratelimit", "purges", "purge", "lock", "await"} {
		asked += counts.count(op)
	}
	// Three failures open the breaker; the purge-log reader, running beside
	// the requests, may have had one more command under way.
	if rejected := counts.rejected(); asked-rejected > 4 {
		t.Errorf("redis was asked %d times (%d rejected without asking); want at most 3, and one in flight, before the breaker opened", asked-rejected, rejected)
	}
}

// A view that is not cached has nothing to share: its misses ask Redis
// nothing and take no lock that another replica would wait on for nothing.
func TestUncachedViewSkipsTheSharedTier(t *testing.T) {
	url, prefix := redistest.Shared(t)
	f := newFleet(t, fleetOptions{replicas: 2, redisURL: url, prefix: prefix, lock: true,
		routeSets: profileView(aggregate.CachePolicy{}), // no TTL: not cached
		handlers:  map[string]http.Handler{"users": &switchable{}}})
	for _, r := range f.replicas {
		if w := r.get("/web/profile/1"); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	for i, r := range f.replicas {
		for _, op := range []string{"get", "lock", "await", "set"} {
			if n := r.counts.count(op); n != 0 {
				t.Errorf("replica %d: %d Redis %q commands for a view that is not cached", i, n, op)
			}
		}
	}
	if got := f.calls(); got != 2 {
		t.Errorf("%d upstream calls for 2 misses of an uncached view, want 2", got)
	}
}

// A reader judges an entry from Redis fresh by its own clock: a writer
// whose clock runs ahead (two minutes) must not make a 10s entry a fresh
// HIT for its whole stay in Redis (ttl + stale_while_revalidate).
func TestSharedEntryFromFastClockIsNotFreshPastItsTTL(t *testing.T) {
	url, prefix := redistest.Shared(t)
	users, _ := demo.Handler("users")
	sets := profileView(aggregate.CachePolicy{TTL: 10 * time.Second, StaleWhileRevalidate: time.Minute})
	ahead := &clock{now: time.Now().Add(2 * time.Minute)} // the writing replica's clock
	reader := &clock{now: time.Now()}
	a := newFleet(t, fleetOptions{replicas: 1, redisURL: url, prefix: prefix, now: ahead.Now,
		routeSets: sets, handlers: map[string]http.Handler{"users": users}}).replicas[0]
	b := newFleet(t, fleetOptions{replicas: 1, redisURL: url, prefix: prefix, now: reader.Now,
		routeSets: sets, handlers: map[string]http.Handler{"users": users}}).replicas[0]

	if w := a.get("/web/profile/1"); w.Code != http.StatusOK {
		t.Fatalf("a: %d %s", w.Code, w.Body)
	}
	waitFor(t, "the profile in redis", func() bool { return storedEntries(t, url, prefix) == 1 })
	if w := b.get("/web/profile/1"); !fromShared(w) {
		t.Fatalf("b did not read a's entry from redis: %d X-Cache=%s Server-Timing=%s", w.Code, w.Header().Get("X-Cache"), w.Header().Get("Server-Timing"))
	}
	b.mem.Wait()
	reader.advance(30 * time.Second) // three TTLs later on b's clock
	if w := b.get("/web/profile/1"); w.Header().Get("X-Cache") == "HIT" {
		t.Errorf("30s after b read it, a 10s entry is still served as a fresh HIT (Age %q); want it stale (revalidated) or refetched",
			w.Header().Get("Age"))
	}
	if err := b.front.Drain(context.Background()); err != nil { // the refresh that request started
		t.Fatal(err)
	}
}
