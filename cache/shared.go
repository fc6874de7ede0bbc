package cache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bffproxy/bff/internal/shared"
	"github.com/redis/go-redis/v9"
)

// SharedConfig configures the shared tier. Redis and Memory are required.
type SharedConfig struct {
	Redis *shared.Redis
	// Memory is this replica's first tier: purges from other replicas
	// are applied to it.
	Memory *Cache
	// Lock makes replicas that miss the same key wait for the one that
	// took a short lock in Redis, instead of all asking the upstreams.
	Lock bool
	// LockTTL frees a lock whose holder died. Default 10s.
	LockTTL time.Duration
	// LockWait bounds the wait for another replica's fetch; then the
	// waiter fetches anyway. Default 1s.
	LockWait time.Duration
	// MaxValueBytes keeps larger responses in memory only. Default 1 MiB.
	MaxValueBytes int
	// PurgeRetention is how long purges are remembered in Redis for
	// replicas that were away; no entry lives longer in Redis. Default 1h.
	PurgeRetention time.Duration
	// ClockSkew is how far replicas' clocks may disagree: a purge covers
	// shared entries fetched up to this long after it. Default 250ms.
	ClockSkew time.Duration
	Logger    *slog.Logger
}

// Shared is the second cache tier: Redis, shared by every replica. A miss
// in memory asks it before the upstreams, and fresh responses are written
// to it in the background. Purges reach every replica's memory tier over
// pub/sub and hide older entries in Redis. Every call degrades to a miss
// when Redis fails.
type Shared struct {
	rdb      *shared.Redis
	memory   *Cache
	lock     bool
	lockTTL  time.Duration
	lockWait time.Duration
	maxValue int
	keep     time.Duration
	skew     time.Duration
	log      *slog.Logger
	origin   string // this replica, to skip its own purges coming back
	// purgeChannel is where purges are published (see NewShared).
	purgeChannel string

	ctx     context.Context // ends at Close
	stop    context.CancelFunc
	tasks   sync.WaitGroup
	closing sync.RWMutex // held to read closed and add a task at once
	closed  bool
	writes  chan struct{} // bounds background writes
	dropped atomic.Uint64

	mu      sync.Mutex
	known   []sharedPurge        // purges seen, by At, oldest first; at most maxKnownPurges
	seen    map[string]struct{}  // their ids
	late    map[string]time.Time // ids of purges applied though older than the retention, and when
	pending []sharedPurge        // to publish when Redis takes them
	kick    chan struct{}
	seq     atomic.Uint64

	lastRead atomic.Int64 // when the last successful read of the purge log began (unix ns); 0: never
	readFrom int64        // the next read's lower bound (log score, unix ns); the listener's alone
}

// The purge log is read every purgeLogPoll besides pub/sub, so a purge
// reaches every replica within about that even when pub/sub silently
// broke (a failover behind a virtual IP, a NAT dropping an idle flow).
// Each read starts purgeLogOverlap before the last one began, for clocks
// and transactions in flight. A replica that has not read the log for
// syncGrace reads nothing from Redis: it may have missed a purge.
const (
	purgeLogPoll    = time.Second
	purgeLogOverlap = 5 * time.Second
	syncGrace       = 5 * time.Second
)

// maxKnownPurges bounds the purges remembered, here and in Redis's log.
// Past it the oldest collapse into one purge of everything at the newest
// of them: more is hidden than was asked, never less.
const maxKnownPurges = 4096

// sharedPurge is a purge as replicas tell each other: At is the purging
// replica's clock. Its score in the log is when it was logged, which can
// be much later (it waited for Redis to come back).
type sharedPurge struct {
	ID       string   `json:"id"`
	Tag      string   `json:"tag,omitempty"`
	Prefixes []string `json:"prefixes"`
	At       int64    `json:"at"` // unix ns
}

// NewShared builds the tier and starts listening for other replicas'
// purges. Close stops it.
func NewShared(cfg SharedConfig) (*Shared, error) {
	if cfg.Redis == nil || cfg.Memory == nil {
		return nil, errors.New("cache: shared tier needs Redis and Memory")
	}
	def := func(d, v time.Duration) time.Duration {
		if d <= 0 {
			return v
		}
		return d
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &Shared{
		rdb:      cfg.Redis,
		memory:   cfg.Memory,
		lock:     cfg.Lock,
		lockTTL:  def(cfg.LockTTL, 10*time.Second),
		lockWait: def(cfg.LockWait, time.Second),
		maxValue: cfg.MaxValueBytes,
		keep:     def(cfg.PurgeRetention, time.Hour),
		skew:     def(cfg.ClockSkew, 250*time.Millisecond),
		log:      cfg.Logger,
		origin:   hex.EncodeToString(id[:]),
		writes:   make(chan struct{}, 64),
		seen:     map[string]struct{}{},
		late:     map[string]time.Time{},
		kick:     make(chan struct{}, 1),
	}
	if s.maxValue <= 0 {
		s.maxValue = 1 << 20
	}
	// Keys are per database, pub/sub channels per server: deployments kept
	// apart by database number must not hear each other's purges.
	s.purgeChannel = s.rdb.Prefix() + ":purge"
	if db := s.rdb.Client().Options().DB; db != 0 {
		s.purgeChannel += ":db" + strconv.Itoa(db)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	s.tasks.Add(2)
	go s.listen()
	go s.publish()
	return s, nil
}

// Close publishes pending purges (for up to 2s: they would be lost with
// the process), stops listening and waits for background writes.
func (s *Shared) Close() {
	// Also while the breaker is open: Redis may be back, and its probe due.
	for deadline := time.Now().Add(2 * time.Second); s.PendingPurges() > 0 && time.Now().Before(deadline); {
		select {
		case s.kick <- struct{}{}:
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.closing.Lock()
	s.closed = true
	s.closing.Unlock()
	s.stop()
	s.tasks.Wait()
}

// PendingPurges counts purges made here and not yet published.
func (s *Shared) PendingPurges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Locking reports whether replicas coalesce misses through a Redis lock.
func (s *Shared) Locking() bool { return s.lock }

// Available reports whether Redis is being asked at all (its breaker is
// not open).
func (s *Shared) Available() bool { return s.rdb.Available() }

// PurgesReadAt is when the last successful read of the purge log began:
// every purge published before it has been applied here.
func (s *Shared) PurgesReadAt() time.Time {
	if at := s.lastRead.Load(); at != 0 {
		return time.Unix(0, at)
	}
	return time.Time{}
}

// Synced reports whether this replica has read the purge log lately;
// until it has, nothing is read from the shared tier.
func (s *Shared) Synced() bool {
	at := s.lastRead.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < syncGrace
}

// DroppedWrites counts responses not written to Redis because too many
// writes were already under way.
func (s *Shared) DroppedWrites() uint64 { return s.dropped.Load() }

func (s *Shared) entryKey(key string) string { return s.rdb.Prefix() + ":e:" + hashKey(key) }
func (s *Shared) lockKey(key string) string  { return s.rdb.Prefix() + ":l:" + hashKey(key) }
func (s *Shared) purgeLog() string           { return s.rdb.Prefix() + ":purges" }
func (s *Shared) channel() string            { return s.purgeChannel }

// hashKey keeps the caller's key (paths, languages, user identities) out of
// Redis and bounds its length; SHA-256 keeps distinct keys apart, so a
// per-user entry can never be read under a public key.
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Get returns the shared entry for key and how much of its TTL is left.
// Any failure is a miss.
func (s *Shared) Get(ctx context.Context, key string) (*Entry, time.Duration, bool) {
	if !s.Synced() {
		return nil, 0, false // a purge this replica has not heard of may cover it
	}
	var raw []byte
	err := s.rdb.Do(ctx, "get", func(ctx context.Context, c *redis.Client) error {
		var err error
		raw, err = c.Get(ctx, s.entryKey(key)).Bytes()
		return err
	})
	if err != nil {
		return nil, 0, false
	}
	return s.decode(key, raw)
}

func (s *Shared) decode(key string, raw []byte) (*Entry, time.Duration, bool) {
	e, ttl, err := decodeEntry(raw)
	if err != nil {
		return nil, 0, false
	}
	// The writer's clock may run ahead of ours: an entry is never younger
	// than now here (its freshness is judged from StoredAt), so never kept
	// longer than its TTL.
	if now := time.Now(); e.StoredAt.After(now) {
		e.StoredAt = now
	}
	left := ttl - time.Since(e.StoredAt)
	if left <= 0 || s.purged(key, e.Tag, e.Fetched) {
		return nil, 0, false
	}
	return e, left, true
}

// Store writes e to Redis in the background, unless a purge since it was
// fetched covers it; then it releases lock, if any. A write that would
// wait for a slot is dropped: the response is still cached in memory.
func (s *Shared) Store(key string, e *Entry, ttl time.Duration, lock *Lock) {
	// No entry outlives the purges that could cover it: a replica away
	// longer than the log keeps them could not know of them.
	ttl = min(ttl, s.keep-time.Since(e.Fetched)-s.skew)
	if ttl <= 0 || len(e.Body) > s.maxValue || s.ctx.Err() != nil || s.purged(key, e.Tag, e.Fetched) || !s.rdb.Available() {
		lock.Release()
		return
	}
	select {
	case s.writes <- struct{}{}:
	default:
		s.dropped.Add(1)
		lock.Release()
		return
	}
	// Counted under closing's read lock, so Close never waits while a
	// write is still being added (a WaitGroup's Add must not race its Wait).
	s.closing.RLock()
	if s.closed {
		s.closing.RUnlock()
		<-s.writes
		lock.Release()
		return
	}
	s.tasks.Add(1)
	s.closing.RUnlock()
	go func() {
		defer s.tasks.Done()
		defer func() { <-s.writes }()
		val := encodeEntry(e, ttl)
		_ = s.rdb.Do(s.ctx, "set", func(ctx context.Context, c *redis.Client) error {
			return c.Set(ctx, s.entryKey(key), val, ttl).Err()
		})
		lock.Release()
	}()
}

// Lock is a short lock on one key in Redis, held while its replica fetches.
type Lock struct {
	s     *Shared
	key   string
	token string
	once  sync.Once
}

var releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)

// Release frees the lock if this replica still holds it. Nil is a no-op.
func (l *Lock) Release() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		// Not s.ctx: a release during Close must still reach Redis, or the
		// other replicas wait lock_wait on every miss of the key until
		// lock_ttl. The command timeout bounds it.
		_ = l.s.rdb.Do(context.Background(), "unlock", func(ctx context.Context, c *redis.Client) error {
			return releaseScript.Run(ctx, c, []string{l.s.lockKey(l.key)}, l.token).Err()
		})
	})
}

// TryLock takes the lock for key. won is true when this replica should
// fetch: it took the lock (lock is then non-nil), or Redis could not say.
// won false means another replica is fetching: Await its result.
func (s *Shared) TryLock(ctx context.Context, key string) (lock *Lock, won bool) {
	var token [12]byte
	_, _ = rand.Read(token[:])
	l := &Lock{s: s, key: key, token: hex.EncodeToString(token[:])}
	var took bool
	err := s.rdb.Do(ctx, "lock", func(ctx context.Context, c *redis.Client) error {
		var err error
		took, err = c.SetNX(ctx, s.lockKey(key), l.token, s.lockTTL).Result()
		return err
	})
	switch {
	case err != nil:
		return nil, true
	case took:
		return l, true
	}
	return nil, false
}

// Await waits for the replica holding key's lock to store a result that
// accept takes (the entry there may be one a purge hides, or past its
// view's TTL: the one being replaced), and returns it. It gives up,
// returning false, when the lock goes without such a result (that fetch
// failed or was partial), when LockWait passes, or when Redis fails.
func (s *Shared) Await(ctx context.Context, key string, accept func(*Entry) bool) (*Entry, time.Duration, bool) {
	if !s.Synced() {
		return nil, 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, s.lockWait)
	defer cancel()
	entry, lock := s.entryKey(key), s.lockKey(key)
	pause := 2 * time.Millisecond
	for released := false; ; {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, false
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
		var get *redis.StringCmd
		var held *redis.IntCmd
		err := s.rdb.Do(ctx, "await", func(ctx context.Context, c *redis.Client) error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				get = p.Get(ctx, entry)
				held = p.Exists(ctx, lock)
				return nil
			})
			return err
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, 0, false
		}
		if raw, err := get.Bytes(); err == nil {
			if e, left, ok := s.decode(key, raw); ok && accept(e) {
				return e, left, true
			}
		}
		if released {
			return nil, 0, false
		}
		// Gone: one more look, since the holder may have written between
		// the two commands.
		released = held.Val() == 0
	}
}

// Purge tells every replica to purge (see Cache.Purge): their memory tiers
// over pub/sub, and entries in Redis by hiding those fetched before now.
// The caller purges its own memory tier. If Redis is down, the purge is
// published when it is back.
func (s *Shared) Purge(tag string, prefixes ...string) {
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	p := sharedPurge{
		ID:       s.origin + "-" + strconv.FormatUint(s.seq.Add(1), 10),
		Tag:      tag,
		Prefixes: prefixes,
		At:       time.Now().UnixNano(),
	}
	s.mu.Lock()
	s.remember(p)
	s.pending = append(s.pending, p)
	if len(s.pending) > maxKnownPurges {
		// Redis has been away a long time: one purge of everything stands
		// for them all, rather than replaying thousands on its return.
		all := p
		all.Tag, all.Prefixes = "", []string{""}
		s.pending = append(s.pending[:0], all)
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// remember adds p to the purges that hide shared entries, forgetting
// those older than the retention. Callers hold mu.
func (s *Shared) remember(p sharedPurge) bool {
	if _, dup := s.seen[p.ID]; dup {
		return false
	}
	now := time.Now()
	if p.At < now.Add(-s.keep).UnixNano() {
		// Older than the retention (published late, after an outage): it
		// hides no entry in Redis, but replicas' memory is purged, once,
		// though the log's overlapping reads bring it back a few times.
		if _, dup := s.late[p.ID]; dup {
			return false
		}
		for id, at := range s.late {
			if now.Sub(at) > 4*purgeLogOverlap {
				delete(s.late, id)
			}
		}
		s.late[p.ID] = now
		return true
	}
	s.seen[p.ID] = struct{}{}
	// Purges arrive nearly in order: insert from the back.
	i := len(s.known)
	for i > 0 && s.known[i-1].At > p.At {
		i--
	}
	s.known = slices.Insert(s.known, i, p)
	horizon := now.Add(-s.keep).UnixNano()
	drop := 0
	for drop < len(s.known) && s.known[drop].At < horizon {
		drop++
	}
	if over := len(s.known) - drop - maxKnownPurges; over > 0 {
		floor := s.known[drop+over] // becomes a purge of everything at its time
		drop += over
		floor.Tag, floor.Prefixes = "", []string{""}
		s.known[drop] = floor
	}
	for _, q := range s.known[:drop] {
		delete(s.seen, q.ID)
	}
	s.known = slices.Delete(s.known, 0, drop)
	return true
}

// purged reports whether a known purge covers an entry of tag under key
// fetched at the given time.
// Covered reports whether a purge known here since e was fetched covers
// it (see purged).
func (s *Shared) Covered(key string, e *Entry) bool { return s.purged(key, e.Tag, e.Fetched) }

func (s *Shared) purged(key, tag string, fetched time.Time) bool {
	at := fetched.Add(-s.skew).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Only purges after the fetch matter: newest first, stop at the fetch.
	for i := len(s.known) - 1; i >= 0 && s.known[i].At > at; i-- {
		if p := &s.known[i]; covers(p.Tag, p.Prefixes, key, tag) {
			return true
		}
	}
	return false
}

// publish sends pending purges: into the log that replicas read when they
// (re)connect, and on the channel for those listening now. Failed sends
// are retried until Redis takes them.
func (s *Shared) publish() {
	defer s.tasks.Done()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	pause := 100 * time.Millisecond
	for {
		select {
		case <-s.ctx.Done():
			retry.Stop()
			return
		case <-s.kick:
		case <-retry.C:
		}
		s.mu.Lock()
		batch := slices.Clone(s.pending)
		s.mu.Unlock()
		sent := 0
		for _, p := range batch {
			if !s.send(p) {
				break
			}
			sent++
		}
		s.mu.Lock()
		// By id: pending may have been collapsed while the batch was sent.
		done := make(map[string]bool, sent)
		for _, p := range batch[:sent] {
			done[p.ID] = true
		}
		// A purge older than the retention is still sent: it hides no entry
		// in Redis any more, but memory tiers keep theirs longer.
		s.pending = slices.DeleteFunc(s.pending, func(p sharedPurge) bool { return done[p.ID] })
		left := len(s.pending)
		s.mu.Unlock()
		if left > 0 {
			retry.Reset(pause)
			pause = min(2*pause, 2*time.Second)
		} else {
			pause = 100 * time.Millisecond
		}
	}
}

func (s *Shared) send(p sharedPurge) bool {
	msg, _ := json.Marshal(p)
	err := s.rdb.Do(s.ctx, "purge", func(ctx context.Context, c *redis.Client) error {
		_, err := c.TxPipelined(ctx, func(tx redis.Pipeliner) error {
			tx.ZAdd(ctx, s.purgeLog(), redis.Z{Score: float64(time.Now().UnixNano()), Member: msg})
			tx.ZRemRangeByScore(ctx, s.purgeLog(), "-inf", strconv.FormatInt(time.Now().Add(-s.keep).UnixNano(), 10))
			tx.Expire(ctx, s.purgeLog(), s.keep)
			tx.Publish(ctx, s.channel(), msg)
			return nil
		})
		if err != nil {
			return err
		}
		return s.trim(ctx, c)
	})
	return err == nil
}

// trim bounds the purge log: once it is well past maxKnownPurges, the
// oldest are replaced by one purge of everything at the newest of their
// times. Removing by score makes replicas trimming at once harmless.
func (s *Shared) trim(ctx context.Context, c *redis.Client) error {
	n, err := c.ZCard(ctx, s.purgeLog()).Result()
	if err != nil || n <= maxKnownPurges+256 {
		return err
	}
	old, err := c.ZRangeWithScores(ctx, s.purgeLog(), 0, n-maxKnownPurges-1).Result()
	if err != nil || len(old) == 0 {
		return err
	}
	cut := strconv.FormatFloat(old[len(old)-1].Score, 'f', -1, 64)
	gone, err := c.ZRangeByScore(ctx, s.purgeLog(), &redis.ZRangeBy{Min: "-inf", Max: cut}).Result()
	if err != nil {
		return err
	}
	floor := sharedPurge{Prefixes: []string{""}}
	for _, m := range gone {
		var p sharedPurge
		if json.Unmarshal([]byte(m), &p) == nil && p.At > floor.At {
			floor.At = p.At
		}
	}
	floor.ID = "floor-" + strconv.FormatInt(floor.At, 10)
	msg, _ := json.Marshal(floor)
	_, err = c.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.ZRemRangeByScore(ctx, s.purgeLog(), "-inf", cut)
		tx.ZAdd(ctx, s.purgeLog(), redis.Z{Score: old[len(old)-1].Score, Member: msg})
		return nil
	})
	return err
}

// listen applies other replicas' purges as they are published, and reads
// the purge log at start, after every (re)subscription and every
// purgeLogPoll, for those pub/sub did not bring.
func (s *Shared) listen() {
	defer s.tasks.Done()
	ps := s.rdb.Client().Subscribe(s.ctx, s.channel())
	ch := ps.ChannelWithSubscriptions(redis.WithChannelHealthCheckInterval(time.Second))
	defer func() {
		_ = ps.Close()
		// go-redis's reader may be blocked handing over a message (for up
		// to a minute): take what it has until it sees the close.
		for range ch {
		}
	}()
	poll := time.NewTicker(purgeLogPoll)
	defer poll.Stop()
	s.readLog()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-poll.C:
			s.readLog()
		case m, ok := <-ch:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Subscription:
				s.readLog() // (re)connected: what was published meanwhile, now
			case *redis.Message:
				s.received([]byte(m.Payload))
			}
		}
	}
}

// readLog applies the purges logged since the last read began (all of
// the retention on the first), less an overlap.
func (s *Shared) readLog() {
	began := time.Now()
	from := s.readFrom
	if from == 0 {
		from = began.Add(-s.keep).UnixNano()
	}
	var msgs []string
	err := s.rdb.Do(s.ctx, "purges", func(ctx context.Context, c *redis.Client) error {
		var err error
		msgs, err = c.ZRangeByScore(ctx, s.purgeLog(), &redis.ZRangeBy{
			Min: strconv.FormatInt(from, 10), Max: "+inf",
		}).Result()
		return err
	})
	if err != nil {
		return
	}
	// Away for longer than the log keeps purges, this replica may have
	// missed some that covered what its memory holds: it forgets it all.
	// Judged from the last read, not from where this one starts (which
	// overlaps it, and may reach past a short retention on every poll).
	if last := s.lastRead.Load(); last != 0 && began.UnixNano()-last > s.keep.Nanoseconds() {
		s.memory.Purge("")
		s.log.Warn("redis was out of reach for longer than purge_retention: purges may have been missed, so the memory cache was emptied",
			"away", time.Duration(began.UnixNano()-last).Round(time.Second).String())
	}
	for _, m := range msgs {
		s.received([]byte(m))
	}
	s.readFrom = began.Add(-purgeLogOverlap).UnixNano()
	s.lastRead.Store(began.UnixNano())
}

// received applies one published purge, once.
func (s *Shared) received(msg []byte) {
	var p sharedPurge
	if err := json.Unmarshal(msg, &p); err != nil || p.ID == "" || len(p.Prefixes) == 0 {
		s.log.Warn("ignoring a malformed purge message in redis", "channel", s.channel())
		return
	}
	s.mu.Lock()
	fresh := s.remember(p)
	s.mu.Unlock()
	if fresh && !strings.HasPrefix(p.ID, s.origin+"-") {
		s.memory.Purge(p.Tag, p.Prefixes...)
	}
}
