package cache

import (
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// liveHeap is the heap in use after collecting everything collectable.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// MaxBytes bounds the memory a cache of small answers (a badge, a
// counter, {"id":5}) holds, not only their bodies: an entry as bff stores
// it (Entry, header map, ETag, ristretto's records) costs about 1.2 KiB
// besides its body, and a per-entry charge of 512 B once let such a cache
// hold 2.3–2.6× its bound. (Generous slack: the heap is measured.)
func TestMaxBytesBoundsSmallEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a cache")
	}
	const maxBytes = 4 << 20
	c, err := New(Config{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// What bff's execute gives every entry (NewEntry adds the ETag).
	contentType := []string{"application/json"}
	cacheControl := []string{"public, max-age=300"}
	vary := []string{"Accept-Encoding, Accept-Language"}
	nosniff := []string{"nosniff"}
	before := liveHeap()
	const n = 40_000 // about four times what fits
	for i := 0; i < n; i++ {
		hdr := make(http.Header, 6)
		hdr["Content-Type"], hdr["Cache-Control"], hdr["Vary"], hdr["X-Content-Type-Options"] = contentType, cacheControl, vary, nosniff
		e := NewEntry([]byte(`{"id":`+strconv.Itoa(i%100000)+`}`), hdr, time.Now())
		e.Tag = "web.badge"
		c.Set("/web/badge/"+strconv.Itoa(i)+"\x00fingerprint0123\x00", e, time.Hour)
		if i%32 == 0 {
			c.Wait() // let the policy keep up, as the server's pace does
		}
	}
	c.Wait()
	held := int64(liveHeap()) - int64(before)
	st := c.Stats()
	t.Logf("entries %d, charged %d bytes (max %d), live heap held %d bytes (%.2f× max_bytes, %d bytes per entry)",
		st.Entries, st.Bytes, maxBytes, held, float64(held)/maxBytes, held/max(st.Entries, 1))
	if st.Bytes > maxBytes {
		t.Fatalf("charged %d bytes, over max %d", st.Bytes, maxBytes)
	}
	if held > maxBytes*7/4 {
		t.Errorf("a cache bounded at %d bytes holds %d bytes of live heap (%.2f× max_bytes): the per-entry overhead charged (%d B) is well under what an entry costs (%d B per entry here)",
			maxBytes, held, float64(held)/maxBytes, entryOverhead, held/max(st.Entries, 1))
	}
	runtime.KeepAlive(c)
}
