package upstream

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// directTransport makes GET and HEAD attempts to a plain-HTTP upstream on
// the caller's goroutine: the request is written and the answer read with
// net/http's own wire code (Request.Write, ReadResponse) over a pooled
// keep-alive connection.
//
// http.Transport runs a reader and a writer goroutine per connection and
// hands every request and answer between them and the caller; on the home
// workload that hand-off cost a third of each call's CPU (43–46 µs per call
// against 26–28 µs written this way, 64 callers on two cores). Everything
// else (other methods, bodies, TLS, HTTP/2) goes to http.Transport, which
// also knows when a request that is not idempotent may be sent again.
type directTransport struct {
	host        string // the upstream's host[:port], as in its URLs
	addr        string // host:port to dial
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	fallback    http.RoundTripper
	maxIdle     int
	idleTimeout time.Duration
	maxHeader   int64
	slots       chan struct{} // open connections, if capped; nil means no cap

	open  atomic.Int64  // connections open, idle ones included
	dials atomic.Uint64 // connections opened since the start

	mu       sync.Mutex
	idle     []*directConn // oldest first; taken from the end
	sweeping bool          // a sweep of expired idle connections is scheduled
	pooled   chan struct{} // closed when a connection is pooled, if someone waits at MaxConns
}

// directConn is one pooled connection. lr caps what the reader may take
// from the socket while a response header is read, so an upstream that
// never ends its header cannot grow memory.
type directConn struct {
	net.Conn
	lr        cappedReader
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// cappedReader reads from the connection while n > 0 and counts what it
// read, so an attempt knows whether any of the answer arrived.
type cappedReader struct {
	c    net.Conn
	n    int64
	read int64
}

var errHeaderTooLarge = errors.New("response header too large")

func (r *cappedReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, err := r.c.Read(p)
	r.n -= int64(n)
	r.read += int64(n)
	return n, err
}

const directBufferSize = 16 << 10

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

func newDirectTransport(host, addr string, dial func(context.Context, string, string) (net.Conn, error),
	fallback http.RoundTripper, cfg Config, maxHeader int64) *directTransport {
	t := &directTransport{host: host, addr: addr, dial: dial, fallback: fallback,
		maxIdle: cfg.MaxIdleConns, idleTimeout: cfg.IdleConnTimeout, maxHeader: maxHeader}
	if cfg.MaxConns > 0 {
		t.slots = make(chan struct{}, cfg.MaxConns)
	}
	return t
}

func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead || req.URL.Scheme != "http" ||
		req.URL.Host != t.host || req.Body != nil && req.Body != http.NoBody {
		return t.fallback.RoundTrip(req)
	}
	// Ask for gzip as http.Transport does (not for HEAD: some servers then
	// give the compressed length), and undo it on the answer.
	askGzip := req.Method == http.MethodGet && req.Header["Accept-Encoding"] == nil && req.Header.Get("Range") == ""
	ctx := req.Context()
	for {
		c, reused, err := t.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, c, req, askGzip)
		if err == nil {
			return resp, nil
		}
		// An idle connection may have been closed by the upstream while it
		// sat in the pool; as http.Transport does, a GET or HEAD goes again
		// on a fresh connection if none of the answer arrived. Never after
		// a deadline: the connection's deadline fires a moment before the
		// context says so, and each try would cost another connection.
		var ne net.Error
		if !reused || c.lr.read > 0 || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) ||
			errors.As(err, &ne) && ne.Timeout() {
			return nil, err
		}
	}
}

// exchange writes req on c and reads the answer's header; the body is read
// by the caller through directBody, which returns c to the pool. On an
// error, or a panic, c is closed (and its MaxConns slot freed).
func (t *directTransport) exchange(ctx context.Context, c *directConn, req *http.Request, askGzip bool) (*http.Response, error) {
	answered := false
	defer func() {
		if !answered {
			t.discard(c)
		}
	}()
	deadline, _ := ctx.Deadline() // zero: none
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// Set after the deadline, so that a cancellation always wins over it.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
	resp, err := t.send(c, req, askGzip)
	if err != nil {
		stop()
		return nil, contextError(ctx, err)
	}
	resp.Body = &directBody{body: resp.Body, t: t, c: c, stop: stop, ctx: ctx,
		keep: !resp.Close && !req.Close && resp.StatusCode >= 200}
	if askGzip && resp.ContentLength != 0 && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		resp.Body = &gunzipBody{raw: resp.Body}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	}
	answered = true
	return resp, nil
}

// contextError reports a failed read or write as the context's error when
// the context ended it, as http.Transport does: the connection's deadline is
// the context's, and may fire a moment before the context says so.
func contextError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var ne net.Error
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) && errors.As(err, &ne) && ne.Timeout() {
		return context.DeadlineExceeded
	}
	return err
}

func (t *directTransport) send(c *directConn, req *http.Request, askGzip bool) (*http.Response, error) {
	c.lr.read = 0
	c.lr.n = t.maxHeader + directBufferSize
	// Errors stay unwrapped, as http.Transport leaves them: callers look
	// for net.Error's Timeout. The gzip header is on the request only while
	// it is written: retries send the same request again.
	if askGzip {
		req.Header["Accept-Encoding"] = acceptGzip
	}
	err := req.Write(c.bw)
	if askGzip {
		delete(req.Header, "Accept-Encoding")
	}
	if err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	for informational := 0; ; informational++ {
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			return nil, err
		}
		// 1xx answers come before the real one (101 would switch protocols,
		// which a GET to an API never asks for).
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			c.lr.n = math.MaxInt64 // the body's size is bounded by the caller
			return resp, nil
		}
		if informational == 5 {
			return nil, errors.New("too many 1xx informational responses")
		}
	}
}

var acceptGzip = []string{"gzip"}

// gunzipBody decompresses an answer the upstream gzipped because it was
// asked to; its reader is made on the first Read, so that a body nobody
// reads is not waited for.
type gunzipBody struct {
	raw io.ReadCloser
	zr  *gzip.Reader
	err error
}

func (b *gunzipBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.zr == nil {
		zr, err := gzip.NewReader(b.raw)
		if err == io.EOF {
			b.err = io.EOF // an empty body, as http.Transport reports it
			return 0, b.err
		}
		if err != nil {
			b.err = fmt.Errorf("gzip: %w", err)
			return 0, b.err
		}
		b.zr = zr
	}
	n, err := b.zr.Read(p)
	if err != nil && err != io.EOF {
		b.err = fmt.Errorf("gzip: %w", err)
		return n, b.err
	}
	return n, err
}

func (b *gunzipBody) Close() error { return b.raw.Close() }

// directBody hands the connection back once its answer was read to the
// end; an answer left unread closes it.
type directBody struct {
	body   io.ReadCloser
	t      *directTransport
	c      *directConn
	ctx    context.Context
	stop   func() bool
	keep   bool
	eof    bool
	broken bool
	closed bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.broken = true
		err = contextError(b.ctx, err)
	}
	return n, err
}

func (b *directBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	// stop reports false if the cancellation already fired: its deadline
	// may land at any time, so the connection cannot be reused.
	stopped := b.stop()
	if stopped && b.keep && !b.eof && !b.broken {
		// A body read to its length has not necessarily seen EOF yet: one
		// more read says so from memory (or ends a chunked body already
		// buffered). With the deadline past it never waits on the network:
		// an answer left unread costs its connection, not the caller's time.
		_ = b.c.SetReadDeadline(aLongTimeAgo)
		var probe [1]byte
		n, err := b.body.Read(probe[:])
		b.eof = n == 0 && err == io.EOF
	}
	// Bytes past the answer are not the next call's answer either.
	if stopped && b.keep && b.eof && b.c.br.Buffered() == 0 {
		b.t.put(b.c)
	} else {
		b.t.discard(b.c)
	}
	return nil
}

// get returns an idle connection, or dials one. With MaxConns reached it
// waits for a connection to close or to come back to the pool.
func (t *directTransport) get(ctx context.Context) (c *directConn, reused bool, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err // an idle connection would only be spoilt
		}
		c, pooled := t.takeIdle()
		if c != nil {
			return c, true, nil
		}
		if t.slots == nil {
			break
		}
		select {
		case t.slots <- struct{}{}:
		case <-pooled:
			continue
		case <-ctx.Done():
			return nil, false, fmt.Errorf("wait for a connection: %w", ctx.Err())
		}
		break
	}
	nc, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		t.release()
		return nil, false, err
	}
	t.open.Add(1)
	t.dials.Add(1)
	c = &directConn{Conn: nc, lr: cappedReader{c: nc}}
	c.br = bufio.NewReaderSize(&c.lr, directBufferSize)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	return c, false, nil
}

// takeIdle returns the most recently used idle connection that is still
// good, closing those that are not. With none, and MaxConns set, it returns
// a channel closed when a connection is next pooled: found empty and
// waited on under one lock, so a connection put back in between is not
// missed.
func (t *directTransport) takeIdle() (*directConn, <-chan struct{}) {
	now := time.Now()
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			var pooled chan struct{}
			if t.slots != nil {
				if t.pooled == nil {
					t.pooled = make(chan struct{})
				}
				pooled = t.pooled
			}
			t.mu.Unlock()
			return nil, pooled
		}
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		// One non-blocking peek (~1 µs): an upstream may have closed the
		// connection, or sent something unasked (a 408 before closing),
		// which would otherwise be read as this call's answer.
		if now.Sub(c.idleSince) < t.idleTimeout && !peerClosed(c.Conn) {
			return c, nil
		}
		t.discard(c)
	}
}

// wakeLocked tells callers waiting at MaxConns that a connection was
// pooled. t.mu is held.
func (t *directTransport) wakeLocked() {
	if t.pooled != nil {
		close(t.pooled)
		t.pooled = nil
	}
}

// put pools a connection whose answer was read to the end.
func (t *directTransport) put(c *directConn) {
	c.idleSince = time.Now()
	t.mu.Lock()
	t.idle = append(t.idle, c)
	var extra *directConn
	if len(t.idle) > t.maxIdle {
		extra = t.idle[0]
		t.idle = append(t.idle[:0], t.idle[1:]...)
	}
	t.wakeLocked()
	sweep := !t.sweeping
	t.sweeping = true
	t.mu.Unlock()
	if extra != nil {
		t.discard(extra)
	}
	if sweep {
		time.AfterFunc(idleCheckEvery, t.sweep)
	}
}

// idleCheckEvery is how often idle connections are looked at: an upstream
// that closes its idle connections (most do, after a few seconds) gets its
// sockets back within about this long.
const idleCheckEvery = time.Second

// sweep closes pooled connections that were idle for idleTimeout, or that
// the upstream closed: http.Transport learns of the latter from the reader
// goroutine it keeps per connection; here each connection idle for a
// while is peeked at without blocking. It runs while any are pooled.
//
// The pool is oldest first, so the connections to look at are a prefix:
// they are taken out, looked at without the lock, and the good ones put
// back in front, still older than any pooled meanwhile.
func (t *directTransport) sweep() {
	now := time.Now()
	t.mu.Lock()
	n := 0
	for n < len(t.idle) && now.Sub(t.idle[n].idleSince) >= idleCheckEvery {
		n++
	}
	old := append([]*directConn(nil), t.idle[:n]...)
	rest := copy(t.idle, t.idle[n:])
	clear(t.idle[rest:])
	t.idle = t.idle[:rest]
	t.mu.Unlock()

	good := old[:0]
	for _, c := range old {
		if now.Sub(c.idleSince) >= t.idleTimeout || peerClosed(c.Conn) {
			t.discard(c)
			continue
		}
		good = append(good, c)
	}

	t.mu.Lock()
	t.idle = append(good, t.idle...)
	if len(good) > 0 {
		t.wakeLocked()
	}
	var extra []*directConn
	if over := len(t.idle) - t.maxIdle; over > 0 {
		extra = append(extra, t.idle[:over]...)
		t.idle = t.idle[over:]
	}
	again := len(t.idle) > 0
	t.sweeping = again
	t.mu.Unlock()
	for _, c := range extra {
		t.discard(c)
	}
	if again {
		time.AfterFunc(idleCheckEvery, t.sweep)
	}
}

func (t *directTransport) discard(c *directConn) {
	_ = c.Close()
	t.open.Add(-1)
	t.release()
}

// stats reports the pool for metrics.
func (t *directTransport) stats() PoolStats {
	return PoolStats{Open: int(t.open.Load()), Idle: t.idleCount(), Dials: t.dials.Load()}
}

func (t *directTransport) release() {
	if t.slots != nil {
		<-t.slots
	}
}

// CloseIdleConnections closes the pooled connections, and the fallback's.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, c := range idle {
		t.discard(c)
	}
	if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func (t *directTransport) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle)
}
