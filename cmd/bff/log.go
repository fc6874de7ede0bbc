package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bffproxy/bff/internal/config"
)

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// logBuffering is how logWriter batches its output.
type logBuffering struct {
	Every     time.Duration // lines waiting are written at least this often
	Chunk     int           // and as soon as this many bytes wait
	Max       int           // bytes that may wait while the output is stuck; more lines are dropped
	CloseWait time.Duration // how long Close waits for a stuck output
}

// defaultLogBuffering: a quiet server's lines show within a fifth of a
// second; a busy one writes 64 KiB at a time; 4 MiB rides out a stall of a
// few hundred milliseconds at tens of thousands of requests a second.
var defaultLogBuffering = logBuffering{Every: 200 * time.Millisecond, Chunk: 64 << 10, Max: 4 << 20, CloseWait: 5 * time.Second}

// errLogDropped is returned by logWriter.Write for a line it dropped.
var errLogDropped = errors.New("log output stuck: line dropped")

// logWriter collects log lines in memory and writes them out in large chunks
// from one goroutine, rather than one write syscall per access-log line, on
// every request.
//
// Each Write is kept whole and in order, and the output only ever receives
// whole Writes, so lines never tear or interleave as long as each caller
// writes whole lines (slog's handlers and bff's access log do).
//
// Callers never wait for the output: the flusher writes outside the lock.
// While the output is stuck (a pipe nobody reads, a hung disk), lines pile up
// to Max bytes and beyond that are dropped and counted. A proxy that stops
// answering because its log cannot be written turns a logging problem into
// an outage; a counted gap in the log is the lesser harm.
type logWriter struct {
	out io.Writer
	cfg logBuffering

	mu      sync.Mutex
	pending []byte // whole lines waiting
	closed  bool

	spare   []byte        // the flusher's last chunk, reused (with pending, at most 2×Max); only the flusher touches it
	kick    chan struct{} // a Chunk's worth is waiting
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64
}

func newLogWriter(w io.Writer, cfg logBuffering) *logWriter {
	lw := &logWriter{out: w, cfg: cfg, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go lw.run()
	return lw
}

// Write queues p for output. It never waits for the output; if too much is
// already waiting, or after Close, p is dropped and counted.
func (lw *logWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	if lw.closed || len(lw.pending)+len(p) > lw.cfg.Max {
		closed := lw.closed
		lw.mu.Unlock()
		lw.dropped.Add(lineCount(p))
		if closed {
			return 0, os.ErrClosed
		}
		return 0, errLogDropped
	}
	lw.pending = append(lw.pending, p...)
	n := len(lw.pending)
	lw.mu.Unlock()
	if n >= lw.cfg.Chunk {
		select {
		case lw.kick <- struct{}{}:
		default: // the flusher is already due
		}
	}
	return len(p), nil
}

// Dropped is how many lines were dropped: the output was stuck, failed, or
// the writer was closed.
func (lw *logWriter) Dropped() uint64 { return lw.dropped.Load() }

func (lw *logWriter) run() {
	defer close(lw.done)
	t := time.NewTicker(lw.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-lw.kick:
		case <-lw.stop:
			lw.flush(true)
			return
		}
		lw.flush(false)
	}
}

// flush writes what is waiting; last closes the writer in the same step, so
// nothing queued before Close is left behind.
func (lw *logWriter) flush(last bool) {
	lw.mu.Lock()
	chunk := lw.pending
	if len(chunk) > 0 {
		lw.pending = lw.spare[:0]
	}
	lw.closed = lw.closed || last
	lw.mu.Unlock()
	if len(chunk) == 0 {
		return
	}
	if n, err := lw.out.Write(chunk); err != nil {
		lw.dropped.Add(lineCount(chunk[min(n, len(chunk)):]))
	}
	lw.spare = chunk[:0]
}

// Close writes everything queued and stops the flusher. If the output is
// stuck, it gives up after CloseWait so the process can still exit, and says
// so; the flusher then ends when the output's Write returns.
func (lw *logWriter) Close() error {
	lw.once.Do(func() { close(lw.stop) })
	t := time.NewTimer(lw.cfg.CloseWait)
	defer t.Stop()
	select {
	case <-lw.done:
		return nil
	case <-t.C:
		return errors.New("log output stuck: buffered lines not written")
	}
}

func lineCount(p []byte) uint64 {
	return uint64(max(bytes.Count(p, []byte{'\n'}), 1))
}
