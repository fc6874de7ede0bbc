package bff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/shared"
	"github.com/go-chi/chi/v5"
)

// RouteSet is one client's views, mounted under /{Client}.
type RouteSet struct {
	// Client is the route prefix and the name in logs: "web", "mobile".
	Client string
	Views  []aggregate.View
	// Shapers are the Go shaping functions this client's views may name.
	Shapers map[string]aggregate.ShapeFunc
	// CORS, if set, is the client's cross-origin policy.
	CORS *CORS
	// RateLimit, if set, bounds each caller's requests to this client.
	RateLimit *RateLimit
	// Auth, if set, verifies bearer tokens for this client's views.
	Auth *ClientAuth
}

// Config wires the front. Engine and Cache are required.
type Config struct {
	Engine *aggregate.Engine
	Cache  *cache.Cache
	// Shared, if set, is the second cache tier, shared by replicas: asked
	// on a memory miss, written with fresh responses, told of purges.
	Shared *cache.Shared
	// SharedLimits, if set, keeps rate-limit counters in Redis, so a
	// caller's limit holds across replicas; while Redis is unavailable
	// each replica counts alone.
	SharedLimits *shared.Redis
	// Logger receives errors and events. Nil discards them.
	Logger *slog.Logger
	// AccessLog, if set, receives one line per request, in AccessLogFormat.
	// Each line is one Write of a whole line, so a writer that buffers lines
	// keeps them whole. Write is called on the request's goroutine, before
	// net/http sends what it buffered of the response, so it should never
	// block: a writer to an output that can stall should queue lines (cmd/bff
	// drops them, counted, while its output is stuck).
	AccessLog       io.Writer
	AccessLogFormat AccessLogFormat
	// AccessLogLevel is the least level written: lines are INFO, or WARN
	// for 5xx, so slog.LevelWarn writes the failures only. Zero is INFO.
	AccessLogLevel slog.Level
	// RouteSets are the clients and their views.
	RouteSets []RouteSet
	// ForwardsAuthorization reports whether an upstream receives the
	// caller's Authorization header; a view calling one must be cached per
	// user. Nil means none does.
	ForwardsAuthorization func(upstream string) bool
	// Ready backs /readyz. Nil means ready.
	Ready func() bool
	// PartialTTL caps how long a partial response is cached, so a failing
	// upstream is not hammered but recovers quickly. Zero means 1s.
	PartialTTL time.Duration
	// MaxURLBytes rejects longer request URIs with 414. Zero means 4096.
	MaxURLBytes int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Metrics receives per-request measurements. Nil means none.
	Metrics Metrics
	// Tracing names the server span in the request's context after the
	// view's route. The span itself is started outside the front.
	Tracing bool
	// TrustedProxies are the CIDR prefixes whose X-Forwarded-For is
	// believed when rate limits key callers by address.
	TrustedProxies []string
	// FaultInjection honours the Bff-Fault request header (see package
	// faults): such requests bypass the cache. For demo and development
	// setups only; the engine's upstreams must be wrapped with faults.Wrap.
	FaultInjection bool
	// MaxInFlight bounds the requests doing upstream work at once (cache
	// hits are not counted); past it a request gets 503 at once, or a stale
	// copy if its view allows one. Zero means 1024; negative means no bound.
	MaxInFlight int
}

// Front is the HTTP handler for all clients.
type Front struct {
	table        atomic.Pointer[table]
	forwardAuth  func(upstream string) bool
	engine       *aggregate.Engine
	cache        *cache.Cache
	shared       *cache.Shared
	sharedLimits *shared.Redis
	counts       counters // the rate limits' counts, across reloads
	flights      cache.Group[*outcome]
	log          *slog.Logger
	access       *accessLog
	ids          *requestIDs
	ready        func() bool
	partialTTL   time.Duration
	maxURLBytes  int
	now          func() time.Time
	metrics      Metrics
	otherMetrics ViewMetrics // requests no view took
	tracing      bool
	executing    atomic.Int64 // view executions in flight, some detached from any request
	inFlight     atomic.Int64 // view executions holding a max_in_flight slot
	aborting     atomic.Bool  // shutdown ran out of time: request contexts are being canceled
	maxInFlight  int64
	faults       bool
	trusted      []string
}

var clientRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// New compiles every view and builds the router. A bad view is an error
// that names it.
func New(cfg Config) (*Front, error) {
	if cfg.Engine == nil || cfg.Cache == nil {
		return nil, errors.New("bff: Engine and Cache are required")
	}
	for _, p := range cfg.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			return nil, fmt.Errorf("bff: trusted proxy %q: want a CIDR prefix such as 10.0.0.0/8", p)
		}
	}
	f := &Front{
		engine:       cfg.Engine,
		cache:        cfg.Cache,
		shared:       cfg.Shared,
		sharedLimits: cfg.SharedLimits,
		log:          cfg.Logger,
		ids:          newRequestIDs(),
		ready:        cfg.Ready,
		partialTTL:   cfg.PartialTTL,
		maxURLBytes:  cfg.MaxURLBytes,
		now:          cfg.Now,
		metrics:      cfg.Metrics,
		tracing:      cfg.Tracing,
		maxInFlight:  int64(cfg.MaxInFlight),
		faults:       cfg.FaultInjection,
		trusted:      cfg.TrustedProxies,
	}
	if f.maxInFlight == 0 {
		f.maxInFlight = 1024
	}
	if f.metrics == nil {
		f.metrics = noMetrics{}
	}
	f.otherMetrics = f.metrics.View("", "")
	if cfg.AccessLog != nil {
		f.access = &accessLog{w: cfg.AccessLog, format: cfg.AccessLogFormat, failuresOnly: cfg.AccessLogLevel > slog.LevelInfo}
	}
	if f.log == nil {
		f.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if f.partialTTL <= 0 {
		f.partialTTL = time.Second
	}
	if f.maxURLBytes <= 0 {
		f.maxURLBytes = 4096
	}
	if f.now == nil {
		f.now = time.Now
	}
	// Optional sections that declare stale_if_error keep their last good
	// answer next to the responses.
	cfg.Engine.KeepSections(&sectionStore{cache: f.cache, now: f.now})
	f.forwardAuth = cfg.ForwardsAuthorization
	if f.forwardAuth == nil {
		f.forwardAuth = func(string) bool { return false }
	}
	if err := f.Load(cfg.RouteSets); err != nil {
		return nil, err
	}
	return f, nil
}

// table is one generation of routes: swapped whole by Load.
type table struct {
	router *chi.Mux
	// endpoints are the views' routes with the middlewares chi would run
	// around them, observe aside: see Front.ServeHTTP.
	endpoints map[endpoint]http.Handler
	views     []*viewHandler
}

type endpoint struct{ method, pattern string }

// Load compiles sets and, only if all of them are valid, replaces the routes
// being served, atomically: requests in flight finish on the views they
// started with. A bad view is an error that names it, and changes nothing.
func (f *Front) Load(sets []RouteSet) error {
	f.counts.begin()
	loaded := false
	defer func() {
		if loaded {
			f.counts.keep()
		} else {
			f.counts.drop()
		}
	}()
	t, err := f.build(sets)
	if err != nil {
		return err
	}
	f.table.Store(t)
	loaded = true
	return nil
}

func (f *Front) build(sets []RouteSet) (*table, error) {
	t := &table{endpoints: map[endpoint]http.Handler{}}
	r := chi.NewRouter()
	r.Use(f.observe)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, newProblem(http.StatusNotFound, ProblemNotFound, "no route for this path"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) { MethodNotAllowed(w, req, r) })
	healthz := func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = jsonType
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}
	r.Get("/healthz", healthz)
	r.Head("/healthz", healthz)
	r.Get("/readyz", f.readyz)
	r.Head("/readyz", f.readyz)

	names := map[string]string{}
	seen := map[string]bool{}
	for _, rs := range sets {
		if !clientRE.MatchString(rs.Client) {
			return nil, fmt.Errorf("bff: client name %q must be lower-case letters, digits or '-'", rs.Client)
		}
		if seen[rs.Client] {
			return nil, fmt.Errorf("bff: client %q has two route sets", rs.Client)
		}
		seen[rs.Client] = true
		// Views are routed from the root, not through a mounted subrouter:
		// one routing pass per request instead of two. CORS comes before
		// everything that could refuse the request, so refusals are readable
		// by the page.
		// The chain, as the edge needs it: CORS, the caller's address, the
		// token (each view's own policy), rate limit, request validation,
		// then the view.
		var chain []func(http.Handler) http.Handler
		if rs.CORS != nil {
			mw, err := rs.CORS.handler()
			if err != nil {
				return nil, fmt.Errorf("client %s: %w", rs.Client, err)
			}
			chain = append(chain, mw)
		}
		if err := checkAuthPolicies(rs); err != nil {
			return nil, fmt.Errorf("client %s: %w", rs.Client, err)
		}
		var checks *checkBudget
		if rs.RateLimit != nil {
			if err := rs.RateLimit.validate(""); err != nil {
				return nil, fmt.Errorf("client %s: %w", rs.Client, err)
			}
			// The address first: authn spends its budget of signature checks.
			chain = append(chain, clientIP(f.trusted))
			checks = newCheckBudget(rs.Client, rs.RateLimit.Limit, &f.counts)
		}
		sub := r.With(chain...)
		// After authn, which each view's route gets with its own policy.
		after := []func(http.Handler) http.Handler{}
		if rs.RateLimit != nil {
			after = append(after, rs.RateLimit.limiter(rs.Client, "client", f.sharedLimits, &f.counts))
		}
		after = append(after, f.limits)
		wrap := func(h http.Handler, first ...func(http.Handler) http.Handler) http.Handler {
			mws := append(first, after...)
			for i := len(mws) - 1; i >= 0; i-- {
				h = mws[i](h)
			}
			return h
		}
		if rs.RateLimit != nil {
			for name := range rs.RateLimit.Views {
				if !slices.ContainsFunc(rs.Views, func(v aggregate.View) bool { return v.Name == name }) {
					return nil, fmt.Errorf("client %s: rate limit for view %q: the client has no such view", rs.Client, name)
				}
			}
		}
		routes := map[string]string{}
		for _, v := range rs.Views {
			plan, err := aggregate.Compile(v, f.engine.Catalog(rs.Shapers))
			if err != nil {
				return nil, fmt.Errorf("client %s: %w", rs.Client, err)
			}
			if prev, dup := names[v.Name]; dup {
				return nil, fmt.Errorf("client %s: %sview %q: name already used by client %s", rs.Client, source(v), v.Name, prev)
			}
			names[v.Name] = rs.Client
			if rest, ok := strings.CutPrefix(plan.Route(), "/"+rs.Client+"/"); ok {
				// Served at /web/web/...: always a slip.
				return nil, fmt.Errorf("client %s: %sview %q: route %q: routes are below /%s already; write %q",
					rs.Client, aggregate.Where(v, "route"), v.Name, plan.Route(), rs.Client, "/"+rest)
			}
			route := plan.Method() + " " + routeShape(plan.Route())
			if prev, dup := routes[route]; dup {
				return nil, fmt.Errorf("client %s: %sview %q: route %s is also view %q", rs.Client, source(v), v.Name, route, prev)
			}
			routes[route] = v.Name
			// Cached or merely coalesced, a public view's response is shared by
			// callers: it must not depend on whose token reached an upstream.
			if plan.Cache().Scope == aggregate.ScopePublic {
				for _, u := range plan.Upstreams() {
					if f.forwardAuth(u) {
						return nil, fmt.Errorf("client %s: %sview %q: calls upstream %q, which receives the caller's Authorization, so it must be cached with scope %q, not shared",
							rs.Client, source(v), v.Name, u, aggregate.ScopeUser)
					}
				}
			}
			pol := appliedAuth(rs, v)
			h := f.newViewHandler(rs.Client, plan, pol)
			h.rateLimited = rs.RateLimit != nil
			t.views = append(t.views, h)
			var handler http.Handler = h
			if rs.RateLimit != nil {
				if l, ok := rs.RateLimit.Views[v.Name]; ok {
					if err := l.validate(" of view " + v.Name); err != nil {
						return nil, fmt.Errorf("client %s: %w", rs.Client, err)
					}
					handler = l.limiter(v.Name, "view", f.sharedLimits, &f.counts)(h)
				}
			}
			if rs.Auth != nil {
				handler = wrap(handler, f.authn(rs.Auth, pol, checks))
			} else {
				handler = wrap(handler)
			}
			handler = h.named(handler)
			if err := t.mount(sub, chain, plan.Method(), "/"+rs.Client+plan.Route(), handler); err != nil {
				return nil, fmt.Errorf("client %s: %sview %q: route %q: %w", rs.Client, source(v), v.Name, plan.Route(), err)
			}
			if rs.CORS != nil {
				allow := plan.Method() + ", OPTIONS"
				if plan.Method() == http.MethodGet {
					allow = "GET, HEAD, OPTIONS"
				}
				if err := t.mount(sub, chain, http.MethodOptions, "/"+rs.Client+plan.Route(), wrap(preflightOnly(allow))); err != nil {
					return nil, fmt.Errorf("client %s: %sview %q: route %q: %w", rs.Client, source(v), v.Name, plan.Route(), err)
				}
			}
		}
	}
	for _, rs := range sets {
		for _, v := range rs.Views {
			for _, name := range v.Invalidates {
				if _, ok := names[name]; !ok {
					return nil, fmt.Errorf("client %s: %sview %q: invalidates %q, which is no view", rs.Client, source(v), v.Name, name)
				}
			}
		}
	}
	t.router = r
	return t, nil
}

func (f *Front) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header()["Content-Type"] = jsonType
	w.Header()["Cache-Control"] = noStore
	if f.ready != nil && !f.ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"status":"not ready"}`)
		return
	}
	_, _ = io.WriteString(w, `{"status":"ready"}`)
}

// MethodNotAllowed answers 405 with the Allow header chi leaves out when
// the handler is custom: the methods router has a route for at this path.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request, router chi.Routes) {
	var allow []string
	path := routingPath(r)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		if router.Match(chi.NewRouteContext(), m, path) {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header()["Allow"] = []string{strings.Join(allow, ", ")}
	}
	writeProblem(w, r, newProblem(http.StatusMethodNotAllowed, ProblemMethodNotAllowed, "this route does not accept "+r.Method))
}

// routeShape drops parameter names, which do not make routes differ:
// /c/{id} and /c/{uid} are the same route.
func routeShape(route string) string {
	var b strings.Builder
	for route != "" {
		open := strings.IndexByte(route, '{')
		if open < 0 {
			b.WriteString(route)
			break
		}
		end := strings.IndexByte(route[open:], '}')
		if end < 0 {
			b.WriteString(route)
			break
		}
		b.WriteString(route[:open+1])
		if _, re, ok := strings.Cut(route[open+1:open+end], ":"); ok {
			b.WriteString(":" + re)
		}
		b.WriteByte('}')
		route = route[open+end+1:]
	}
	return b.String()
}

func source(v aggregate.View) string {
	if v.Source == "" {
		return ""
	}
	return v.Source + ": "
}

// mount adds a view's route to r, whose middlewares are chain (a GET's
// for HEAD too), and keeps it for Front.ServeHTTP with chain around it.
// chi panics on a pattern it cannot parse, which here is a mistake in a
// view file, not a reason to stop serving.
func (t *table) mount(r chi.Router, chain []func(http.Handler) http.Handler, method, path string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	served := chi.Chain(chain...).Handler(h)
	methods := []string{method}
	if method == http.MethodGet {
		methods = append(methods, http.MethodHead)
	}
	for _, m := range methods {
		r.Method(m, path, h)
		t.endpoints[endpoint{m, path}] = served
	}
	return nil
}

// routingPath is the path chi routes on: the escaped one when the request
// had escapes.
func routingPath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}

// routeContexts are chi's per-request routing state, reused.
var routeContexts = sync.Pool{New: func() any { return chi.NewRouteContext() }}

// ServeHTTP serves every client's routes, /healthz and /readyz.
//
// chi's tree finds the route; a view's route is then served here rather
// than by chi's ServeHTTP, which copies the request to put the route in its
// context and gives it a map of path values: four of the six allocations a
// cache hit made. The view reads its parameters from the route
// context that travels with the request's bookkeeping (see pathParam).
// Everything else (health, 404, 405, a front mounted under another chi
// router) goes through chi as usual.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.table.Load()
	if r.Context().Value(chi.RouteCtxKey) == nil {
		rctx := routeContexts.Get().(*chi.Context)
		rctx.Reset()
		if pattern := t.router.Find(rctx, r.Method, routingPath(r)); pattern != "" {
			if h := t.endpoints[endpoint{r.Method, pattern}]; h != nil {
				f.observed(w, r, h, rctx)
				routeContexts.Put(rctx)
				return
			}
		}
		routeContexts.Put(rctx)
	}
	t.router.ServeHTTP(w, r)
}

// Route describes one mounted view, for listings and documents.
type Route struct {
	Client, Method, Path, View string
	Upstreams                  []string
	Calls                      []aggregate.Call
	Cache                      aggregate.CachePolicy
	Source                     string // where the view was written, if in a file
	// Params are the path parameters with their patterns.
	Params []aggregate.Param
	// Query are the query parameters; StrictQuery rejects undeclared ones.
	Query       []aggregate.QueryParam
	StrictQuery bool
	// AppVersions are the X-App-Version ranges with a shape of their own.
	AppVersions []string
	// Body is a mutation's body policy; nil for reads.
	Body *aggregate.BodyPolicy
	// Shape is the declarative response shape; empty when ShapeFunc is set.
	Shape     []aggregate.Field
	ShapeFunc string
	// Auth is the policy as applied: Mode is none, optional or required
	// (none when the client verifies no tokens; required with scopes).
	Auth aggregate.AuthPolicy
	// RateLimited says the client's rate limit applies: a 429 may answer.
	RateLimited bool
	// Skippable names the calls that may not be made (see Plan.Skippable).
	Skippable []string
}

// Routes lists every mounted view.
func (f *Front) Routes() []Route {
	views := f.table.Load().views
	out := make([]Route, 0, len(views))
	for _, h := range views {
		out = append(out, Route{
			Client: h.client, Method: h.plan.Method(), Path: "/" + h.client + h.plan.Route(),
			View: h.plan.Name(), Upstreams: h.plan.Upstreams(), Calls: h.plan.Calls(), Cache: h.plan.Cache(),
			Source: h.plan.Source(), Params: h.plan.Params(), Shape: h.plan.Shape(), ShapeFunc: h.plan.ShapeFuncName(),
			Query: h.plan.QueryParams(), StrictQuery: h.plan.RejectsUnknownQuery(), AppVersions: h.plan.AppVersions(),
			Body: h.plan.BodyPolicy(), Auth: h.auth, RateLimited: h.rateLimited, Skippable: h.plan.Skippable(),
		})
	}
	return out
}

var jsonType = []string{"application/json"}

// Drain waits until no view execution is running, or ctx is done. Call it
// after the server has stopped taking requests and before closing the
// cache: an execution whose clients have all left may still be finishing.
func (f *Front) Drain(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for f.executing.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("bff: %d view executions still running: %w", f.executing.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Abort tells the front that request contexts are about to be canceled by
// the server itself (a shutdown out of time), so a canceled request is
// answered 503 rather than taken for a client that hung up.
func (f *Front) Abort() { f.aborting.Store(true) }

// admit takes an in-flight slot for a view execution (a miss, a mutation,
// a background refresh) about to call its upstreams.
func (f *Front) admit() bool {
	if f.maxInFlight < 0 {
		return true
	}
	if f.inFlight.Add(1) > f.maxInFlight {
		f.inFlight.Add(-1)
		return false
	}
	return true
}

func (f *Front) release() {
	if f.maxInFlight >= 0 {
		f.inFlight.Add(-1)
	}
}

// Purge drops cached responses: of one view if view is set, under a key
// prefix if prefix is set (keys begin with the request's canonical path,
// e.g. /web/home/7), all of them if neither is. Responses being fetched
// during the purge are not stored.
func (f *Front) Purge(view, prefix string) error {
	if view != "" && !slices.ContainsFunc(f.table.Load().views, func(h *viewHandler) bool { return h.plan.Name() == view }) {
		return fmt.Errorf("no view named %q", view)
	}
	if prefix == "" || strings.HasSuffix(prefix, "/") {
		f.purge(view, prefix)
		return nil
	}
	// Whole segments: /web/home/7 is that path (keys go on with the query
	// or the fingerprint) and what is below it, not /web/home/70.
	f.purge(view, prefix+"\x00", prefix+"?", prefix+"/")
	return nil
}

// purge drops entries from this replica's memory and, through the shared
// tier, from every replica's. The shared tier learns of it first: a miss
// filled from Redis between the two would otherwise be kept in memory
// with the new epoch, unhidden.
func (f *Front) purge(tag string, prefixes ...string) {
	if f.shared != nil {
		f.shared.Purge(tag, prefixes...)
	}
	f.cache.Purge(tag, prefixes...)
}

// Coalesced counts requests that waited for an identical request's
// execution instead of running the view themselves.
func (f *Front) Coalesced() int64 { return f.flights.Joined() }
