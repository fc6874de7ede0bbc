package bff

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"
)

type ctxKey int

const infoKey ctxKey = iota

// requestInfo travels with a request so that inner handlers can tell the
// access log what they did.
type requestInfo struct {
	id     string
	client string
	view   string
	cache  string // HIT, MISS, or "" when no cache was consulted
	// partial is the partial-response header value, if any.
	partial string
	err     error
}

// RequestID returns the request's ID, or "".
func RequestID(ctx context.Context) string {
	if info, ok := ctx.Value(infoKey).(*requestInfo); ok {
		return info.id
	}
	return ""
}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(infoKey).(*requestInfo)
	return info
}

// requestIDs makes IDs unique per process start: a random prefix and a counter.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (g *requestIDs) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// validRequestID accepts a caller's ID only if it is short and plain, so it
// is safe in logs and headers.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// statusWriter remembers the status and size for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// entry carries one request's bookkeeping in a single allocation.
type entry struct {
	info requestInfo
	sw   statusWriter
}

// observe is the first three links of the chain in one middleware: request
// ID, panic recovery and the access log. One wrapper keeps the hot path to
// one allocation for all three.
func (f *Front) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		e := &entry{sw: statusWriter{ResponseWriter: w}}
		if id := r.Header.Get("X-Request-Id"); validRequestID(id) {
			e.info.id = id
		} else {
			e.info.id = f.ids.next()
			r.Header["X-Request-Id"] = []string{e.info.id}
		}
		w.Header()["X-Request-Id"] = []string{e.info.id}
		r = r.WithContext(context.WithValue(r.Context(), infoKey, &e.info))

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				f.log.Error("panic serving request", "request_id", e.info.id, "panic", v, "stack", string(debug.Stack()))
				e.info.err = errors.New("panic")
				if e.sw.status == 0 {
					writeProblem(&e.sw, r, newProblem(http.StatusInternalServerError, ProblemInternal, "the request failed unexpectedly"))
				}
			}
			if f.accessLog {
				f.logAccess(r, e, time.Since(start))
			}
		}()
		next.ServeHTTP(&e.sw, r)
	})
}

func (f *Front) logAccess(r *http.Request, e *entry, d time.Duration) {
	status := e.sw.status
	if status == 0 {
		status = 499 // the client went away before anything was written
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("request_id", e.info.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.Int("status", status),
		slog.Int("bytes", e.sw.bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
	}
	if e.info.client != "" {
		attrs = append(attrs, slog.String("client", e.info.client), slog.String("view", e.info.view))
	}
	if e.info.cache != "" {
		attrs = append(attrs, slog.String("cache", e.info.cache))
	}
	if e.info.partial != "" {
		attrs = append(attrs, slog.String("partial", e.info.partial))
	}
	if e.info.err != nil {
		attrs = append(attrs, slog.String("error", e.info.err.Error()))
	}
	f.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// limits rejects requests whose URL is longer than allowed before any work.
func (f *Front) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.RequestURI) > f.maxURLBytes {
			writeProblem(w, r, newProblem(http.StatusRequestURITooLong, ProblemURITooLong,
				"the request URI is longer than "+strconv.Itoa(f.maxURLBytes)+" bytes"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
