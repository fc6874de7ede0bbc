package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/redistest"
	"github.com/bffproxy/bff/internal/shared"
	"github.com/redis/go-redis/v9"
)

func sampleEntry(body string) *Entry {
	e := NewEntry([]byte(body), http.Header{
		"Content-Type":  {"application/json"},
		"Cache-Control": {"public, max-age=30"},
		"Vary":          {"Accept-Encoding, Accept-Language"},
	}, time.Now().Add(-3*time.Second).Round(0))
	e.Tag, e.Fetched = "web.home", e.StoredAt.Add(-time.Millisecond)
	return e
}

func TestEntryEncodingRoundTrip(t *testing.T) {
	e := sampleEntry(`{"user":{"name":"Ada"}}`)
	got, ttl, err := decodeEntry(encodeEntry(e, 90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if ttl != 90*time.Second || !bytes.Equal(got.Body, e.Body) || got.ETag != e.ETag || got.Tag != e.Tag ||
		!got.StoredAt.Equal(e.StoredAt) || !got.Fetched.Equal(e.Fetched) {
		t.Errorf("decoded %+v (ttl %s); want %+v", got, ttl, e)
	}
	for k, v := range e.Header {
		if g := got.Header[k]; len(g) != len(v) || g[0] != v[0] {
			t.Errorf("header %s: %q; want %q", k, g, v)
		}
	}
	h := http.Header{}
	got.CopyHeader(h)
	if h.Get("Etag") != e.ETag || h.Get("Content-Type") != "application/json" {
		t.Errorf("a hit of the decoded entry sends %v", h)
	}
}

// Whatever is stored under our keys (another program's value, a torn
// write), decoding it is an error or an entry, never a panic, and never a
// large allocation from a length in the data.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(sampleEntry(`{"a":1}`), time.Minute))
	f.Add([]byte("bff\x01"))
	f.Add([]byte("bff\x01\x02\x02\x02\x00\xff\xff\xff\xff\x0f"))
	f.Add([]byte(`{"not":"ours"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, ttl, err := decodeEntry(b)
		if err != nil {
			return
		}
		if ttl <= 0 || e == nil || len(e.Body) > len(b) {
			t.Fatalf("accepted %q as %+v, ttl %s", b, e, ttl)
		}
		again, _, err := decodeEntry(encodeEntry(e, ttl))
		if err != nil || !bytes.Equal(again.Body, e.Body) || again.Tag != e.Tag {
			t.Fatalf("re-encoding %q: %v", b, err)
		}
	})
}

func newSharedTier(t *testing.T) (*Shared, *Cache, *redis.Client, string) {
	t.Helper()
	url, prefix := redistest.Shared(t)
	s, mem := startTier(t, shared.Config{URL: url, Prefix: prefix}, SharedConfig{MaxValueBytes: 4096})
	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return s, mem, c, prefix
}

// startTier is a shared tier over its own link to Redis and its own
// memory tier, once it has read the purge log; cfg's Redis and Memory are
// filled in.
func startTier(t *testing.T, link shared.Config, cfg SharedConfig) (*Shared, *Cache) {
	t.Helper()
	rdb, err := shared.New(link)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	mem, err := New(Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mem.Close)
	cfg.Redis, cfg.Memory = rdb, mem
	s, err := NewShared(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	waitFor(t, "the tier to read the purge log", s.Synced)
	return s, mem
}

func waitStored(t *testing.T, c *redis.Client, key string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); c.Exists(context.Background(), key).Val() == 0; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached redis", key)
		}
	}
}

func TestSharedTier(t *testing.T) {
	s, _, c, prefix := newSharedTier(t)
	ctx := context.Background()
	key := "/web/home/7\x00fp\x00en"
	e := sampleEntry(`{"id":7}`)
	s.Store(key, e, time.Minute, nil)
	waitStored(t, c, s.entryKey(key))

	got, left, ok := s.Get(ctx, key)
	if !ok || !bytes.Equal(got.Body, e.Body) || left <= 0 || left > time.Minute {
		t.Fatalf("get: ok=%v left=%s", ok, left)
	}
	if _, _, ok := s.Get(ctx, key+"x"); ok {
		t.Error("another key hit")
	}
	// Keys in Redis carry neither the path nor anything of the caller.
	keys := c.Keys(ctx, prefix+":*").Val()
	for _, k := range keys {
		if bytes.Contains([]byte(k), []byte("home")) {
			t.Errorf("redis key %q shows the request", k)
		}
	}

	// Too big for the tier: memory only.
	big := sampleEntry(string(bytes.Repeat([]byte("x"), 5000)))
	s.Store("big", big, time.Minute, nil)
	// A value that is not ours is a miss.
	if err := c.Set(ctx, s.entryKey("junk"), "not an entry", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.Get(ctx, "junk"); ok {
		t.Error("a foreign value was served")
	}

	// A purge hides what was fetched before it, at once on this replica.
	s.Purge("web.home", "/web/home/7\x00")
	if _, _, ok := s.Get(ctx, key); ok {
		t.Error("a purged entry was served")
	}
	// An entry fetched after the purge is served (past the clock skew allowance).
	later := sampleEntry(`{"id":7,"v":2}`)
	later.Fetched = time.Now().Add(time.Second)
	s.Store(key, later, time.Minute, nil)
	waitStored(t, c, s.entryKey(key)) // the old one is still there: wait for the new body
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if got, _, ok := s.Get(ctx, key); ok && bytes.Equal(got.Body, later.Body) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry stored after the purge is not served")
		}
	}
	if c.Exists(ctx, s.entryKey("big")).Val() != 0 {
		t.Error("an entry over max_value_bytes was written to redis")
	}
}

// A lock is held by one replica at a time and released only by its holder.
func TestSharedLock(t *testing.T) {
	s, _, _, _ := newSharedTier(t)
	ctx := context.Background()
	l, won := s.TryLock(ctx, "k")
	if !won || l == nil {
		t.Fatal("the first caller did not take the lock")
	}
	if l2, won := s.TryLock(ctx, "k"); won || l2 != nil {
		t.Fatal("a second caller took a held lock")
	}
	// Nothing stored and the lock released: the waiter stops waiting.
	go l.Release()
	if _, _, ok := s.Await(ctx, "k", func(*Entry) bool { return true }); ok {
		t.Error("await found an entry nobody stored")
	}
	if l3, won := s.TryLock(ctx, "k"); !won || l3 == nil {
		t.Error("the released lock could not be taken again")
	} else {
		l3.Release()
	}
}

// However many purges come, a replica remembers a bounded number: the
// oldest collapse into one purge of everything, so nothing they covered
// comes back.
func TestKnownPurgesAreBounded(t *testing.T) {
	s := &Shared{seen: map[string]struct{}{}, keep: time.Hour, skew: 0}
	base := time.Now().Add(-time.Minute)
	for i := range maxKnownPurges + 100 {
		s.remember(sharedPurge{ID: "p" + strconv.Itoa(i), Tag: "t" + strconv.Itoa(i), Prefixes: []string{"/x"}, At: base.Add(time.Duration(i) * time.Millisecond).UnixNano()})
	}
	if len(s.known) != maxKnownPurges || len(s.seen) != maxKnownPurges {
		t.Fatalf("%d purges and %d ids remembered; want %d", len(s.known), len(s.seen), maxKnownPurges)
	}
	// An entry of another tag and path, fetched before the collapsed purges,
	// is hidden; one fetched after all of them is not.
	if !s.purged("/other", "other", base.Add(50*time.Millisecond)) {
		t.Error("an entry older than the collapsed purges is served")
	}
	if s.purged("/other", "other", base.Add(time.Hour)) {
		t.Error("an entry newer than every purge is hidden")
	}
	// Out of order arrivals are kept in order.
	s.remember(sharedPurge{ID: "late", Tag: "late", Prefixes: []string{""}, At: base.Add(time.Second).UnixNano()})
	for i := 1; i < len(s.known); i++ {
		if s.known[i-1].At > s.known[i].At {
			t.Fatalf("purges out of order at %d", i)
		}
	}
	if !s.purged("/y", "late", base.Add(999*time.Millisecond)) || s.purged("/y", "late", base.Add(1001*time.Millisecond)) {
		t.Error("the late purge covers the wrong entries")
	}
}

// The purge log in Redis stays bounded too, and a replica that connects
// after it was trimmed still hides what the trimmed purges covered.
func TestPurgeLogIsTrimmed(t *testing.T) {
	s, _, c, prefix := newSharedTier(t)
	ctx := context.Background()
	e := sampleEntry(`{"old":true}`)
	e.Fetched = time.Now().Add(-time.Second)
	s.Store("/a", e, time.Minute, nil)
	waitStored(t, c, s.entryKey("/a"))
	n := maxKnownPurges + 300
	for i := range n {
		s.Purge("v"+strconv.Itoa(i), "/nothing-"+strconv.Itoa(i))
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		left := len(s.pending)
		s.mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d purges still unpublished", left)
		}
	}
	if got := c.ZCard(ctx, prefix+":purges").Val(); got > maxKnownPurges+257 {
		t.Errorf("the purge log holds %d records; want at most %d", got, maxKnownPurges+257)
	}
	// A fresh replica reads the log, floor included: /a was fetched before
	// purges that were trimmed, and must not be served.
	rdb2, err := shared.New(shared.Config{URL: "redis://" + c.Options().Addr, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb2.Close() }()
	mem2, _ := New(Config{MaxBytes: 1 << 20})
	defer mem2.Close()
	s2, err := NewShared(SharedConfig{Redis: rdb2, Memory: mem2})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for deadline := time.Now().Add(10 * time.Second); !s2.Synced(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not synced")
		}
	}
	if _, _, ok := s2.Get(ctx, "/a"); ok {
		t.Error("an entry older than trimmed purges was served to a new replica")
	}
	// Without the floor it would have been: no kept purge names /a.
	if !s.purged("/a", e.Tag, e.Fetched) {
		t.Error("the first replica no longer hides /a")
	}
}

// Writes handed to the tier while it closes either finish before Close
// returns or never start: none is added to a wait already under way (with
// -race, that is reported; without, it can panic).
func TestStoreRacingClose(t *testing.T) {
	for round := range 20 {
		s, _, _, _ := newSharedTier(t)
		var writers sync.WaitGroup
		stop := make(chan struct{})
		for g := range 4 {
			writers.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					key := fmt.Sprintf("/race/%d/%d/%d", round, g, i)
					s.Store(key, &Entry{Body: []byte(`{}`), Fetched: time.Now()}, time.Minute, nil)
				}
			})
		}
		runtime.Gosched()
		s.Close()
		close(stop)
		writers.Wait()
	}
}

// A replica cut off from Redis for longer than purge_retention may have
// missed purges that have since left the log: when it reads the log again
// it empties its memory rather than keep serving what they covered.
func TestAwayLongerThanRetentionEmptiesMemory(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	ctx := context.Background()
	// c connects as its own user, so it alone can be cut off.
	if err := admin.Do(ctx, "ACL", "SETUSER", "c", "on", ">pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	const keep = 2 * time.Second
	tier := func(url string) (*Shared, *Cache) {
		return startTier(t, shared.Config{URL: url, Prefix: "away", OpenFor: 100 * time.Millisecond}, SharedConfig{PurgeRetention: keep})
	}
	a, _ := tier(srv.URL())
	c, cmem := tier("redis://c:pw@" + srv.Addr)
	const key = "/web/home/7\x00fp\x00"
	cmem.Set(key, sampleEntry(`{"id":7}`), time.Hour)
	cmem.Wait()

	if err := admin.Do(ctx, "ACL", "SETUSER", "c", "-@all", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	// Redis drops c's subscription with its channel rights, so the purge
	// does not reach c by pub/sub, and c's reads of the log now fail.
	a.Purge("", "/web/home/7") // c misses it...
	waitFor(t, "the purge published", func() bool { return a.PendingPurges() == 0 })
	time.Sleep(keep + 200*time.Millisecond) // ...and it leaves the log: the state under test
	a.Purge("", "/other")                   // the next write trims the log
	waitFor(t, "the second purge published", func() bool { return a.PendingPurges() == 0 })

	if err := admin.Do(ctx, "ACL", "SETUSER", "c", "+@all", "&*").Err(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitFor(t, "c to read the log again", func() bool { return c.PurgesReadAt().After(back) })
	if _, ok := cmem.Get(key); ok {
		t.Error("back after longer than purge_retention, c still serves an entry a purge it missed covered")
	}
}

// syncLog is a log sink safe for the listener's goroutine.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// With a short purge_retention (5s, shorter than the overlap of the log's
// reads), a replica that never lost Redis does not take its own routine
// polls for an absence longer than the retention (which empties memory).
func TestShortRetentionDoesNotEmptyMemoryEverySecond(t *testing.T) {
	url, prefix := redistest.Shared(t)
	var logs syncLog
	s, mem := startTier(t, shared.Config{URL: url, Prefix: prefix},
		SharedConfig{PurgeRetention: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const key = "/web/home/7\x00fp\x00"
	e := sampleEntry(`{"id":7}`)
	mem.Set(key, e, time.Hour)
	mem.Wait()
	if _, ok := mem.Get(key); !ok {
		t.Fatal("the entry did not reach memory")
	}
	// Two more successful reads of the purge log, with Redis up all along.
	for range 2 {
		at := s.PurgesReadAt()
		waitFor(t, "the next read of the purge log", func() bool { return s.PurgesReadAt().After(at) })
	}
	if _, ok := mem.Get(key); !ok {
		t.Errorf("a replica connected to Redis all along emptied its memory tier on a routine poll of the purge log; log:\n%s", logs.String())
	}
}

// A purge made on a replica that cannot reach Redis is published when
// Redis is back, even after an outage longer than purge_retention: the
// other replicas' memory tiers keep entries longer than that.
func TestPurgeOutlivingRetentionStillReachesOtherReplicas(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	ctx := context.Background()
	// a connects as its own user, so it alone can be cut off.
	if err := admin.Do(ctx, "ACL", "SETUSER", "a", "on", ">pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	const keep = 3 * time.Second
	tier := func(url string) (*Shared, *Cache) {
		return startTier(t, shared.Config{URL: url, Prefix: "late", OpenFor: 100 * time.Millisecond}, SharedConfig{PurgeRetention: keep})
	}
	a, _ := tier("redis://a:pw@" + srv.Addr)
	b, bmem := tier(srv.URL())
	const key = "/web/cart\x00fp\x00"
	bmem.Set(key, sampleEntry(`{"items":[]}`), time.Hour) // b's copy, fetched before the purge
	bmem.Wait()
	if _, ok := bmem.Get(key); !ok {
		t.Fatal("the entry did not reach b's memory")
	}

	if err := admin.Do(ctx, "ACL", "SETUSER", "a", "-@all", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to notice redis is away", func() bool { return !a.Available() })
	a.Purge("", "/web/cart") // a mutation on a: pending until redis takes it
	if a.PendingPurges() != 1 {
		t.Fatalf("pending purges on a: %d", a.PendingPurges())
	}
	// The outage outlasts the retention, and a's retries (at most 2s
	// apart) go on failing past it: the state under test.
	time.Sleep(keep + 3*time.Second)

	if err := admin.Do(ctx, "ACL", "SETUSER", "a", "+@all", "&*").Err(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitFor(t, "a to read the log again", func() bool { return a.PurgesReadAt().After(back) })
	waitFor(t, "a to have nothing left to publish", func() bool { return a.PendingPurges() == 0 })
	published := time.Now()
	waitFor(t, "b to read the log after that", func() bool { return b.PurgesReadAt().After(published) })
	if _, ok := bmem.Get(key); ok {
		t.Error("a purge made while redis was away never reached the other replica: it still serves the purged entry from memory")
	}
}

// An entry written with a 30s TTL has at most 30s left when it is read
// back, whoever's clock wrote it: a writer whose clock runs ahead (by two
// minutes here) must not make readers keep it in memory past its TTL.
func TestSharedEntryLeftIsBoundedByItsTTL(t *testing.T) {
	s, _, c, _ := newSharedTier(t)
	const key = "/web/home/7\x00fp\x00"
	ahead := time.Now().Add(2 * time.Minute) // the writing replica's clock
	e := NewEntry([]byte(`{"id":7}`), http.Header{"Content-Type": {"application/json"}}, ahead)
	e.Tag, e.Fetched = "web.home", ahead.Add(-time.Millisecond)
	s.Store(key, e, 30*time.Second, nil)
	waitStored(t, c, s.entryKey(key))
	_, left, ok := s.Get(context.Background(), key)
	if !ok {
		t.Fatal("the entry was not read back")
	}
	if left > 30*time.Second {
		t.Errorf("an entry stored for 30s is served for %s more (redis itself keeps it %s)", left.Round(time.Second),
			c.PTTL(context.Background(), s.entryKey(key)).Val().Round(time.Second))
	}
}

// Two deployments on one Redis kept apart by database number (…/0 for
// production, …/1 for staging), both with the default prefix: keys are per
// database, pub/sub channels per server, and staging's purge of everything
// must not empty production's memory tiers.
func TestPurgeStaysInItsDatabase(t *testing.T) {
	srv := redistest.Start(t)
	// The default prefix for both.
	prod, prodMem := startTier(t, shared.Config{URL: srv.URL() + "/0"}, SharedConfig{})
	staging, _ := startTier(t, shared.Config{URL: srv.URL() + "/1"}, SharedConfig{})
	const key = "/web/home/7\x00fp\x00"
	prodMem.Set(key, sampleEntry(`{"id":7}`), time.Hour)
	prodMem.Wait()
	if _, ok := prodMem.Get(key); !ok {
		t.Fatal("the entry did not reach memory")
	}

	staging.Purge("") // staging's operator empties staging's caches
	waitFor(t, "staging to publish its purge", func() bool { return staging.PendingPurges() == 0 })
	published := time.Now()
	waitFor(t, "production to read its own log after that", func() bool { return prod.PurgesReadAt().After(published) })
	if _, ok := prodMem.Get(key); !ok {
		t.Error("a purge made in database 1 emptied the memory tier of a replica using database 0")
	}
}

// A purge made while Redis was away is published at shutdown, for up to
// 2 s, also when Redis has just come back and the breaker is still open
// from the outage: its probe is due within them.
func TestCloseRightAfterRedisIsBackPublishesPendingPurges(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := shared.New(shared.Config{URL: srv.URL(), Prefix: "closing", OpenFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	mem, err := New(Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	s, err := NewShared(SharedConfig{Redis: rdb, Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the tier to read the purge log", s.Synced)

	srv.Kill()
	s.Purge("web.cart") // a mutation while redis is away
	waitFor(t, "the breaker to open", func() bool { return !s.Available() })
	srv.Restart() // redis is back; the breaker probes again within 1s
	s.Close()     // a rolling restart of this replica

	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer func() { _ = c.Close() }()
	if n := c.ZCard(context.Background(), "closing:purges").Val(); n != 1 {
		t.Errorf("after Close, the purge log holds %d purges; want the one made while redis was away (pending at Close: %d)", n, s.PendingPurges())
	}
}

// A purge older than the retention (published late, after an outage) is
// applied to memory once, though the purge log's overlapping reads bring
// it back several times: an entry stored after it stays.
func TestLatePurgeIsAppliedOnce(t *testing.T) {
	url, prefix := redistest.Shared(t)
	s, mem := startTier(t, shared.Config{URL: url, Prefix: prefix}, SharedConfig{PurgeRetention: 10 * time.Second})
	const key = "/web/cart\x00fp\x00"
	mem.Set(key, sampleEntry(`{"items":[]}`), time.Hour)
	mem.Wait()
	late, _ := json.Marshal(sharedPurge{ID: "elsewhere-1", Prefixes: []string{"/web/cart"}, At: time.Now().Add(-time.Minute).UnixNano()})
	if err := s.rdb.Client().ZAdd(context.Background(), s.purgeLog(), redis.Z{Score: float64(time.Now().UnixNano()), Member: late}).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the late purge applied", func() bool { _, ok := mem.Get(key); return !ok })
	mem.Set(key, sampleEntry(`{"items":["A-1"]}`), time.Hour) // the fresh answer after it
	mem.Wait()
	for range 2 { // the next reads still overlap the one that brought the purge
		at := s.PurgesReadAt()
		waitFor(t, "the next read of the purge log", func() bool { return s.PurgesReadAt().After(at) })
	}
	if _, ok := mem.Get(key); !ok {
		t.Error("the late purge was applied again by a later read of the log: the fresh entry is gone")
	}
}
