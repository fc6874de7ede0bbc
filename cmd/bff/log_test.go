package main

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingOutput keeps each Write it receives. If gate is set, each Write
// first waits for it to be closed: an output that is stuck until then.
type recordingOutput struct {
	gate    chan struct{}
	entered chan struct{} // receives once a Write is waiting at the gate
	fail    error

	mu     sync.Mutex
	writes [][]byte
}

func (o *recordingOutput) Write(p []byte) (int, error) {
	if o.gate != nil {
		select {
		case o.entered <- struct{}{}:
		default:
		}
		<-o.gate
	}
	if o.fail != nil {
		return 0, o.fail
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes = append(o.writes, bytes.Clone(p))
	return len(p), nil
}

func (o *recordingOutput) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(bytes.Join(o.writes, nil))
}

// wholeLines fails unless every Write the output received ends a line, and
// returns the lines.
func (o *recordingOutput) wholeLines(t *testing.T) []string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	var lines []string
	for i, w := range o.writes {
		if len(w) == 0 || w[len(w)-1] != '\n' {
			t.Fatalf("write %d does not end a line: ...%q", i, w[max(0, len(w)-40):])
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(w), "\n"), "\n")...)
	}
	return lines
}

// stuck waits until the flusher is inside the output's Write.
func (o *recordingOutput) stuck(t *testing.T) {
	t.Helper()
	select {
	case <-o.entered:
	case <-time.After(10 * time.Second):
		close(o.gate)
		t.Fatal("the flusher never wrote to the output")
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// line is writer g's i-th line, of a length that varies so that chunks end
// at arbitrary places.
func line(g, i int) string {
	return fmt.Sprintf("g=%d i=%d %s\n", g, i, strings.Repeat("x", (g*7+i*13)%200))
}

func TestLogWriterKeepsLinesWholeAndInOrder(t *testing.T) {
	out := &recordingOutput{}
	// A small chunk, so the flusher writes many times while lines arrive.
	lw := newLogWriter(out, logBuffering{Every: time.Millisecond, Chunk: 1 << 10, Max: 64 << 20, CloseWait: 10 * time.Second})
	const writers, each = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := lw.Write([]byte(line(g, i))); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}

	lines := out.wholeLines(t)
	if len(lines) != writers*each {
		t.Fatalf("got %d lines, want %d", len(lines), writers*each)
	}
	next := make([]int, writers)
	for _, l := range lines {
		var g, i int
		if _, err := fmt.Sscanf(l, "g=%d i=%d", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("torn line %q", l)
		}
		if i != next[g] || l+"\n" != line(g, i) {
			t.Fatalf("writer %d: got line %q, want line %d", g, l, next[g])
		}
		next[g]++
	}
	if d := lw.Dropped(); d != 0 {
		t.Errorf("dropped %d lines", d)
	}
}

func TestLogWriterFlushesAQuietServersLines(t *testing.T) {
	out := &recordingOutput{}
	lw := newLogWriter(out, logBuffering{Every: 10 * time.Millisecond, Chunk: 64 << 10, Max: 1 << 20, CloseWait: 10 * time.Second})
	defer lw.Close()
	_, _ = lw.Write([]byte("one line\n"))
	// No more writes, far from a chunk: only the timer can flush it.
	waitUntil(t, "the line to be written", func() bool { return out.text() == "one line\n" })
}

func TestLogWriterFlushesAChunkWithoutWaitingForTheTimer(t *testing.T) {
	out := &recordingOutput{}
	lw := newLogWriter(out, logBuffering{Every: time.Hour, Chunk: 100, Max: 1 << 20, CloseWait: 10 * time.Second})
	defer lw.Close()
	want := line(0, 0) + strings.Repeat("x", 100) + "\n" // over 100 bytes
	_, _ = lw.Write([]byte(want))
	waitUntil(t, "the chunk to be written", func() bool { return out.text() == want })
}

func TestLogWriterCloseWritesEverything(t *testing.T) {
	out := &recordingOutput{}
	// Neither the timer nor the chunk size flushes anything before Close.
	lw := newLogWriter(out, logBuffering{Every: time.Hour, Chunk: 1 << 20, Max: 1 << 20, CloseWait: 10 * time.Second})
	var want strings.Builder
	for i := range 100 {
		want.WriteString(line(1, i))
		_, _ = lw.Write([]byte(line(1, i)))
	}
	if got := out.text(); got != "" {
		t.Fatalf("written before Close: %q", got)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.text(); got != want.String() {
		t.Fatalf("after Close got %d bytes, want %d", len(got), want.Len())
	}
	select {
	case <-lw.done:
	default:
		t.Fatal("the flusher is still running after Close")
	}
	if _, err := lw.Write([]byte("late\n")); err == nil {
		t.Error("a write after Close succeeded")
	}
	if d := lw.Dropped(); d != 1 {
		t.Errorf("dropped %d lines, want the late one", d)
	}
	if err := lw.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestLogWriterStuckOutputDoesNotBlockWriters(t *testing.T) {
	out := &recordingOutput{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	lw := newLogWriter(out, logBuffering{Every: time.Millisecond, Chunk: 256, Max: 4 << 10, CloseWait: 10 * time.Second})
	_, _ = lw.Write([]byte(line(0, 0)))
	out.stuck(t) // the flusher is now stuck in the output's Write

	const writers, each = 4, 500
	var mu sync.Mutex
	failed := 0
	var wg sync.WaitGroup
	for g := 1; g <= writers; g++ {
		wg.Go(func() {
			for i := range each {
				if _, err := lw.Write([]byte(line(g, i))); err != nil {
					if !errors.Is(err, errLogDropped) {
						t.Errorf("write: %v", err)
					}
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	select {
	case <-writersDone:
	case <-time.After(10 * time.Second):
		close(out.gate)
		t.Fatal("writers blocked behind a stuck output")
	}
	if failed == 0 || lw.Dropped() != uint64(failed) {
		t.Errorf("%d writes failed, %d lines counted as dropped; want the same, more than 0", failed, lw.Dropped())
	}

	close(out.gate) // the output recovers: what was queued is written, whole
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	lines := out.wholeLines(t)
	if got, want := len(lines)+failed, 1+writers*each; got != want {
		t.Errorf("%d lines written + %d dropped = %d, want %d", len(lines), failed, got, want)
	}
}

func TestLogWriterCloseGivesUpOnAStuckOutput(t *testing.T) {
	out := &recordingOutput{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	lw := newLogWriter(out, logBuffering{Every: time.Millisecond, Chunk: 1 << 10, Max: 1 << 20, CloseWait: 20 * time.Millisecond})
	_, _ = lw.Write([]byte("stuck\n"))
	out.stuck(t)
	if err := lw.Close(); err == nil {
		t.Error("Close reported success with the output stuck")
	}
	close(out.gate) // lets the flusher end, for goleak
	<-lw.done
	if got := out.text(); got != "stuck\n" {
		t.Errorf("output got %q", got)
	}
}

func TestLogWriterCountsLinesTheOutputRefused(t *testing.T) {
	out := &recordingOutput{fail: errors.New("disk full")}
	lw := newLogWriter(out, logBuffering{Every: time.Hour, Chunk: 1 << 20, Max: 1 << 20, CloseWait: 10 * time.Second})
	for i := range 5 {
		_, _ = lw.Write([]byte(line(0, i)))
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if d := lw.Dropped(); d != 5 {
		t.Errorf("dropped %d lines, want 5", d)
	}
}

// BenchmarkLogWriter is the cost an access-log line adds on the request's
// goroutine once formatted. Each writer yields after a line as a request's
// goroutine parks on its connection: writers that never yield leave the
// flusher no processor, and the benchmark would measure dropping.
func BenchmarkLogWriter(b *testing.B) {
	lw := newLogWriter(discardOutput{}, defaultLogBuffering)
	defer lw.Close()
	p := []byte(`{"time":"2026-11-26T23:59:57.455254192Z","level":"INFO","msg":"request","request_id":"0a1b2c3d4e5f-9ix",` +
		`"method":"GET","path":"/web/home/7","status":200,"bytes":2718,"duration_us":41,"client":"web","view":"web.home","cache":"hit"}` + "\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = lw.Write(p)
			runtime.Gosched()
		}
	})
	b.ReportMetric(float64(lw.Dropped()), "dropped")
}

type discardOutput struct{}

func (discardOutput) Write(p []byte) (int, error) { return len(p), nil }
