package cache

import (
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"testing"
	"time"
)

// A response fetched while a purge ran is not stored, even if another,
// unrelated purge follows before the fetch ends. Purges are forgotten once
// older than the longest TTL seen so far, which is zero until the first
// Set: the second purge dropped the first once, and the entry it should
// have hidden was stored (a read in flight right after start-up while two
// mutations invalidate two views).
func TestPurgeDuringFetchNotForgottenByLaterPurge(t *testing.T) {
	c := newCache(t, 1<<20)
	epoch := c.Epoch()      // a fetch of /web/a/1 starts
	c.Purge("", "/web/a/1") // a mutation invalidates it while upstreams answer
	c.Purge("", "/web/b/1") // another, unrelated purge
	e := NewEntry([]byte(`"old"`), nil, time.Now())
	e.Epoch = epoch
	c.Set("/web/a/1", e, time.Hour)
	c.Wait()
	if _, ok := c.Get("/web/a/1"); ok {
		t.Error("an entry fetched before a purge that covers it was stored and served: the purge was forgotten when an unrelated purge followed")
	}
}

// MaxBytes bounds "bodies + compressed variants + overhead" (README,
// cache.max_bytes). An entry is charged len(body) + 2×len(body)/3 + 512;
// a variant that does not fit its third (ids, hashes, base64 blobs in
// JSON) is not kept, so the bound holds once clients ask for gzip and
// zstd.
func TestCompressedVariantsStayWithinMaxBytes(t *testing.T) {
	const maxBytes = 64 << 10
	c := newCache(t, maxBytes)

	var keys []string
	for i := range 40 {
		k := "key-" + strconv.Itoa(i)
		keys = append(keys, k)
		raw := make([]byte, 3<<10)
		_, _ = rand.Read(raw)
		body := []byte(`{"k":"` + k + `","blob":"` + base64.StdEncoding.EncodeToString(raw) + `"}`)
		c.Set(k, NewEntry(body, nil, time.Now()), time.Hour)
		c.Wait()
	}
	var held int64
	n := 0
	for _, k := range keys {
		e, ok := c.Get(k)
		if !ok {
			continue
		}
		n++
		// Two hits, one from a client that prefers zstd, one that takes gzip.
		held += int64(len(e.Body) + len(e.Gzip()) + len(e.Zstd()))
	}
	if held > maxBytes {
		t.Errorf("%d retrievable entries hold %d bytes of bodies and compressed variants, more than MaxBytes %d (%.2f×)",
			n, held, maxBytes, float64(held)/maxBytes)
	}
}
