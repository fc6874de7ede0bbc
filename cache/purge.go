package cache

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Purging by tag or key prefix cannot walk ristretto, which does not list
// its keys. Instead each purge is remembered with the epoch it ended, and
// an entry from an earlier epoch that it covers is a miss (and dropped) when
// next read. A purge is forgotten once every entry it could cover has
// expired anyway.

// maxPurges bounds the remembered purges; past it they collapse into one
// purge of everything, which hides more than asked but never too little.
const maxPurges = 256

type purge struct {
	epoch    uint64 // entries with a smaller epoch are covered
	tag      string // "" covers every tag
	prefixes []string
	at       time.Time
}

type purges struct {
	mu     sync.Mutex
	epoch  atomic.Uint64
	list   atomic.Pointer[[]purge] // copy-on-write; nil when none
	maxTTL atomic.Int64
	// forgotten is the newest epoch of a purge no longer remembered: an
	// entry fetched before it may be covered, so it is taken as covered.
	// It matters for a fetch still running when its purge is forgotten
	// (the longest TTL seen is 0 before the first Set).
	forgotten atomic.Uint64
}

// Epoch is the current purge epoch. Take it before fetching what will be
// stored (Entry.Epoch), so that a purge during the fetch covers the result.
func (c *Cache) Epoch() uint64 { return c.purges.epoch.Load() }

// Hidden reports whether a purge made since e was stored covers it: a copy
// read before a fetch may have been purged while the fetch ran.
func (c *Cache) Hidden(key string, e *Entry) bool { return c.purges.hides(key, e) }

// Purge hides every entry whose Tag is tag (any tag if empty) and whose key
// starts with one of prefixes (any key if none), including entries being
// fetched right now. Purge("") empties the cache.
func (c *Cache) Purge(tag string, prefixes ...string) {
	// With no memory to hide entries in, the epoch still moves: misses
	// coalesce on it (see bff's flight keys).
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	c.purges.add(tag, prefixes, time.Now())
}

func (p *purges) add(tag string, prefixes []string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	epoch := p.epoch.Add(1) // entries from before this purge have smaller epochs
	horizon := now.Add(-time.Duration(p.maxTTL.Load()))
	var kept []purge
	if old := p.list.Load(); old != nil {
		for _, q := range *old {
			if q.at.After(horizon) {
				kept = append(kept, q)
			} else if q.epoch > p.forgotten.Load() {
				p.forgotten.Store(q.epoch)
			}
		}
	}
	kept = append(kept, purge{epoch: epoch, tag: tag, prefixes: prefixes, at: now})
	if len(kept) > maxPurges {
		kept = []purge{{epoch: epoch, prefixes: []string{""}, at: now}}
	}
	p.list.Store(&kept)
}

// hides reports whether a purge covers e, stored under key.
func (p *purges) hides(key string, e *Entry) bool {
	if e.Epoch < p.forgotten.Load() {
		return true
	}
	list := p.list.Load()
	if list == nil {
		return false
	}
	for i := range *list {
		q := &(*list)[i]
		if e.Epoch < q.epoch && covers(q.tag, q.prefixes, key, e.Tag) {
			return true
		}
	}
	return false
}

// covers reports whether a purge of tag ("" for any) and key prefixes
// reaches an entry of entryTag under key. Both tiers judge by it.
func covers(tag string, prefixes []string, key, entryTag string) bool {
	return (tag == "" || tag == entryTag) &&
		slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(key, p) })
}

// noteTTL keeps the longest TTL seen: purges older than it cover nothing.
func (p *purges) noteTTL(ttl time.Duration) {
	for {
		cur := p.maxTTL.Load()
		if int64(ttl) <= cur || p.maxTTL.CompareAndSwap(cur, int64(ttl)) {
			return
		}
	}
}
