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

// The next goal is the floor, not Go's minimum heap goal: that minimum
// grows with GOGC (4 MiB at 100), so the large GOGC a small live heap
// needs would put it far above the floor.
func TestHeapFloorGoalIsTheFloor(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	const floor = 64 << 20 // the default cache.max_bytes
	stop := startHeapFloor(floor, 200)
	defer stop()
	read := func() (gogc, goal, live, roots uint64) {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"},
			{Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64(), s[3].Value.Uint64() + s[4].Value.Uint64()
	}
	for i := 0; ; i++ {
		runtime.GC()
		time.Sleep(2 * time.Millisecond) // the cleanup runs on its own goroutine
		if gogc, _, _, _ := read(); gogc > 200 {
			break
		}
		if i == 500 {
			t.Fatal("the floor never raised GOGC")
		}
	}
	gogc, goal, live, roots := read()
	t.Logf("GOGC %d, heap goal %.1f MiB, live %.2f MiB, roots %.2f MiB", gogc, float64(goal)/(1<<20), float64(live)/(1<<20), float64(roots)/(1<<20))
	if goal > floor+floor/20 {
		t.Errorf("with a %d MiB floor the next heap goal is %.1f MiB (%.1fx the floor): GOGC %d makes the runtime's heap minimum (4 MiB*GOGC/100) the goal",
			floor>>20, float64(goal)/(1<<20), float64(goal)/floor, gogc)
	}
}

// The same without the runtime, for live heaps well under Go's minimum.
func TestPercentForFloorKeepsHeapMinimumAtTheFloor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct{ live, roots, floor uint64 }{
		{1 * mib, mib / 2, 64 * mib},
		{2 * mib, mib / 2, 64 * mib},
		{512 << 10, 256 << 10, 32 * mib},
		{1 * mib, mib / 2, 256 * mib},
	} {
		p := percentForFloor(c.live, c.roots, c.floor, 200)
		goal := max(c.live+(c.live+c.roots)*uint64(p)/100, 4*mib*uint64(p)/100)
		if goal > c.floor+c.floor/20 {
			t.Errorf("live %d KiB, roots %d KiB, floor %d MiB: GOGC %d, runtime goal %d MiB (heapMinimum 4 MiB*GOGC/100)",
				c.live>>10, c.roots>>10, c.floor>>20, p, goal>>20)
		}
	}
}
