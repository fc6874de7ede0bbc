package bff

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/bffproxy/bff/internal/auth"
)

// requestInfo is what inner handlers tell the access log about a request.
type requestInfo struct {
	id     string
	client string
	view   string
	cache  CacheResult
	// metrics is the serving view's recorder; nil until a view takes the request.
	metrics ViewMetrics
	// claims are the verified token's, if the view looked at one.
	claims *auth.Claims
	// partial is the partial-response header value, if any.
	partial string
	// upstreams summarizes the calls of the execution that answered, if any.
	upstreams string
	err       error
	// start is when the front took the request: a hit reads its age from
	// it rather than from the clock again.
	start time.Time
	// route is chi's routing state when the front routed the request
	// itself; nil when chi's ServeHTTP did, and the context holds it.
	route *chi.Context
}

// failed records why the request failed, and the calls of the execution
// that failed, if it made any. A shed request is no cache miss: the view
// did not run.
func (i *requestInfo) failed(err error) {
	if i == nil {
		return
	}
	i.err = err
	if errors.Is(err, errOverloaded) {
		i.cache = CacheNone
	}
	var run *failedRun
	if i.upstreams == "" && errors.As(err, &run) {
		i.upstreams = run.summary
	}
}

func (i *requestInfo) startedAt() time.Time {
	if i == nil {
		return time.Time{}
	}
	return i.start
}

// requestIDOf returns the request's ID, set by the front on the way in.
func requestIDOf(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// infoFrom finds the request's bookkeeping in the ResponseWriter chain. It
// travels with the writer rather than the context, which would cost another
// copy of the request.
func infoFrom(w http.ResponseWriter) *requestInfo {
	for {
		switch x := w.(type) {
		case *exchange:
			return &x.info
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil
		}
	}
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
	var b [32]byte
	return string(strconv.AppendUint(append(b[:0], g.prefix...), g.n.Add(1), 36))
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

// exchange wraps the ResponseWriter: it remembers the status and size for
// the access log and carries the request's bookkeeping, in one allocation.
type exchange struct {
	http.ResponseWriter
	status int
	bytes  int
	info   requestInfo
	idv    [1]string // backs the X-Request-Id header value: one allocation less
}

func (x *exchange) WriteHeader(code int) {
	if x.status == 0 {
		x.status = code
	}
	x.ResponseWriter.WriteHeader(code)
}

func (x *exchange) Write(b []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	n, err := x.ResponseWriter.Write(b)
	x.bytes += n
	return n, err
}

func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// observe is the first three links of the chain in one middleware: request
// ID, panic recovery and the access log.
func (f *Front) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.observed(w, r, next, nil)
	})
}

// observed serves r with next inside observe's bookkeeping; route is the
// request's routing state if the front found its route (see ServeHTTP).
func (f *Front) observed(w http.ResponseWriter, r *http.Request, next http.Handler, route *chi.Context) {
	start := f.now()
	x := &exchange{ResponseWriter: w}
	x.info.start = start
	x.info.route = route
	// On every response, whoever writes it: a preflight, a 429, a 404.
	w.Header()["X-Content-Type-Options"] = nosniff
	if id := r.Header["X-Request-Id"]; len(id) == 1 && validRequestID(id[0]) {
		x.info.id = id[0]
	} else {
		x.info.id = f.ids.next()
		x.idv[0] = x.info.id
		r.Header["X-Request-Id"] = x.idv[:]
	}
	// The ID is sent back only where someone will quote it: on errors and
	// partial answers (see writeProblem, viewHandler.write). A ninth
	// header on every hit costs more than the rest of the hit.

	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			f.log.Error("panic serving request", "request_id", x.info.id, "panic", v, "stack", string(debug.Stack()))
			x.info.err = errors.New("panic")
			if x.status == 0 {
				writeProblem(x, r, newProblem(http.StatusInternalServerError, ProblemInternal, "the request failed unexpectedly"))
			}
		}
		now := f.now()
		d := now.Sub(start)
		status := x.status
		if status == 0 {
			status = statusClientGone
		}
		m := x.info.metrics
		if m == nil {
			m = f.otherMetrics
		}
		m.Request(status, d, x.info.cache, x.info.partial != "")
		if f.access != nil {
			f.access.write(now, r, x, status, d)
		}
	}()
	next.ServeHTTP(x, r)
}

// limits rejects requests whose URL is longer than allowed before any work,
// and drops request headers no client sends before views forward them.
func (f *Front) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.RequestURI) > f.maxURLBytes {
			writeProblem(w, r, newProblem(http.StatusRequestURITooLong, ProblemURITooLong,
				"the request URI is longer than "+strconv.Itoa(f.maxURLBytes)+" bytes"))
			return
		}
		dropOddLanguage(r.Header)
		dropOddTraceContext(r.Header)
		if err := checkIdempotencyKey(r); err != nil {
			writeProblem(w, r, newProblem(http.StatusBadRequest, ProblemBadRequest, err.Error()))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Bounds on forwarded headers that are not part of the cache key: an
// upstream that refuses an oversized one would otherwise make a degraded
// answer that is cached and served to everyone asking for the same path.
const (
	// maxTraceState is what W3C Trace Context asks every vendor to pass on.
	maxTraceState = 512
	// MaxIdempotencyKey is the longest Idempotency-Key accepted (the
	// OpenAPI documents say so): generous for the UUIDs and hashes clients
	// send.
	MaxIdempotencyKey = 255
)

// dropOddTraceContext removes a traceparent that is not W3C Trace Context
// (one line: version-trace_id-parent_id-flags, lowercase hex), and a
// tracestate that is too long, not printable, or has no traceparent to
// belong to, before either is forwarded.
func dropOddTraceContext(h http.Header) {
	if v, ok := h["Traceparent"]; ok && (len(v) != 1 || !validTraceparent(v[0])) {
		delete(h, "Traceparent")
	}
	v, ok := h["Tracestate"]
	if !ok {
		return
	}
	if _, parent := h["Traceparent"]; !parent {
		delete(h, "Tracestate")
		return
	}
	n := len(v) - 1 // the commas joining several lines
	for _, line := range v {
		n += len(line)
		// Tabs may stand around list members (the spec's optional white space).
		if n > maxTraceState || !printableASCII(strings.ReplaceAll(line, "\t", " ")) {
			delete(h, "Tracestate")
			return
		}
	}
}

// zeroTraceID is the all-zero trace ID, invalid as a trace ID and (its
// first 16 digits) as a parent ID.
const zeroTraceID = "00000000000000000000000000000000"

// validTraceparent accepts version 00 exactly, and later versions by their
// first 55 bytes (a later version may append fields after a dash).
func validTraceparent(s string) bool {
	const size = 55 // 2 + 1 + 32 + 1 + 16 + 1 + 2
	if len(s) < size || len(s) > maxTraceState || s[:2] == "ff" {
		return false
	}
	if len(s) > size && (s[:2] == "00" || s[size] != '-' || !printableASCII(s[size:])) {
		return false
	}
	for i := 0; i < size; i++ {
		c := s[i]
		switch i {
		case 2, 35, 52:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return s[3:35] != zeroTraceID && s[36:52] != zeroTraceID[:16]
}

// checkIdempotencyKey drops the key from reads, where it means nothing,
// drops an empty one, and refuses one on a mutation that no client library would send: the
// caller relies on it, so it is not dropped silently.
func checkIdempotencyKey(r *http.Request) error {
	v, ok := r.Header["Idempotency-Key"]
	if !ok {
		return nil
	}
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions,
		len(v) == 1 && v[0] == "": // no key, as an empty Authorization is no token
		delete(r.Header, "Idempotency-Key")
		return nil
	}
	if len(v) != 1 || len(v[0]) > MaxIdempotencyKey || !printableASCII(v[0]) {
		return fmt.Errorf("Idempotency-Key must be one value of 1 to %d printable ASCII characters", MaxIdempotencyKey)
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
