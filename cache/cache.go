package cache

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/klauspost/compress/zstd"
)

// Config sizes the cache.
type Config struct {
	// MaxBytes bounds the bytes of all entries (bodies, their compressed
	// variants and a small per-entry overhead). Zero turns the cache off:
	// every Get misses and Set does nothing.
	MaxBytes int64
}

// DefaultMaxBytes is a sane bound when none is configured.
const DefaultMaxBytes = 64 << 20

// entryOverhead is what an entry costs besides its bodies, measured: the
// Entry, its header map, ETag and Content-Length, and ristretto's records
// of it (about 1.2 KiB). Charged less, a cache of small answers (a badge,
// a counter) held twice its bound.
const entryOverhead = 1280

// Cache maps keys to entries until their TTL passes, space runs out, or a
// purge hides them.
type Cache struct {
	rc        *ristretto.Cache[string, *Entry]
	maxBytes  int64
	evictions atomic.Uint64
	purges    purges
}

// New builds a cache; with MaxBytes zero it builds a disabled one.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("cache: max bytes %d must not be negative", cfg.MaxBytes)
	}
	if cfg.MaxBytes == 0 {
		return &Cache{}, nil
	}
	// About ten counters per entry that fits, assuming ~2 KiB entries.
	counters := max(cfg.MaxBytes/2048*10, 10_000)
	c := &Cache{maxBytes: cfg.MaxBytes}
	c.purges.epoch.Store(1)
	rc, err := ristretto.NewCache(&ristretto.Config[string, *Entry]{
		NumCounters: counters,
		MaxCost:     cfg.MaxBytes,
		BufferItems: 64,
		// Cost is our own byte estimate; ristretto's 56-byte internal cost
		// per item would otherwise be added on top of it.
		IgnoreInternalCost: true,
		// Bytes and entries in use for metrics; a few atomic adds per call.
		Metrics: true,
		OnEvict: func(*ristretto.Item[*Entry]) { c.evictions.Add(1) },
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.rc = rc
	return c, nil
}

// Enabled reports whether the cache stores anything.
func (c *Cache) Enabled() bool { return c.rc != nil }

// Get returns a live entry.
func (c *Cache) Get(key string) (*Entry, bool) {
	if c.rc == nil {
		return nil, false
	}
	e, ok := c.rc.Get(key)
	if ok && c.purges.hides(key, e) {
		c.rc.Del(key)
		return nil, false
	}
	return e, ok
}

// Set stores e for ttl. It may be dropped under contention.
func (c *Cache) Set(key string, e *Entry, ttl time.Duration) {
	if c.rc == nil || ttl <= 0 {
		return
	}
	if e.Epoch == 0 {
		e.Epoch = c.Epoch()
	}
	c.purges.noteTTL(ttl)
	if c.purges.hides(key, e) {
		return // fetched before a purge that covers it
	}
	// Ristretto replaces a key it still holds (expired keys linger until its
	// cleanup, 5–10 s) in place, without admission or eviction, so a bigger
	// entry would slip past MaxBytes. Deleting first sends every Set through
	// the policy.
	c.rc.Del(key)
	c.rc.SetWithTTL(key, e, e.cost(), ttl)
}

// Delete drops the entry under key, if any.
func (c *Cache) Delete(key string) {
	if c.rc != nil {
		c.rc.Del(key)
	}
}

// Wait blocks until buffered Sets are applied (tests).
func (c *Cache) Wait() {
	if c.rc != nil {
		c.rc.Wait()
	}
}

// Stats describes the cache's use of memory.
type Stats struct {
	Enabled  bool
	MaxBytes int64
	// Bytes and Entries are in use now (estimates: entries past their TTL
	// count until ristretto's cleanup drops them).
	Bytes   int64
	Entries int64
	// Evictions counts entries dropped for space or at their TTL.
	Evictions uint64
}

// Stats reports the cache's current use.
func (c *Cache) Stats() Stats {
	if c.rc == nil {
		return Stats{}
	}
	m := c.rc.Metrics
	return Stats{
		Enabled:   true,
		MaxBytes:  c.maxBytes,
		Bytes:     max(int64(m.CostAdded()-m.CostEvicted()), 0),
		Entries:   max(int64(m.KeysAdded()-m.KeysEvicted()), 0),
		Evictions: c.evictions.Load(),
	}
}

// Close stops the cache's goroutines.
func (c *Cache) Close() {
	if c.rc != nil {
		c.rc.Close()
	}
}

// Entry is a cached response: its body and the headers sent with it.
type Entry struct {
	Body []byte
	// Header is sent with the body on every hit. It is shared by all
	// readers and must not be modified after the entry is created.
	Header   http.Header
	ETag     string
	StoredAt time.Time
	// Tag groups entries for Purge, e.g. by view. Optional.
	Tag string
	// Epoch is the cache's Epoch from before the data was fetched: a purge
	// after it hides the entry, even one that ran while it was being
	// fetched. Zero means the epoch at Set.
	Epoch uint64
	// Fetched is when the data began to be fetched, for the same purpose
	// across replicas: a purge on another replica after it covers the
	// entry in the shared tier. Epochs are per process; this is wall time.
	Fetched time.Time

	contentLength []string
	fields        []field // Header as a slice: cheaper to copy on every hit
	gzipped       atomic.Pointer[[]byte]
	zstded        atomic.Pointer[[]byte]
}

type field struct {
	key    string
	values []string
}

// NewEntry makes an entry for body, adding a weak ETag (the same bytes give
// the same tag on every replica) to header.
func NewEntry(body []byte, header http.Header, now time.Time) *Entry {
	etag := ETag(body)
	if header == nil {
		header = http.Header{}
	}
	header["Etag"] = []string{etag}
	e := &Entry{
		Body:          body,
		Header:        header,
		ETag:          etag,
		StoredAt:      now,
		contentLength: []string{strconv.Itoa(len(body))},
		fields:        make([]field, 0, len(header)),
	}
	for k, v := range header {
		e.fields = append(e.fields, field{k, v})
	}
	return e
}

// CopyHeader sets the entry's headers on dst, sharing their values.
func (e *Entry) CopyHeader(dst http.Header) {
	for _, f := range e.fields {
		dst[f.key] = f.values
	}
}

// ETag is the weak entity tag of body.
func ETag(body []byte) string {
	var b [3 + 16 + 1]byte
	out := append(b[:0], `W/"`...)
	out = strconv.AppendUint(out, xxhash.Sum64(body), 16)
	return string(append(out, '"'))
}

// ContentLength is the body's length, formatted once.
func (e *Entry) ContentLength() []string { return e.contentLength }

// Gzip returns the body gzip-compressed, compressing it on first use; nil
// if it does not shrink to its share (see cost): then send the body.
func (e *Entry) Gzip() []byte {
	return e.variant(&e.gzipped, GzipBytes)
}

// Zstd returns the body zstd-compressed, compressing it on first use; nil
// if it does not shrink to its share (see cost): then send the body.
func (e *Entry) Zstd() []byte {
	return e.variant(&e.zstded, func(b []byte) []byte {
		return zstdEncoder.EncodeAll(b, make([]byte, 0, len(b)/3+64))
	})
}

// variant keeps a compressed variant only within the room cost charged
// for it, so the cache's bound holds for bodies that hardly compress
// (ids, hashes, base64); for those it keeps an empty marker and says nil.
func (e *Entry) variant(slot *atomic.Pointer[[]byte], compress func([]byte) []byte) []byte {
	p := slot.Load()
	if p == nil {
		z := compress(e.Body)
		if len(z) > variantRoom(len(e.Body)) {
			z = []byte{}
		} else if cap(z) > len(z) {
			z = append([]byte(nil), z...) // the buffer's spare room is not charged
		}
		slot.CompareAndSwap(nil, &z)
		p = slot.Load()
	}
	if len(*p) == 0 {
		return nil
	}
	return *p
}

// variantRoom is what an entry is charged for each compressed variant:
// JSON shrinks to well under a third.
func variantRoom(bodyLen int) int { return bodyLen / 3 }

// zstdEncoder is safe for concurrent EncodeAll calls.
var zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))

func (e *Entry) cost() int64 {
	// Room for the gzip and zstd variants (variantRoom each).
	return int64(len(e.Body)+2*variantRoom(len(e.Body))) + entryOverhead
}

// GzipBytes compresses b at the default level.
func GzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/3 + 64)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	gzipWriters.Put(zw)
	return buf.Bytes()
}

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
