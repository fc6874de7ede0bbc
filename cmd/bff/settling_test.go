package main

import "testing"

// A changed views directory is loaded once it has held still for a poll:
// a file caught half-written may be valid YAML with views missing, and the
// next poll sees it grow.
func TestChangedViewsLoadOnceTheyHoldStill(t *testing.T) {
	s := settling{last: "v1"}
	for i, step := range []struct {
		stamp string
		ready bool
	}{
		{"v1", false},   // unchanged
		{"half", false}, // changed: wait a poll
		{"v2", false},   // still changing: wait again
		{"v2", true},    // held still: load
	} {
		if got := s.ready(step.stamp); got != step.ready {
			t.Fatalf("poll %d, stamp %s: ready %v, want %v", i, step.stamp, got, step.ready)
		}
	}
	// After the load, the loaded stamp is the new baseline.
	s = settling{last: "v2"}
	for i, step := range []struct {
		stamp string
		ready bool
	}{
		{"v3", false},
		{"v2", false}, // changed back before it settled: nothing to load
		{"v2", false},
		{"v3", false},
		{"v3", true},
	} {
		if got := s.ready(step.stamp); got != step.ready {
			t.Fatalf("second run, poll %d, stamp %s: ready %v, want %v", i, step.stamp, got, step.ready)
		}
	}
}
