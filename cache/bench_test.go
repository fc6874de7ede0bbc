package cache

import (
	"context"
	"testing"
	"time"
)

func BenchmarkGetHit(b *testing.B) {
	c := newCache(b, DefaultMaxBytes)
	c.Set("hot", NewEntry(body("hot", 4<<10), nil, time.Now()), time.Hour)
	c.Wait()
	if _, ok := c.Get("hot"); !ok {
		b.Fatal("the hot key missed after Set and Wait")
	}

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Get("hot")
		}
	})
}

func BenchmarkGroupUncontended(b *testing.B) {
	var g Group[int]
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }

	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := g.Do(ctx, "k", fn); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGzip(b *testing.B) {
	src := body(`{"items":[`, 16<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		GzipBytes(src)
	}
}
