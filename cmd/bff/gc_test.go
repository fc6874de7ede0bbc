package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentForFloor(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name               string
		live, roots, floor uint64
		want               int
	}{
		{"nothing known yet", 0, 0, 64 * mib, 200},
		{"small live heap: goal at the floor", 4 * mib, 0, 64 * mib, 1500},
		{"roots grow the goal too", 3 * mib, 1 * mib, 64 * mib, 1525},
		{"a third of the floor live: percent's goal is the floor", 64 * mib / 3, 0, 64 * mib, 200},
		{"more live than the floor", 100 * mib, 0, 64 * mib, 200},
	}
	for _, c := range cases {
		if got := percentForFloor(c.live, c.roots, c.floor, 200); got != c.want {
			t.Errorf("%s: percentForFloor(%d, %d, %d) = %d, want %d", c.name, c.live, c.roots, c.floor, got, c.want)
		}
		if goal := c.live + (c.live+c.roots)*uint64(percentForFloor(c.live, c.roots, c.floor, 200))/100; c.live > 0 && goal+mib/100 < c.floor {
			t.Errorf("%s: the next goal %d is under the floor %d", c.name, goal, c.floor)
		}
	}
}

func TestHeapFloorFollowsCollectionsAndStops(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	gogc := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	// The live heap of a test binary is a few MiB: a 1 GiB floor needs a
	// GOGC in the hundreds, set after a collection.
	stop := startHeapFloor(1<<30, 200)
	for i := 0; gogc() <= 200; i++ {
		if i == 500 {
			stop()
			t.Fatalf("GOGC still %d after %d collections with a 1 GiB floor", gogc(), i)
		}
		runtime.GC()
		time.Sleep(time.Millisecond) // the cleanup runs on its own goroutine
	}
	stop()
	if got := gogc(); got != 200 {
		t.Errorf("GOGC after stop: %d, want 200", got)
	}
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if got := gogc(); got != 200 {
		t.Errorf("GOGC after a collection past stop: %d, want 200 (a stopped floor must not act)", got)
	}
}

func TestHeapFloorIsTheCacheBudget(t *testing.T) {
	if got := heapFloorFor(0); got != minHeapFloor {
		t.Errorf("cache off: floor %d, want %d", got, minHeapFloor)
	}
	if got := heapFloorFor(256 << 20); got != 256<<20 {
		t.Errorf("256 MiB cache: floor %d, want the cache's budget", got)
	}
}
