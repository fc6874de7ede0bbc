package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcPercent is the collector's GOGC unless GOGC says otherwise: a BFF's
// live heap is small (the cache aside) while every request leaves
// kilobytes of garbage, so Go's default of 100 collects dozens of times a
// second for little memory saved.
const gcPercent = 200

// gcTuned says the binary chose the collector's pace (GOGC was not set),
// so serve may keep a heap floor too.
var gcTuned bool

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
		gcTuned = true
	}
}

// minHeapFloor is the floor with a small cache or none: within the
// 100 MiB the README's sizing allows beside the cache.
const minHeapFloor = 32 << 20

// heapFloorFor is the heap the collector may let garbage fill before it
// runs: the cache's own budget. Once the cache is full the heap grows to
// three times that anyway, so the floor never raises the peak; it only
// spends memory the operator already gave the BFF while the cache is
// still empty.
func heapFloorFor(cacheMaxBytes int64) uint64 {
	return uint64(max(cacheMaxBytes, minHeapFloor))
}

// startHeapFloor keeps the collector from running before the heap reaches
// floor bytes while less than a third of that is live, by raising GOGC
// after every collection; above it, GOGC is percent. With a tiny live heap
// (one hot cache entry), GOGC=200 collected every ~3,000 cache hits and
// the collector cost 9 % of a hit's instructions; with the floor, under
// 1 %. Go has no floor setting of its own (GOMEMLIMIT is a ceiling). stop
// puts GOGC back to percent.
func startHeapFloor(floor uint64, percent int) (stop func()) {
	f := &heapFloor{floor: floor, percent: percent}
	f.adjust()
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.stopped = true
		debug.SetGCPercent(percent)
	}
}

type heapFloor struct {
	floor   uint64
	percent int

	mu      sync.Mutex
	stopped bool
}

// gcSentinel is unreachable from birth: its cleanup runs after the next
// collection. It holds a pointer so that it is never a tiny allocation,
// which may share a block with others and outlive them.
type gcSentinel struct{ _ *byte }

// adjust sets GOGC for the live heap the last collection found, then asks
// to be called after the next one.
func (f *heapFloor) adjust() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	debug.SetGCPercent(percentForFloor(s[0].Value.Uint64(), s[1].Value.Uint64()+s[2].Value.Uint64(), f.floor, f.percent))
	runtime.AddCleanup(new(gcSentinel), (*heapFloor).adjust, f)
}

// heapMinimum is Go's smallest heap goal at GOGC=100; it scales with GOGC.
const heapMinimum = 4 << 20

// percentForFloor is the GOGC that sets the next collection's goal at
// floor, or percent when that goal is higher already. Go's goal is the
// live heap plus GOGC percent of it and of the stacks and globals (roots),
// but never below heapMinimum scaled by GOGC: with little live, that
// minimum is what caps the percent. Before the first collection nothing is
// known live: percent.
func percentForFloor(live, roots, floor uint64, percent int) int {
	grows := live + roots
	if live == 0 || live+grows*uint64(percent)/100 >= floor {
		return percent
	}
	p := min((floor-live)*100/grows, floor*100/heapMinimum)
	return max(int(p), percent)
}
