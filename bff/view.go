package bff

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/auth"
	"github.com/bffproxy/bff/internal/faults"
	"github.com/bffproxy/bff/upstream"
	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// PartialHeader names each optional part missing from a 200 response and
// why, as a list: `recommendations;reason=timeout, reviews;reason=error;status=500`.
const PartialHeader = "Bff-Partial"

// viewHandler serves one view of one client.
type viewHandler struct {
	front     *Front
	client    string
	plan      *aggregate.Plan
	keyPath   []keyPart // the route, to write the request's canonical path
	keySuffix string    // the definition's fingerprint
	tag       string    // groups the view's cache entries for purges
	metrics   ViewMetrics
	spanName  string
	perUser   bool
	// tokenSeen: an upstream receives the caller's token, and may answer
	// by any claim in it.
	tokenSeen bool
	// failLogged is when a failure was last logged (unix ns); failsUnlogged
	// counts those since (see logFailure).
	failLogged    atomic.Int64
	failsUnlogged atomic.Int64
	ttl           time.Duration
	swr, sie      time.Duration // stale-while-revalidate, stale-if-error
	refreshing    sync.Map      // keys being revalidated in the background
	drifted       sync.Map      // fields already logged as missing
	cacheControl  []string
	vary          []string
	params        []string // parameter names, in the plan's order: path, then query
	nPath         int      // how many of params are path parameters
	claims        []string // token claims the templates read, after the query parameters
	takesBody     bool     // a mutation with a body policy
	query         []aggregate.QueryParam
	strictQuery   bool                 // undeclared query parameters are a 400
	auth          aggregate.AuthPolicy // as applied, for Routes
	rateLimited   bool                 // the client's rate limit applies, for Routes
}

// outcome is one execution of a view, shared by coalesced requests.
type outcome struct {
	entry   *cache.Entry
	timing  []string      // Server-Timing
	summary string        // the calls, for the access log
	ttl     time.Duration // how long entry is kept; 0 when it must not be shared
	shared  bool          // entry came from the shared tier
}

// auth is the policy as applied (appliedAuth): when it needs a token, no
// shared cache downstream may keep the view's answers.
func (f *Front) newViewHandler(client string, plan *aggregate.Plan, auth aggregate.AuthPolicy) *viewHandler {
	gated := auth.Mode == "required"
	pol := plan.Cache()
	h := &viewHandler{
		front:  f,
		client: client,
		plan:   plan,
		// The definition's fingerprint keeps a changed view (after a reload)
		// from serving what its old definition cached.
		keySuffix: "\x00" + plan.Fingerprint() + "\x00",
		tag:       plan.Name(),
		metrics:   f.metrics.View(client, plan.Name()),
		spanName:  plan.Method() + " /" + client + plan.Route(),
		perUser:   pol.Scope == aggregate.ScopeUser,
		tokenSeen: slices.ContainsFunc(plan.Upstreams(), f.forwardAuth),
		ttl:       pol.TTL,
		swr:       pol.StaleWhileRevalidate,
		sie:       pol.StaleIfError,
		vary:      []string{"Accept-Encoding, Accept-Language"},
		params:    plan.ParamNames(),
		auth:      auth,
	}
	h.nPath, h.query, h.strictQuery = plan.PathParams(), plan.QueryParams(), plan.RejectsUnknownQuery()
	h.claims = plan.ClaimParams()
	h.takesBody = plan.TakesBody()
	h.keyPath = keyParts("/"+client+plan.Route(), h.params[:h.nPath])
	secs := strconv.Itoa(int(pol.TTL / time.Second))
	switch {
	case pol.TTL <= 0:
		h.cacheControl = noStore
	case h.perUser || gated:
		// A CDN would serve a gated answer to callers without a token.
		h.cacheControl = []string{"private, max-age=" + secs}
	default:
		h.cacheControl = []string{"public, max-age=" + secs}
	}
	switch {
	case h.perUser && plan.Variants() > 0:
		h.vary = []string{"Accept-Encoding, Accept-Language, Authorization, X-App-Version"}
	case h.perUser:
		h.vary = []string{"Accept-Encoding, Accept-Language, Authorization"}
	case plan.Variants() > 0:
		h.vary = []string{"Accept-Encoding, Accept-Language, X-App-Version"}
	}
	if f.faults {
		// A browser's copy of the healthy answer must not hide a fault asked for.
		h.vary = []string{h.vary[0] + ", " + faults.Header}
	}
	return h
}

// named names the view in the request's bookkeeping before anything in
// front of it (auth, rate limits) may refuse the request: those refusals
// are the view's too, in its metrics and access-log lines.
func (h *viewHandler) named(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := infoFrom(w); info != nil {
			info.client, info.view, info.metrics = h.client, h.plan.Name(), h.metrics
		}
		next.ServeHTTP(w, r)
	})
}

func (h *viewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := infoFrom(w)
	if h.front.tracing {
		h.nameSpan(r)
	}
	var inline [4]string // most views have a parameter or two: no allocation on a hit
	params := inline[:0]
	if len(h.params) > len(inline) {
		params = make([]string, 0, len(h.params))
	}
	params = params[:len(h.params)]
	for i, name := range h.params[:h.nPath] {
		params[i] = pathParam(r, info, name)
	}
	if len(h.query) > 0 || h.strictQuery {
		if err := h.queryValues(r, params[h.nPath:]); err != nil {
			h.fail(w, r, info, err)
			return
		}
	}
	if len(h.claims) > 0 {
		at := h.nPath + len(h.query)
		for i, name := range h.claims {
			if info == nil || info.claims == nil {
				h.fail(w, r, info, &aggregate.ParamError{View: h.plan.Name(), Param: "auth." + name, Reason: "needs a verified token"})
				return
			}
			if params[at+i] = claimValue(info.claims, name); params[at+i] == "" {
				writeProblem(w, r, newProblem(http.StatusForbidden, ProblemForbidden, "the token has no "+name+" claim, which this view needs"))
				return
			}
		}
	}
	if err := h.plan.Validate(params); err != nil {
		h.fail(w, r, info, err)
		return
	}
	var fault []string
	if h.front.faults {
		// Checked before anything is sent: a mutation with a malformed
		// fault must not reach its upstream for real.
		if fault = r.Header[faults.Header]; len(fault) > 0 {
			if _, err := faults.Parse(strings.Join(fault, ",")); err != nil {
				writeProblem(w, r, newProblem(http.StatusBadRequest, ProblemBadRequest, faults.Header+": "+err.Error()))
				return
			}
		}
	}
	if h.plan.Mutation() {
		h.mutate(w, r, info, params)
		return
	}
	if len(fault) > 0 {
		h.faulted(w, r, info, params)
		return
	}
	var claims *auth.Claims
	if info != nil {
		claims = info.claims
	}
	key := h.cacheKey(params, r.Header, claims)
	var stale *cache.Entry // a copy past its TTL that may still stand in
	if e, ok := h.front.cache.Get(key); ok {
		now := info.startedAt()
		if now.IsZero() {
			now = h.front.now()
		}
		age := now.Sub(e.StoredAt)
		switch {
		case h.swr == 0 && h.sie == 0 || age < h.ttl:
			if info != nil {
				info.cache = CacheHit
			}
			w.Header()["Age"] = ageValue(age)
			h.write(w, r, e, hit, "")
			return
		case age < h.ttl+h.swr:
			if info != nil {
				info.cache = CacheStale
			}
			w.Header()["Age"] = ageValue(age)
			h.write(w, r, e, staleHit, "")
			h.revalidate(key, e, params, r)
			return
		case h.canStandIn(e):
			stale = e
		}
	}
	h.miss(w, r, info, key, params, stale)
}

// revalidate refreshes a stale entry in the background, once per key at a
// time, while callers are served the stale copy.
func (h *viewHandler) revalidate(key string, stale *cache.Entry, values []string, r *http.Request) {
	if _, busy := h.refreshing.LoadOrStore(key, struct{}{}); busy {
		return
	}
	params := append([]string(nil), values...)
	header := r.Header.Clone() // the request ends before the refresh does
	h.front.executing.Add(1)   // counted from now, so Drain waits for it
	go func() {
		defer h.front.executing.Add(-1)
		defer h.refreshing.Delete(key)
		// Nobody waits for it: the view's own deadline bounds it.
		_, _, err := h.front.flights.Do(context.Background(), h.flightKey(key), func(ctx context.Context) (*outcome, error) {
			return h.fill(ctx, key, params, header)
		})
		if upstream.Refused(err) {
			// The resource is gone (a 404): its copy is not served again
			// for the rest of the window; the next request hears the 404.
			// Only that copy: a fresher one stored meanwhile stays.
			if cur, ok := h.front.cache.Get(key); ok && cur == stale {
				h.front.cache.Delete(key)
			}
		}
	}()
}

// flightKey is what identical misses coalesce on: the cache key and the
// purge epoch, so that a request made after a purge (a read right after a
// mutation that invalidated the view) never joins a fetch that began before
// it and would answer with what the purge removed.
func (h *viewHandler) flightKey(key string) string {
	var b [20]byte
	return key + "\x00" + string(strconv.AppendUint(b[:0], h.front.cache.Epoch(), 36))
}

// miss runs the view, or waits for an identical request already running it.
// If that fails and a stale copy may stand in, the copy is served, marked.
func (h *viewHandler) miss(w http.ResponseWriter, r *http.Request, info *requestInfo, key string, values []string, stale *cache.Entry) {
	params := append([]string(nil), values...) // outlives this request if others wait
	out, joined, err := h.front.flights.Do(r.Context(), h.flightKey(key), func(ctx context.Context) (*outcome, error) {
		return h.fill(ctx, key, params, r.Header)
	})
	if info != nil {
		switch {
		case joined:
			info.cache = CacheCoalesced
		case out != nil && out.shared:
			info.cache = CacheShared
		default:
			info.cache = CacheMiss
		}
		if out != nil {
			info.upstreams = out.summary
		}
	}
	if err != nil {
		if h.cutOff(w, r) {
			return
		}
		// A copy read before the fetch may have been purged while it ran:
		// a purge is never undone by a stand-in. Nor is an upstream's 404:
		// the resource is gone.
		refused := upstream.Refused(err)
		if stale != nil && (refused || h.front.cache.Hidden(key, stale)) {
			stale = nil
		}
		var shared *sharedStandIn
		if stale == nil && !refused && errors.As(err, &shared) && h.canStandIn(shared.entry) && !h.front.shared.Covered(key, shared.entry) {
			stale = shared.entry // another replica's copy, past its TTL
		}
		if stale != nil {
			info.failed(err)
			h.serveStale(w, r, info, stale, staleReason(err))
			return
		}
		h.fail(w, r, info, err)
		return
	}
	w.Header()["Server-Timing"] = out.timing
	if out.shared {
		w.Header()["Age"] = ageValue(h.front.now().Sub(out.entry.StoredAt))
		h.write(w, r, out.entry, hit, "")
		return
	}
	h.write(w, r, out.entry, miss, "")
}

// fill answers a miss in memory: from the shared tier if a replica stored
// the response there, else by running the view — after waiting for the
// replica already running it, when replicas coalesce through a lock.
func (h *viewHandler) fill(ctx context.Context, key string, params []string, header http.Header) (*outcome, error) {
	tier := h.front.shared
	if tier == nil || h.ttl <= 0 {
		// A view that is not cached has nothing to share: no Redis read,
		// and no lock for other replicas to wait on for nothing.
		return h.execute(ctx, key, params, header, true, nil)
	}
	epoch, start := h.front.cache.Epoch(), time.Now() // a purge during the lookup covers what it finds
	var standIn *cache.Entry
	if e, left, ok := tier.Get(ctx, key); ok {
		if out := h.sharedHit(key, e, left, epoch, start); out != nil {
			return out, nil
		}
		standIn = e // past its TTL: no answer, but it may stand in for one that fails
	}
	var lock *cache.Lock
	defer func() {
		// A panicking execution (recovered further up) still lets the
		// other replicas' waiters go; on return, Store releases the lock
		// once the entry is written, so that waiters find it.
		if p := recover(); p != nil {
			lock.Release()
			panic(p)
		}
	}()
	if tier.Locking() {
		var won bool
		if lock, won = tier.TryLock(ctx, key); !won {
			fresh := func(e *cache.Entry) bool { return h.front.now().Sub(e.StoredAt) < h.ttl }
			if e, left, ok := tier.Await(ctx, key, fresh); ok {
				if out := h.sharedHit(key, e, left, epoch, start); out != nil {
					return out, nil
				}
			}
		}
	}
	out, err := h.execute(ctx, key, params, header, true, nil)
	if err != nil {
		lock.Release()
		if standIn != nil && h.sie > 0 {
			return nil, &sharedStandIn{err: err, entry: standIn}
		}
		return nil, err
	}
	tier.Store(key, out.entry, out.ttl, lock)
	return out, nil
}

// sharedStandIn is a failed execution with a copy from the shared tier
// that may stand in for its answer (stale_if_error), when this replica
// has none of its own: a new replica has an empty memory.
type sharedStandIn struct {
	err   error
	entry *cache.Entry
}

func (s *sharedStandIn) Error() string { return s.err.Error() }
func (s *sharedStandIn) Unwrap() error { return s.err }

// canStandIn reports whether e, past its TTL, is within stale_if_error
// and complete.
func (h *viewHandler) canStandIn(e *cache.Entry) bool {
	return h.front.now().Sub(e.StoredAt) < h.ttl+h.sie && e.Header[PartialHeader] == nil
}

// sharedHit keeps an entry found in the shared tier in memory for the rest
// of its TTL. Nil if it is past the view's TTL: a stale copy is no answer
// to a miss.
func (h *viewHandler) sharedHit(key string, e *cache.Entry, left time.Duration, epoch uint64, start time.Time) *outcome {
	if h.front.now().Sub(e.StoredAt) >= h.ttl {
		return nil
	}
	e.Epoch = epoch
	h.front.cache.Set(key, e, left)
	return &outcome{
		entry:   e,
		timing:  []string{"redis;dur=" + strconv.FormatFloat(float64(time.Since(start).Microseconds())/1000, 'f', 1, 64) + `;desc="shared cache"`},
		summary: "shared-cache",
		shared:  true,
	}
}

// mutate runs a mutation view: the body read within its bound and checked
// against the view's schema, the calls made once (never coalesced, never
// cached; retried only with an Idempotency-Key), and on success the views
// it changes dropped from the cache.
func (h *viewHandler) mutate(w http.ResponseWriter, r *http.Request, info *requestInfo, params []string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.plan.MaxBodyBytes()))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeProblem(w, r, newProblem(http.StatusRequestEntityTooLarge, ProblemBodyTooLarge,
				"the body is larger than "+strconv.FormatInt(tooBig.Limit, 10)+" bytes"))
			return
		}
		writeProblem(w, r, newProblem(http.StatusBadRequest, ProblemBadRequest, "the body could not be read"))
		return
	}
	if h.takesBody {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			writeProblem(w, r, newProblem(http.StatusUnsupportedMediaType, ProblemUnsupportedMediaType, "send the body as application/json"))
			return
		}
		if err := h.plan.ValidateBody(body); err != nil {
			h.fail(w, r, info, err)
			return
		}
	} else if len(body) > 0 {
		writeProblem(w, r, newProblem(http.StatusBadRequest, ProblemBadRequest, "this view takes no body"))
		return
	}
	out := h.uncached(w, r, info, params, body)
	if out == nil {
		return
	}
	for _, view := range h.plan.Invalidates() {
		h.front.purge(view)
	}
	h.write(w, r, out.entry, nil, "")
}

// uncached runs the view for this request alone: not coalesced with any
// other, not stored. Nil means it failed and the failure was written.
func (h *viewHandler) uncached(w http.ResponseWriter, r *http.Request, info *requestInfo, params []string, body []byte) *outcome {
	if info != nil {
		info.cache = CacheMiss
	}
	// A copy: the caller's parameters live on its stack.
	out, err := h.execute(r.Context(), "", append([]string(nil), params...), r.Header, false, body)
	if err != nil {
		if !h.cutOff(w, r) {
			h.fail(w, r, info, err)
		}
		return nil
	}
	if info != nil {
		info.upstreams = out.summary
	}
	w.Header()["Server-Timing"] = out.timing
	return out
}

// faulted runs the view with injected upstream faults, past the cache both
// ways: a degraded answer made on request must not reach anyone else.
func (h *viewHandler) faulted(w http.ResponseWriter, r *http.Request, info *requestInfo, params []string) {
	if out := h.uncached(w, r, info, params, nil); out != nil {
		h.write(w, r, out.entry, miss, "")
	}
}

// serveStale sends a copy past its TTL in place of a fresh answer that
// could not be made, saying so in the partial header.
func (h *viewHandler) serveStale(w http.ResponseWriter, r *http.Request, info *requestInfo, e *cache.Entry, reason string) {
	if info != nil {
		info.cache = CacheStale
	}
	w.Header()["Age"] = ageValue(h.front.now().Sub(e.StoredAt))
	h.write(w, r, e, staleHit, "stale;reason="+reason)
}

// cutOff answers a request whose context ended: 503 when the server cut
// it off at shutdown, nothing when the client left. False if it did not end.
func (h *viewHandler) cutOff(w http.ResponseWriter, r *http.Request) bool {
	if r.Context().Err() == nil {
		return false
	}
	if h.front.aborting.Load() {
		w.Header()["Connection"] = []string{"close"}
		w.Header()["Retry-After"] = retryAfterOne
		writeProblem(w, r, newProblem(http.StatusServiceUnavailable, ProblemShuttingDown,
			"the server is shutting down; try again"))
	}
	return true // otherwise the client is gone; nobody reads an answer
}

// failedRun is a failed execution with its calls' summary, which the
// access line carries for failures too (which call failed, how, after how
// many attempts).
type failedRun struct {
	err     error
	summary string
}

func (f *failedRun) Error() string { return f.err.Error() }
func (f *failedRun) Unwrap() error { return f.err }

// errOverloaded is an execution refused because max_in_flight are running.
var errOverloaded = errors.New("too many view executions in progress")

// execute runs the view once and caches what it made. It takes one of the
// front's in-flight slots for as long as the upstreams work: requests
// waiting for the same answer share it, and writing the answer to a slow
// client holds none.
func (h *viewHandler) execute(ctx context.Context, key string, params []string, header http.Header, store bool, body []byte) (*outcome, error) {
	if !h.front.admit() {
		return nil, errOverloaded
	}
	defer h.front.release()
	h.front.executing.Add(1)
	defer h.front.executing.Add(-1)
	epoch, fetched := h.front.cache.Epoch(), time.Now() // a purge while upstreams answer covers this result
	// Kept sections go under the request's path, also for runs that store
	// nothing (a mutation, a faulted request).
	var place strings.Builder
	h.writePlace(&place, params)
	res, err := h.front.engine.Run(ctx, h.plan, aggregate.Input{Params: params, Header: header, Variant: h.variant(header), Body: body,
		Place: place.String(), Epoch: epoch})
	if err != nil {
		if res != nil {
			err = &failedRun{err: err, summary: callSummary(res.Calls)}
		}
		return nil, err
	}
	if store && ctx.Err() != nil {
		// Every caller left and the run was canceled: its parts that ended
		// "canceled" describe nobody's failure, so it is not kept. (A
		// mutation goes on: what it changed upstream is done.)
		return nil, fmt.Errorf("view %s: every caller left: %w", h.plan.Name(), ctx.Err())
	}
	hdr := make(http.Header, 6)
	hdr["Content-Type"] = jsonType
	hdr["Cache-Control"] = h.cacheControl
	hdr["Vary"] = h.vary
	hdr["X-Content-Type-Options"] = nosniff
	out := &outcome{timing: []string{serverTiming(res.Calls)}, summary: callSummary(res.Calls)}
	for _, field := range res.MissingFields {
		h.metrics.MissingField(field)
		if _, logged := h.drifted.LoadOrStore(field, struct{}{}); !logged {
			h.front.log.Warn("an upstream did not send a field the view picks; it is written as null (logged once per view and field, counted in bff_view_missing_fields_total)",
				"view", h.plan.Name(), "field", field)
		}
	}
	ttl := h.ttl
	if len(res.Missing) > 0 {
		hdr[PartialHeader] = []string{partialValue(res.Missing)}
		// A degraded answer must not outlive the failure in anyone's cache.
		hdr["Cache-Control"] = noStore
		ttl = min(ttl, h.front.partialTTL)
	}
	out.entry = cache.NewEntry(res.Body, hdr, h.front.now())
	out.entry.Tag, out.entry.Epoch, out.entry.Fetched = h.tag, epoch, fetched
	if len(res.Missing) == 0 {
		ttl += max(h.swr, h.sie) // kept past its TTL to stand in when needed
		out.ttl = ttl            // degraded answers stay with the replica that made them
	}
	if store {
		h.front.cache.Set(key, out.entry, ttl)
	}
	return out, nil
}

// ages holds the Age header values of the first minutes, so a hit does
// not format and allocate one.
var ages = func() [][]string {
	a := make([][]string, 600)
	for i := range a {
		a[i] = []string{strconv.Itoa(i)}
	}
	return a
}()

func ageValue(d time.Duration) []string {
	s := max(int(d/time.Second), 0)
	if s < len(ages) {
		return ages[s]
	}
	return []string{strconv.Itoa(s)}
}

var (
	hit           = []string{"HIT"}
	miss          = []string{"MISS"}
	staleHit      = []string{"STALE"}
	retryAfterOne = []string{"1"}
	gzipCoding    = []string{"gzip"}
	zstdCoding    = []string{"zstd"}
	// Below this a compressed body saves less than its headers cost.
	minCompressSize = 1024
)

// write sends a cached or fresh entry: 304 when the client has it already,
// gzip when accepted and worth it. A note marks a stand-in answer in the
// partial header.
func (h *viewHandler) write(w http.ResponseWriter, r *http.Request, e *cache.Entry, cacheStatus []string, note string) {
	hdr := w.Header()
	vary := hdr["Vary"] // set by CORS (Origin): kept beside the entry's
	e.CopyHeader(hdr)
	if vary != nil {
		hdr["Vary"] = append(append([]string(nil), vary...), e.Header["Vary"]...)
	}
	if cacheStatus != nil {
		hdr["X-Cache"] = cacheStatus
	}
	if note != "" {
		hdr[PartialHeader] = []string{note}
		hdr["Cache-Control"] = noStore // nobody downstream should keep a stand-in
	}
	if partial, ok := hdr[PartialHeader]; ok {
		hdr["X-Request-Id"] = r.Header["X-Request-Id"]
		if info := infoFrom(w); info != nil {
			info.partial = partial[0] // hits of a partial entry are logged as partial too
		}
	}
	// Header keys from net/http are canonical: indexing skips Get's canonicalization.
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && inm[0] != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && ETagMatches(inm[0], e.ETag) {
		delete(hdr, "Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := e.Body
	coding := ""
	if len(body) >= minCompressSize {
		switch ae := r.Header["Accept-Encoding"]; len(ae) {
		case 0:
		case 1:
			coding = chooseEncoding(ae[0])
		default: // several lines are one list
			coding = chooseEncoding(strings.Join(ae, ","))
		}
	}
	var compressed []byte // nil: the body, as it is (also when it hardly compresses)
	switch coding {
	case "zstd":
		if compressed = e.Zstd(); compressed != nil {
			hdr["Content-Encoding"] = zstdCoding
		}
	case "gzip":
		if compressed = e.Gzip(); compressed != nil {
			hdr["Content-Encoding"] = gzipCoding
		}
	}
	if compressed != nil {
		body = compressed
		hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	} else {
		hdr["Content-Length"] = e.ContentLength()
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (h *viewHandler) fail(w http.ResponseWriter, r *http.Request, info *requestInfo, err error) {
	if errors.Is(err, errOverloaded) {
		h.metrics.Shed()
	}
	p := problemFor(h.plan.Name(), err)
	info.failed(err)
	switch {
	case p.Status == http.StatusInternalServerError:
		// A bug (a panic, a shaper's error): never one of many alike.
		h.front.log.Error("view failed", "request_id", requestIDOf(r), "view", h.plan.Name(), "status", p.Status, "error", err)
	case p.Status >= 500 && h.front.access == nil:
		h.logFailure(r, p.Status, err) // else the access line says it
	}
	if p.Status == http.StatusServiceUnavailable {
		w.Header()["Retry-After"] = retryAfterOne
	}
	writeProblem(w, r, p)
}

// logFailure logs a failed request where no access line will: at most one
// line a second per view, saying how many failed since, so an outage
// does not flood the log.
func (h *viewHandler) logFailure(r *http.Request, status int, err error) {
	now := h.front.now().UnixNano()
	last := h.failLogged.Load()
	if now-last < int64(time.Second) || !h.failLogged.CompareAndSwap(last, now) {
		h.failsUnlogged.Add(1)
		return
	}
	h.front.log.Warn("view failed", "request_id", requestIDOf(r), "view", h.plan.Name(), "status", status, "error", err,
		"more_failures_unlogged", h.failsUnlogged.Swap(0))
}

// cacheKey is the request's canonical path (so operators can purge by path
// prefix), the view's fingerprint, the language the upstreams are asked
// for, and for per-user views the caller's identity.
func (h *viewHandler) cacheKey(params []string, header http.Header, claims *auth.Claims) string {
	var b strings.Builder
	b.Grow(64)
	h.writePlace(&b, params)
	b.WriteString(h.keySuffix)
	if h.plan.Variants() > 0 {
		b.WriteByte('v')
		b.WriteString(strconv.Itoa(h.variant(header)))
		b.WriteByte(0)
	}
	if lang := header["Accept-Language"]; len(lang) == 1 {
		b.WriteString(lang[0])
	}
	if h.perUser {
		b.WriteByte(0)
		b.WriteString(identity(header, claims))
		if h.tokenSeen && claims != nil {
			b.WriteByte(0)
			b.WriteString(claims.Digest())
		}
		// Claims beside the subject (an org, a tenant) choose the data as
		// much as the subject does: one subject may hold tokens for two.
		for _, v := range params[h.nPath+len(h.query):] {
			b.WriteByte(0)
			b.WriteString(strconv.Itoa(len(v)))
			b.WriteByte(':')
			b.WriteString(v)
		}
	}
	return b.String()
}

// writePlace writes the request's canonical path: the route with its
// parameters escaped, then the declared query parameters.
func (h *viewHandler) writePlace(b *strings.Builder, params []string) {
	for _, part := range h.keyPath {
		b.WriteString(part.literal)
		if part.param >= 0 {
			// Escaped as a segment: a value holding '/' cannot pass for two.
			b.WriteString(url.PathEscape(params[part.param]))
		}
	}
	for i, q := range h.query {
		// Declared parameters only, in declared order, defaults filled in:
		// ?b=1&a=2 and ?a=2&b=1 share an entry, and junk cannot split the cache.
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(q.Name)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(params[h.nPath+i]))
	}
}

// variant is the shape the caller's app version gets (see aggregate.Variant).
func (h *viewHandler) variant(header http.Header) int {
	if h.plan.Variants() == 0 {
		return 0
	}
	v := header["X-App-Version"]
	if len(v) != 1 {
		return 0
	}
	return h.plan.Variant(v[0])
}

// queryValues fills the declared query parameters, defaults included.
func (h *viewHandler) queryValues(r *http.Request, dst []string) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return &aggregate.ParamError{View: h.plan.Name(), Query: true, Reason: "is not a well-formed query string"}
	}
	for i, p := range h.query {
		switch v := q[p.Name]; {
		case len(v) == 1:
			dst[i] = v[0]
		case len(v) > 1:
			return &aggregate.ParamError{View: h.plan.Name(), Param: p.Name, Query: true, Reason: "is given more than once"}
		case p.Default != nil:
			dst[i] = *p.Default
		default:
			return &aggregate.ParamError{View: h.plan.Name(), Param: p.Name, Query: true, Reason: "is required"}
		}
	}
	if h.strictQuery {
		for k := range q {
			if !slices.ContainsFunc(h.query, func(p aggregate.QueryParam) bool { return p.Name == k }) {
				return &aggregate.ParamError{View: h.plan.Name(), Param: k, Query: true, Reason: "is not a parameter of this view"}
			}
		}
	}
	return nil
}

// keyPart is a literal stretch of a route and the parameter after it (-1: none).
type keyPart struct {
	literal string
	param   int
}

// keyParts splits a route like /web/home/{id} or /c/{sku:[A-Z0-9-]+} into
// literals and parameter positions in params.
func keyParts(route string, params []string) []keyPart {
	var parts []keyPart
	for route != "" {
		open := strings.IndexByte(route, '{')
		end := strings.IndexByte(route[max(open, 0):], '}')
		if open < 0 || end < 0 {
			break
		}
		name, _, _ := strings.Cut(route[open+1:open+end], ":")
		parts = append(parts, keyPart{literal: route[:open], param: slices.Index(params, name)})
		route = route[open+end+1:]
	}
	return append(parts, keyPart{literal: route, param: -1})
}

// nameSpan names the server span after the route, not the raw path, which
// would give every id its own span name.
func (h *viewHandler) nameSpan(r *http.Request) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	span.SetName(h.spanName)
	span.SetAttributes(
		attribute.String("http.route", "/"+h.client+h.plan.Route()),
		attribute.String("bff.client", h.client),
		attribute.String("bff.view", h.plan.Name()),
	)
}

// dropOddLanguage removes an Accept-Language that no browser or app sends
// (repeated, long, or with unexpected bytes) before it is forwarded and
// becomes part of the cache key, so it cannot be used to split the cache.
func dropOddLanguage(h http.Header) {
	v, ok := h["Accept-Language"]
	if !ok {
		return
	}
	if len(v) != 1 || len(v[0]) > 64 {
		delete(h, "Accept-Language")
		return
	}
	for i := 0; i < len(v[0]); i++ {
		c := v[0][i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(" ,;=.*-", c) >= 0) {
			delete(h, "Accept-Language")
			return
		}
	}
}

// identity is who the caller is, for per-user cache keys: the verified
// subject and its scopes (an upstream that receives the token may answer
// a narrower grant with less), or else a hash of the Authorization header
// (never the token).
func identity(header http.Header, claims *auth.Claims) string {
	if claims != nil {
		if len(claims.Scopes) == 0 {
			return "sub:" + claims.Subject
		}
		return "sub:" + claims.Subject + "\x00" + strings.Join(claims.Scopes, " ")
	}
	auth := header.Get("Authorization")
	if auth == "" {
		return "anonymous"
	}
	sum := sha256.Sum256([]byte(auth))
	return hex.EncodeToString(sum[:16])
}

// pathParam returns a route parameter, decoded. chi hands out escaped
// values when the request path had escapes (RawPath set) and decoded ones
// otherwise; a value that does not decode cannot match any pattern.
func pathParam(r *http.Request, info *requestInfo, name string) string {
	var v string
	if info != nil && info.route != nil {
		v = info.route.URLParam(name)
	} else {
		v = chi.URLParam(r, name)
	}
	if r.URL.RawPath == "" || !strings.Contains(v, "%") {
		return v
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		return "\x00invalid"
	}
	return d
}

func serverTiming(calls []aggregate.CallReport) string {
	var b strings.Builder
	b.Grow(reportSize(calls, len(`, ;dur=;desc="" `)+8))
	var num [24]byte
	for i, c := range calls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Name)
		b.WriteString(";dur=")
		b.Write(appendMillis(num[:0], c.Duration))
		b.WriteString(`;desc="`)
		b.WriteString(c.Upstream)
		if c.Outcome != "ok" {
			b.WriteByte(' ')
			b.WriteString(c.Outcome)
		}
		b.WriteByte('"')
	}
	return b.String()
}

// callSummary is "user:users:ok:1.2ms:1 orders:orders:ok:0.9ms:1 ...":
// call, upstream, outcome, duration and attempts of each call.
func callSummary(calls []aggregate.CallReport) string {
	var b strings.Builder
	b.Grow(reportSize(calls, len(" :::ms:")+8+2))
	var num [24]byte
	for i, c := range calls {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.Name)
		b.WriteByte(':')
		b.WriteString(c.Upstream)
		b.WriteByte(':')
		b.WriteString(c.Outcome)
		b.WriteByte(':')
		b.Write(appendMillis(num[:0], c.Duration))
		b.WriteString("ms:")
		b.Write(strconv.AppendInt(num[:0], int64(c.Attempts), 10))
	}
	return b.String()
}

// reportSize is the usual length of a per-call report: the names and
// outcomes plus perCall bytes of punctuation and numbers for each call.
// Growing the builder once to it saves its doublings.
func reportSize(calls []aggregate.CallReport, perCall int) int {
	n := 0
	for _, c := range calls {
		n += len(c.Name) + len(c.Upstream) + len(c.Outcome) + perCall
	}
	return n
}

// appendMillis appends d in milliseconds with one decimal, as "12.3".
func appendMillis(dst []byte, d time.Duration) []byte {
	return strconv.AppendFloat(dst, float64(d.Microseconds())/1000, 'f', 1, 64)
}

func partialValue(missing []aggregate.Missing) string {
	var b strings.Builder
	for i, m := range missing {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.Call)
		b.WriteString(";reason=")
		b.WriteString(m.Reason)
		if m.Status > 0 {
			b.WriteString(";status=")
			b.WriteString(strconv.Itoa(m.Status))
		}
		if m.Reason == "stale" {
			b.WriteString(";age=")
			b.WriteString(strconv.Itoa(int(m.Age / time.Second)))
		}
	}
	return b.String()
}

// ETagMatches is If-None-Match's weak comparison against one tag: the
// header's list holds it, with or without W/, or is "*".
func ETagMatches(header, etag string) bool {
	want := strings.TrimPrefix(etag, "W/")
	for header != "" {
		var tag string
		tag, header, _ = strings.Cut(header, ",")
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}

// chooseEncoding reads Accept-Encoding with q-values and picks zstd or
// gzip, the one with the higher q (zstd on a tie: smaller and cheaper to
// decode), or "" for identity. "gzip;q=0" refuses gzip; "*" stands for
// the codings not named.
func chooseEncoding(header string) string {
	if header == "" {
		return ""
	}
	qZstd, qGzip, qStar := -1.0, -1.0, -1.0
	for header != "" {
		var item string
		item, header, _ = strings.Cut(header, ",")
		coding, params, _ := strings.Cut(item, ";")
		coding = strings.TrimSpace(coding)
		q := 1.0
		for params != "" { // "q" is case-insensitive and need not come first
			var param string
			param, params, _ = strings.Cut(params, ";")
			name, v, _ := strings.Cut(param, "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch {
		case strings.EqualFold(coding, "zstd"):
			qZstd = q
		case strings.EqualFold(coding, "gzip"):
			qGzip = q
		case coding == "*":
			qStar = q
		}
	}
	if qZstd < 0 {
		qZstd = qStar
	}
	if qGzip < 0 {
		qGzip = qStar
	}
	switch {
	case qZstd > 0 && qZstd >= qGzip:
		return "zstd"
	case qGzip > 0:
		return "gzip"
	}
	return ""
}
