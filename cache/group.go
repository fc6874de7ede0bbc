package cache

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Group coalesces concurrent calls with the same key into one execution.
//
// Unlike singleflight, the execution belongs to no single caller: its
// context keeps the first caller's values but not its cancellation, and it is
// canceled only when every caller waiting for it has gone. A client hanging
// up therefore cancels upstream work nobody else waits for, while other
// waiters for the same key still get their answer. The first caller runs
// the execution itself, so it returns when the execution ends, even if its
// own context ended first (with that context's error).
type Group[T any] struct {
	mu      sync.Mutex
	flights map[string]*flight[T]
	joined  atomic.Int64
}

type flight[T any] struct {
	done    chan struct{}
	val     T
	err     error
	waiters int
	cancel  context.CancelFunc
}

// PanicError is a panic recovered from a Group's function.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Do returns fn's result for key, running fn only if no call for key is in
// flight. shared reports whether the result came from another caller's call.
func (g *Group[T]) Do(ctx context.Context, key string, fn func(context.Context) (T, error)) (v T, shared bool, err error) {
	g.mu.Lock()
	if g.flights == nil {
		g.flights = make(map[string]*flight[T])
	}
	f, shared := g.flights[key]
	if !shared {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight[T]{done: make(chan struct{}), waiters: 1, cancel: cancel}
		g.flights[key] = f
		g.mu.Unlock()
		// The first caller runs fn on its own goroutine: no hand-off and no
		// new stack to grow on every miss. If its client leaves, that counts
		// as one waiter leaving; the caller itself returns when fn does.
		stop := context.AfterFunc(ctx, func() { g.leave(key, f) })
		g.run(fctx, key, f, fn)
		if !stop() {
			var zero T
			return zero, false, ctx.Err()
		}
		return f.val, false, f.err
	}
	f.waiters++
	g.joined.Add(1)
	g.mu.Unlock()

	select {
	case <-f.done:
		return f.val, true, f.err
	case <-ctx.Done():
		g.leave(key, f)
		var zero T
		return zero, true, ctx.Err()
	}
}

// leave drops one waiter; the last one out cancels the execution.
func (g *Group[T]) leave(key string, f *flight[T]) {
	g.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	if last && g.flights[key] == f {
		// Later callers start afresh instead of joining a canceled call.
		delete(g.flights, key)
	}
	g.mu.Unlock()
	if last {
		f.cancel()
	}
}

func (g *Group[T]) run(ctx context.Context, key string, f *flight[T], fn func(context.Context) (T, error)) {
	defer func() {
		if r := recover(); r != nil {
			f.err = &PanicError{Value: r, Stack: debug.Stack()}
		}
		g.mu.Lock()
		if g.flights[key] == f {
			delete(g.flights, key)
		}
		g.mu.Unlock()
		f.cancel()
		close(f.done)
	}()
	f.val, f.err = fn(ctx)
}

// Joined counts the calls that waited for another caller's execution
// instead of starting their own.
func (g *Group[T]) Joined() int64 { return g.joined.Load() }
