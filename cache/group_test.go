package cache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// result is what one Do call returned.
type result struct {
	v      string
	shared bool
	err    error
}

// do runs g.Do in a goroutine and delivers its result on the returned channel.
func do(ctx context.Context, g *Group[string], key string, fn func(context.Context) (string, error)) <-chan result {
	ch := make(chan result, 1)
	go func() {
		v, shared, err := g.Do(ctx, key, fn)
		ch <- result{v, shared, err}
	}()
	return ch
}

// recv takes one value from ch, failing the test if none comes within a
// generous bound (a hang, not a timing assertion).
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("gave up waiting on a channel")
		panic("unreachable")
	}
}

// inFlight returns the flight for key and how many callers wait for it.
func inFlight(g *Group[string], key string) (*flight[string], int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.flights[key]
	if f == nil {
		return nil, 0
	}
	return f, f.waiters
}

func waitWaiters(t *testing.T, g *Group[string], key string, n int) {
	t.Helper()
	waitFor(t, "waiters to join", func() bool {
		_, w := inFlight(g, key)
		return w == n
	})
}

func TestGroupCoalesces(t *testing.T) {
	var g Group[string]
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (string, error) {
		calls.Add(1)
		<-release
		return "v", nil
	}

	const n = 50
	results := make([]<-chan result, n)
	for i := range n {
		results[i] = do(t.Context(), &g, "k", fn)
	}
	waitWaiters(t, &g, "k", n)
	close(release)

	var shared int
	for _, ch := range results {
		r := recv(t, ch)
		if r.err != nil || r.v != "v" {
			t.Errorf("Do = %q, %v; want %q, nil", r.v, r.err, "v")
		}
		if r.shared {
			shared++
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("fn ran %d times, want 1", got)
	}
	if shared != n-1 {
		t.Errorf("shared reported by %d callers, want %d", shared, n-1)
	}
	if f, _ := inFlight(&g, "k"); f != nil {
		t.Error("the flight stays in the group after it finished")
	}
}

func TestGroupKeysRunSeparately(t *testing.T) {
	var g Group[string]
	started := make(chan string, 2)
	release := make(chan struct{})
	fn := func(key string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) {
			started <- key
			<-release
			return key, nil
		}
	}

	a := do(t.Context(), &g, "a", fn("a"))
	b := do(t.Context(), &g, "b", fn("b"))
	// Both run at once: neither waits for the other.
	recv(t, started)
	recv(t, started)
	close(release)

	for key, ch := range map[string]<-chan result{"a": a, "b": b} {
		r := recv(t, ch)
		if r.err != nil || r.v != key || r.shared {
			t.Errorf("Do(%q) = %q, shared %v, %v; want %q, not shared, nil", key, r.v, r.shared, r.err, key)
		}
	}
}

func TestGroupErrorIsNotRemembered(t *testing.T) {
	var g Group[string]
	errBoom := errors.New("boom")
	var calls atomic.Int32
	release := make(chan struct{})
	failing := func(context.Context) (string, error) {
		calls.Add(1)
		<-release
		return "partial", errBoom
	}

	const n = 3
	results := make([]<-chan result, n)
	for i := range n {
		results[i] = do(t.Context(), &g, "k", failing)
	}
	waitWaiters(t, &g, "k", n)
	close(release)
	for _, ch := range results {
		if r := recv(t, ch); !errors.Is(r.err, errBoom) {
			t.Errorf("Do error = %v, want %v", r.err, errBoom)
		}
	}

	v, shared, err := g.Do(t.Context(), "k", func(context.Context) (string, error) {
		calls.Add(1)
		return "ok", nil
	})
	if err != nil || v != "ok" || shared {
		t.Errorf("Do after an error = %q, shared %v, %v; want %q, not shared, nil", v, shared, err, "ok")
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("fn ran %d times, want 2: errors must not be remembered", got)
	}
}

func TestGroupPanic(t *testing.T) {
	var g Group[string]
	release := make(chan struct{})
	panicky := func(context.Context) (string, error) {
		<-release
		panic("kaboom")
	}

	const n = 3
	results := make([]<-chan result, n)
	for i := range n {
		results[i] = do(t.Context(), &g, "k", panicky)
	}
	waitWaiters(t, &g, "k", n)
	close(release)
	for _, ch := range results {
		r := recv(t, ch)
		var pe *PanicError
		if !errors.As(r.err, &pe) {
			t.Fatalf("Do error = %v (%T), want a *PanicError", r.err, r.err)
		}
		if pe.Value != "kaboom" {
			t.Errorf("PanicError.Value = %v, want %q", pe.Value, "kaboom")
		}
		if !strings.Contains(pe.Error(), "kaboom") {
			t.Errorf("PanicError.Error() = %q, want it to name the panic", pe.Error())
		}
		if !strings.Contains(string(pe.Stack), "TestGroupPanic") {
			t.Errorf("PanicError.Stack does not show where fn panicked:\n%s", pe.Stack)
		}
	}

	// The group still works.
	if v, _, err := g.Do(t.Context(), "k", func(context.Context) (string, error) { return "ok", nil }); err != nil || v != "ok" {
		t.Errorf("Do after a panic = %q, %v; want %q, nil", v, err, "ok")
	}
}

// blocking is an fn that hands out its context when it starts and returns
// when released or canceled, reporting a cancellation on canceled.
type blocking struct {
	ctxs     chan context.Context
	release  chan struct{}
	canceled chan struct{}
	finish   chan struct{} // after a cancellation, fn returns once this closes
	calls    atomic.Int32
}

func newBlocking() *blocking {
	finish := make(chan struct{})
	close(finish)
	return &blocking{
		ctxs:     make(chan context.Context, 1),
		release:  make(chan struct{}),
		canceled: make(chan struct{}),
		finish:   finish,
	}
}

func (b *blocking) fn(ctx context.Context) (string, error) {
	b.calls.Add(1)
	b.ctxs <- ctx
	select {
	case <-b.release:
		return "v", nil
	case <-ctx.Done():
		close(b.canceled)
		<-b.finish
		return "", ctx.Err()
	}
}

func TestGroupOneWaiterLeaves(t *testing.T) {
	for _, leaver := range []int{0, 1} {
		name := map[int]string{0: "first caller leaves", 1: "second caller leaves"}[leaver]
		t.Run(name, func(t *testing.T) {
			var g Group[string]
			b := newBlocking()
			var ctxs [2]context.Context
			var cancels [2]context.CancelFunc
			for i := range ctxs {
				ctxs[i], cancels[i] = context.WithCancel(t.Context())
				defer cancels[i]()
			}

			results := [2]<-chan result{do(ctxs[0], &g, "k", b.fn)}
			fnCtx := recv(t, b.ctxs)
			results[1] = do(ctxs[1], &g, "k", b.fn)
			waitWaiters(t, &g, "k", 2)

			cancels[leaver]()
			if leaver == 1 { // a joined caller returns at once
				if r := recv(t, results[leaver]); !errors.Is(r.err, context.Canceled) {
					t.Errorf("leaving caller: Do error = %v, want %v", r.err, context.Canceled)
				}
			} else {
				waitWaiters(t, &g, "k", 1)
			}
			if err := fnCtx.Err(); err != nil {
				t.Errorf("fn's context was canceled (%v) while a caller still waits", err)
			}

			close(b.release)
			if leaver == 0 { // the first caller runs fn, so it returns when fn does
				if r := recv(t, results[leaver]); !errors.Is(r.err, context.Canceled) {
					t.Errorf("leaving first caller: Do error = %v, want %v", r.err, context.Canceled)
				}
			}
			stayer := 1 - leaver
			if r := recv(t, results[stayer]); r.err != nil || r.v != "v" {
				t.Errorf("staying caller: Do = %q, %v; want %q, nil", r.v, r.err, "v")
			}
			if got := b.calls.Load(); got != 1 {
				t.Errorf("fn ran %d times, want 1", got)
			}
		})
	}
}

func TestGroupAllWaitersLeave(t *testing.T) {
	var g Group[string]
	old := newBlocking()
	old.finish = make(chan struct{}) // keep the canceled execution running
	ctx0, cancel0 := context.WithCancel(t.Context())
	ctx1, cancel1 := context.WithCancel(t.Context())
	defer cancel0()
	defer cancel1()

	r0 := do(ctx0, &g, "k", old.fn)
	fnCtx := recv(t, old.ctxs)
	r1 := do(ctx1, &g, "k", old.fn)
	waitWaiters(t, &g, "k", 2)
	oldFlight, _ := inFlight(&g, "k")

	cancel0()
	waitWaiters(t, &g, "k", 1)
	if fnCtx.Err() != nil {
		t.Fatal("fn's context was canceled while a caller still waits")
	}
	cancel1()
	if r := recv(t, r1); !errors.Is(r.err, context.Canceled) {
		t.Errorf("second caller: Do error = %v, want %v", r.err, context.Canceled)
	}
	recv(t, old.canceled) // fn saw its context canceled

	// The canceled execution is still running; a new caller starts afresh.
	fresh := newBlocking()
	r2 := do(t.Context(), &g, "k", fresh.fn)
	if ctx := recv(t, fresh.ctxs); ctx.Err() != nil {
		t.Errorf("the fresh execution starts with a canceled context: %v", ctx.Err())
	}
	newFlight, _ := inFlight(&g, "k")

	// The old execution ending must not remove the new flight. The first
	// caller ran it, so it returns only now.
	close(old.finish)
	recv(t, oldFlight.done)
	if r := recv(t, r0); !errors.Is(r.err, context.Canceled) {
		t.Errorf("first caller: Do error = %v, want %v", r.err, context.Canceled)
	}
	if f, _ := inFlight(&g, "k"); f != newFlight {
		t.Fatal("the canceled execution's end removed the fresh flight")
	}
	r3 := do(t.Context(), &g, "k", fresh.fn)
	waitWaiters(t, &g, "k", 2)
	close(fresh.release)

	for i, ch := range []<-chan result{r2, r3} {
		if r := recv(t, ch); r.err != nil || r.v != "v" || r.shared != (i == 1) {
			t.Errorf("caller %d: Do = %q, shared %v, %v; want %q, shared %v, nil", i, r.v, r.shared, r.err, "v", i == 1)
		}
	}
	if old.calls.Load() != 1 || fresh.calls.Load() != 1 {
		t.Errorf("calls: canceled fn %d, fresh fn %d; want 1 each", old.calls.Load(), fresh.calls.Load())
	}
}

func TestGroupCanceledBeforeDo(t *testing.T) {
	var g Group[string]
	b := newBlocking()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	if _, _, err := g.Do(ctx, "k", b.fn); !errors.Is(err, context.Canceled) {
		t.Errorf("Do error = %v, want %v", err, context.Canceled)
	}
	// fn may or may not have started; if it did, it must be canceled.
	select {
	case <-b.ctxs:
		recv(t, b.canceled)
	default:
	}
}

type ctxKey struct{}

func TestGroupContext(t *testing.T) {
	var g Group[string]
	b := newBlocking()
	first, cancel := context.WithDeadline(context.WithValue(t.Context(), ctxKey{}, "first"), time.Now().Add(time.Hour))
	defer cancel()
	second := context.WithValue(t.Context(), ctxKey{}, "second")

	r0 := do(first, &g, "k", b.fn)
	fnCtx := recv(t, b.ctxs)
	r1 := do(second, &g, "k", b.fn)
	waitWaiters(t, &g, "k", 2)

	if got := fnCtx.Value(ctxKey{}); got != "first" {
		t.Errorf("fn's context value = %v, want the first caller's %q", got, "first")
	}
	if d, ok := fnCtx.Deadline(); ok {
		t.Errorf("fn's context has the first caller's deadline %v, want none", d)
	}

	close(b.release)
	for _, ch := range []<-chan result{r0, r1} {
		if r := recv(t, ch); r.err != nil {
			t.Errorf("Do error = %v", r.err)
		}
	}
}

// TestGroupRace mixes joining, leaving and finishing under -race.
func TestGroupRace(t *testing.T) {
	var g Group[int]
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if i%3 == 0 {
				cancel()
			}
			key := []string{"a", "b", "c"}[i%3]
			v, _, err := g.Do(ctx, key, func(ctx context.Context) (int, error) {
				select {
				case <-ctx.Done():
					return 0, ctx.Err()
				default:
					return 42, nil
				}
			})
			if err == nil && v != 42 {
				t.Errorf("Do = %d, nil; want 42", v)
			}
		})
	}
	wg.Wait()
}
