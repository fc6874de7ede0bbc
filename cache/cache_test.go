package cache

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: ristretto
// starts two per cache, so every test must Close what it opens.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newCache builds a cache that is closed when the test ends.
func newCache(t testing.TB, maxBytes int64) *Cache {
	t.Helper()
	c, err := New(Config{MaxBytes: maxBytes})
	if err != nil {
		t.Fatalf("New(%d): %v", maxBytes, err)
	}
	t.Cleanup(c.Close)
	return c
}

// body returns n bytes that start with key, so an entry can be told apart
// from every other one by its body alone.
func body(key string, n int) []byte {
	b := bytes.Repeat([]byte{'.'}, n)
	copy(b, key)
	return b
}

// waitFor polls cond until it holds, failing the test after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64
		enabled  bool
		wantErr  bool
	}{
		{name: "negative", maxBytes: -1, wantErr: true},
		{name: "zero disables", maxBytes: 0, enabled: false},
		{name: "tiny", maxBytes: 1, enabled: true},
		{name: "default", maxBytes: DefaultMaxBytes, enabled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{MaxBytes: tt.maxBytes})
			if tt.wantErr {
				if err == nil {
					c.Close()
					t.Fatalf("New(%d): want an error", tt.maxBytes)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%d): %v", tt.maxBytes, err)
			}
			defer c.Close()
			if got := c.Enabled(); got != tt.enabled {
				t.Errorf("Enabled() = %v, want %v", got, tt.enabled)
			}
		})
	}
}

func TestSetGet(t *testing.T) {
	c := newCache(t, 1<<20)
	e := NewEntry([]byte(`{"a":1}`), nil, time.Now())
	c.Set("k", e, time.Hour)
	c.Wait()

	got, ok := c.Get("k")
	if !ok {
		t.Fatal(`Get("k") missed after Set and Wait`)
	}
	if got != e {
		t.Errorf(`Get("k") = %p, want the entry that was set (%p)`, got, e)
	}
	if got, ok := c.Get("other"); ok {
		t.Errorf(`Get("other") = %v, want a miss`, got)
	}
}

func TestSetReplaces(t *testing.T) {
	c := newCache(t, 1<<20)
	old := NewEntry([]byte("old"), nil, time.Now())
	cur := NewEntry([]byte("new"), nil, time.Now())
	c.Set("k", old, time.Hour)
	c.Wait()
	c.Set("k", cur, time.Hour)
	c.Wait()

	// A miss is allowed (a Set may be dropped); the old entry is not.
	if got, ok := c.Get("k"); ok && got != cur {
		t.Errorf(`Get("k") body %q, want %q`, got.Body, cur.Body)
	}
}

func TestSetWithoutTTLIsNotStored(t *testing.T) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		t.Run(ttl.String(), func(t *testing.T) {
			c := newCache(t, 1<<20)
			c.Set("k", NewEntry([]byte("x"), nil, time.Now()), ttl)
			c.Wait()
			if _, ok := c.Get("k"); ok {
				t.Errorf("Get hit after Set with ttl %v, want a miss", ttl)
			}
		})
	}
}

func TestTTLExpires(t *testing.T) {
	c := newCache(t, 1<<20)
	c.Set("short", NewEntry([]byte("short"), nil, time.Now()), 5*time.Millisecond)
	c.Set("long", NewEntry([]byte("long"), nil, time.Now()), time.Hour)
	c.Wait()

	waitFor(t, "the short entry to expire", func() bool {
		_, ok := c.Get("short")
		return !ok
	})
	if _, ok := c.Get("long"); !ok {
		t.Error(`Get("long") missed: an unexpired entry went with the expired one`)
	}
}

func TestPurgeAll(t *testing.T) {
	c := newCache(t, 1<<20)
	c.Set("k", NewEntry([]byte("x"), nil, time.Now()), time.Hour)
	c.Wait()
	c.Purge("", "")
	if _, ok := c.Get("k"); ok {
		t.Error("Get hit after Purge of everything")
	}

	// The cache keeps working after a purge.
	e := NewEntry([]byte("y"), nil, time.Now())
	c.Set("k", e, time.Hour)
	c.Wait()
	if got, ok := c.Get("k"); !ok || got != e {
		t.Errorf("Get after Purge and Set = %v, %v; want the new entry", got, ok)
	}
}

func TestPurgeByTagAndPrefix(t *testing.T) {
	c := newCache(t, 1<<20)
	set := func(key, tag string) {
		e := NewEntry([]byte(`"`+key+`"`), nil, time.Now())
		e.Tag = tag
		c.Set(key, e, time.Hour)
	}
	set("/web/home/7", "web/home")
	set("/web/home/8", "web/home")
	set("/web/orders/1", "web/orders")
	set("/mobile/home/7", "mobile/home")
	c.Wait()

	c.Purge("", "/web/home/7")
	c.Purge("web/orders", "")
	for key, want := range map[string]bool{
		"/web/home/7": false, "/web/home/8": true, "/web/orders/1": false, "/mobile/home/7": true,
	} {
		if _, ok := c.Get(key); ok != want {
			t.Errorf("Get(%q) hit = %v after purging /web/home/7 and tag web/orders; want %v", key, ok, want)
		}
	}
	c.Purge("mobile/home", "/web/")
	if _, ok := c.Get("/mobile/home/7"); !ok {
		t.Error("a purge needing tag mobile/home and prefix /web/ hid /mobile/home/7, which has only the tag")
	}
}

// A response fetched while a purge ran is stale: it must not be stored.
func TestPurgeCoversFetchInProgress(t *testing.T) {
	c := newCache(t, 1<<20)
	epoch := c.Epoch() // the fetch starts
	c.Purge("", "")    // an operator purges while upstreams answer
	e := NewEntry([]byte("old"), nil, time.Now())
	e.Epoch = epoch
	c.Set("k", e, time.Hour)
	c.Wait()
	if _, ok := c.Get("k"); ok {
		t.Error("an entry fetched before the purge was served after it")
	}
	fresh := NewEntry([]byte("new"), nil, time.Now())
	fresh.Epoch = c.Epoch()
	c.Set("k", fresh, time.Hour)
	c.Wait()
	if got, ok := c.Get("k"); !ok || got != fresh {
		t.Errorf("Get = %v, %v; want the entry fetched after the purge", got, ok)
	}
}

// Many purges collapse rather than grow without bound, and still hide
// everything they were asked to.
func TestPurgesStayBounded(t *testing.T) {
	c := newCache(t, 1<<20)
	c.Set("a/1", NewEntry([]byte("1"), nil, time.Now()), time.Hour)
	c.Wait()
	for i := range maxPurges + 10 {
		c.Purge("", fmt.Sprintf("b/%d", i))
	}
	if n := len(*c.purges.list.Load()); n > maxPurges {
		t.Errorf("%d purges remembered; want at most %d", n, maxPurges)
	}
	for i := range 3 {
		c.Set(fmt.Sprintf("b/%d", i), NewEntry([]byte("x"), nil, time.Now()), time.Hour)
	}
	c.Wait()
	if _, ok := c.Get("b/1"); !ok {
		t.Error("an entry stored after the purges was hidden by them")
	}
}

func TestStats(t *testing.T) {
	c := newCache(t, 1<<20)
	for i := range 10 {
		c.Set(fmt.Sprintf("k%d", i), NewEntry(make([]byte, 1000), nil, time.Now()), time.Hour)
	}
	c.Wait()
	s := c.Stats()
	if !s.Enabled || s.MaxBytes != 1<<20 {
		t.Errorf("Stats = %+v; want enabled with MaxBytes %d", s, 1<<20)
	}
	if s.Entries != 10 || s.Bytes < 10*1000 || s.Bytes > 10*(1000+2*(1000/3)+entryOverhead) {
		t.Errorf("Stats = %+v; want 10 entries of about %d bytes each", s, 1000+2*(1000/3)+entryOverhead)
	}
	if off, _ := New(Config{}); off.Stats().Enabled {
		t.Error("a disabled cache reports Enabled in its Stats")
	}
}

func TestDisabled(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.Enabled() {
		t.Error("Enabled() = true with MaxBytes 0")
	}
	c.Set("k", NewEntry([]byte("x"), nil, time.Now()), time.Hour)
	c.Wait()
	if e, ok := c.Get("k"); ok || e != nil {
		t.Errorf(`Get("k") = %v, %v; want nil, false`, e, ok)
	}
	c.Purge("", "")
	c.Close()
	c.Close()
}

func TestCloseTwice(t *testing.T) {
	c, err := New(Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.Close()
	c.Close()
	if _, ok := c.Get("k"); ok {
		t.Error("Get hit on a closed cache")
	}
}

// retrieved returns the summed cost of the entries Get still returns for
// keys, failing the test if any of them is not the entry stored for its key.
func retrieved(t *testing.T, c *Cache, keys []string) int64 {
	t.Helper()
	var sum int64
	for _, k := range keys {
		e, ok := c.Get(k)
		if !ok {
			continue
		}
		if !bytes.HasPrefix(e.Body, []byte(k+".")) {
			t.Fatalf("Get(%q) returned the body of another key: %.20q", k, e.Body)
		}
		sum += e.cost()
	}
	return sum
}

// TestByteBound checks that the entries still retrievable never cost more
// than MaxBytes. It never requires a hit: ristretto may drop or reject any
// Set.
func TestByteBound(t *testing.T) {
	const maxBytes = 64 << 10
	c := newCache(t, maxBytes)

	var keys []string
	for i := range 200 {
		k := "key-" + strconv.Itoa(i)
		keys = append(keys, k)
		c.Set(k, NewEntry(body(k, 4<<10), nil, time.Now()), time.Hour)
		c.Wait()
		if sum := retrieved(t, c, keys); sum > maxBytes {
			t.Fatalf("after %d Sets the retrievable entries cost %d bytes, more than MaxBytes %d",
				i+1, sum, maxBytes)
		}
	}
}

// TestCostIsOurs checks that the cost of an entry is our byte estimate alone
// (IgnoreInternalCost): entries whose costs sum to exactly MaxBytes all fit,
// where ristretto's 56 bytes per item would have evicted one.
func TestCostIsOurs(t *testing.T) {
	const n = 8
	per := NewEntry(body("key-0", 4<<10), nil, time.Now()).cost()
	c := newCache(t, n*per)

	var keys []string
	for i := range n {
		k := "key-" + strconv.Itoa(i)
		keys = append(keys, k)
		c.Set(k, NewEntry(body(k, 4<<10), nil, time.Now()), time.Hour)
		c.Wait()
	}
	if got := retrieved(t, c, keys); got != n*per {
		t.Errorf("retrievable cost = %d, want all %d entries (%d bytes)", got, n, n*per)
	}
}

func TestTooBigIsNotStored(t *testing.T) {
	const maxBytes = 64 << 10
	c := newCache(t, maxBytes)
	c.Set("big", NewEntry(body("big", maxBytes), nil, time.Now()), time.Hour)
	c.Wait()
	if _, ok := c.Get("big"); ok {
		t.Error("an entry costing more than MaxBytes was stored")
	}
}

// TestByteBoundOnReplace replaces a key ristretto already holds. Ristretto
// updates such a key in place, without admission or eviction, so the bound
// must be kept by Set itself. The expired case is the common one: after a
// TTL passes ristretto keeps the item until its cleanup runs (5–10 s), and
// the next miss sets the same key again.
func TestByteBoundOnReplace(t *testing.T) {
	const maxBytes = 64 << 10
	tests := []struct {
		name    string
		ttl     time.Duration // of the entries first stored
		fill    int           // 4 KiB entries stored first, key-0 among them
		newSize int           // body of the entry that replaces key-0
	}{
		{name: "bigger than MaxBytes", ttl: time.Hour, fill: 1, newSize: maxBytes},
		{name: "grows past MaxBytes", ttl: time.Hour, fill: 10, newSize: 16 << 10},
		{name: "expired, bigger than MaxBytes", ttl: 5 * time.Millisecond, fill: 1, newSize: maxBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, maxBytes)
			var keys []string
			for i := range tt.fill {
				k := "key-" + strconv.Itoa(i)
				keys = append(keys, k)
				c.Set(k, NewEntry(body(k, 4<<10), nil, time.Now()), tt.ttl)
				c.Wait()
			}
			if tt.ttl < time.Second {
				waitFor(t, "the entries to expire", func() bool { return retrieved(t, c, keys) == 0 })
			}

			c.Set("key-0", NewEntry(body("key-0", tt.newSize), nil, time.Now()), time.Hour)
			c.Wait()
			if sum := retrieved(t, c, keys); sum > maxBytes {
				t.Errorf("retrievable entries cost %d bytes, more than MaxBytes %d", sum, maxBytes)
			}
		})
	}
}

var weakETag = regexp.MustCompile(`^W/"[0-9a-f]{1,16}"$`)

func TestNewEntry(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		body   []byte
		header http.Header
	}{
		{name: "nil header", body: []byte(`{"a":1}`)},
		{name: "empty body", body: []byte{}, header: http.Header{}},
		{name: "keeps headers", body: []byte(`[]`), header: http.Header{"Content-Type": {"application/json"}}},
		{name: "replaces an etag", body: []byte(`x`), header: http.Header{"Etag": {`"stale"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before http.Header
			if tt.header != nil {
				before = tt.header.Clone()
			}
			e := NewEntry(tt.body, tt.header, now)

			if !weakETag.MatchString(e.ETag) {
				t.Errorf("ETag = %q, want a weak tag W/\"hex\"", e.ETag)
			}
			if e.ETag != ETag(tt.body) {
				t.Errorf("ETag = %q, want ETag(body) = %q", e.ETag, ETag(tt.body))
			}
			if got := e.Header["Etag"]; !slices.Equal(got, []string{e.ETag}) {
				t.Errorf(`Header["Etag"] = %q, want [%q]`, got, e.ETag)
			}
			if got := e.Header.Get("ETag"); got != e.ETag {
				t.Errorf(`Header.Get("ETag") = %q, want %q`, got, e.ETag)
			}
			for k, v := range before {
				if k == "Etag" {
					continue
				}
				if !slices.Equal(e.Header[k], v) {
					t.Errorf("Header[%q] = %q, want it kept as %q", k, e.Header[k], v)
				}
			}
			if got, want := e.ContentLength(), []string{strconv.Itoa(len(tt.body))}; !slices.Equal(got, want) {
				t.Errorf("ContentLength() = %q, want %q", got, want)
			}
			if !bytes.Equal(e.Body, tt.body) {
				t.Errorf("Body = %q, want %q", e.Body, tt.body)
			}
			if !e.StoredAt.Equal(now) {
				t.Errorf("StoredAt = %v, want %v", e.StoredAt, now)
			}
		})
	}
}

func TestETag(t *testing.T) {
	// Two entries built apart from each other, as on two replicas, agree.
	a := NewEntry([]byte(`{"items":[1,2,3]}`), nil, time.Now())
	b := NewEntry([]byte(`{"items":[1,2,3]}`), http.Header{}, time.Now().Add(time.Hour))
	if a.ETag != b.ETag {
		t.Errorf("equal bodies: ETags %q and %q differ", a.ETag, b.ETag)
	}

	bodies := []string{``, ` `, `{}`, `[]`, `{"items":[1,2,3]}`, `{"items":[1,2,4]}`, `{"items":[1,2,3]} `}
	seen := map[string]string{}
	for _, s := range bodies {
		tag := ETag([]byte(s))
		if other, dup := seen[tag]; dup {
			t.Errorf("bodies %q and %q share the ETag %q", other, s, tag)
		}
		seen[tag] = s
	}
}

func gunzip(t testing.TB, z []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatalf("gzip.NewReader: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("reading gzip: %v", err)
	}
	return b
}

// same reports whether a and b are the same slice, not merely equal ones.
func same(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

func TestGzip(t *testing.T) {
	for _, s := range []string{`{"a":1}` + strings.Repeat(`,{"a":1}`, 100), string(body("long", 64<<10))} {
		t.Run(fmt.Sprintf("%d bytes", len(s)), func(t *testing.T) {
			e := NewEntry([]byte(s), nil, time.Now())
			z := e.Gzip()
			if got := gunzip(t, z); !bytes.Equal(got, e.Body) {
				t.Errorf("Gzip() decompresses to %d bytes, want the %d-byte body", len(got), len(e.Body))
			}
			if again := e.Gzip(); !same(z, again) {
				t.Error("second Gzip() returned a different slice: the body was compressed twice")
			}
		})
	}
}

func TestGzipConcurrent(t *testing.T) {
	e := NewEntry(body("concurrent", 32<<10), nil, time.Now())
	const n = 64
	out := make([][]byte, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = e.Gzip()
		})
	}
	close(start)
	wg.Wait()

	for i, z := range out {
		if !same(z, out[0]) {
			t.Fatalf("goroutine %d got a different slice from goroutine 0", i)
		}
	}
	if got := gunzip(t, out[0]); !bytes.Equal(got, e.Body) {
		t.Error("concurrent Gzip() does not decompress to the body")
	}
}

// TestGzipBytesReusesWriters checks that pooled writers carry nothing over
// from one body to the next.
func TestGzipBytesReusesWriters(t *testing.T) {
	for i := range 20 {
		b := body("body-"+strconv.Itoa(i), i*97)
		if got := gunzip(t, GzipBytes(b)); !bytes.Equal(got, b) {
			t.Fatalf("GzipBytes round trip %d: got %d bytes, want %d", i, len(got), len(b))
		}
	}
}

func FuzzEntry(f *testing.F) {
	f.Add([]byte(nil))
	f.Add([]byte(`{"a":[1,2,3]}`))
	f.Add(bytes.Repeat([]byte{0xff}, 1000))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := NewEntry(b, nil, time.Time{})
		if !weakETag.MatchString(e.ETag) {
			t.Fatalf("ETag = %q, not a weak tag", e.ETag)
		}
		if e.ETag != ETag(bytes.Clone(b)) {
			t.Fatal("ETag differs for a copy of the same body")
		}
		// A variant is kept only within its room (a third of the body);
		// otherwise the body goes as it is.
		if z := e.Gzip(); z == nil {
			if len(GzipBytes(b)) <= len(b)/3 {
				t.Fatalf("Gzip() gave nil for a %d-byte body that compresses to %d", len(b), len(GzipBytes(b)))
			}
		} else if got := gunzip(t, z); !bytes.Equal(got, b) || len(z) > len(b)/3 {
			t.Fatalf("Gzip() does not round-trip, or is %d bytes for a %d-byte body", len(z), len(b))
		}
	})
}

// A body that hardly compresses keeps no variant: the cache's bound
// charges each variant a third of the body, and the body is sent as is.
func TestIncompressibleBodyKeepsNoVariant(t *testing.T) {
	raw := make([]byte, 3<<10)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(raw) // random: nothing for the compressors
	e := NewEntry([]byte(`{"blob":"`+base64.StdEncoding.EncodeToString(raw)+`"}`), nil, time.Now())
	if z, g := e.Zstd(), e.Gzip(); z != nil || g != nil {
		t.Errorf("variants of %d, %d bytes kept for a %d-byte body that hardly compresses", len(z), len(g), len(e.Body))
	}
}
