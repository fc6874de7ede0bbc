// Package admin is the operators' listener: metrics, health, pprof,
// introspection of upstreams and views, cache purges and the status page.
// It is served on its own address, never on the public one.
package admin

import (
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/shared"
	"github.com/bffproxy/bff/internal/telemetry"
	"github.com/bffproxy/bff/upstream"
	"github.com/go-chi/chi/v5"
)

//go:embed status.html
var statusPage []byte

// Upstream is one configured upstream as the admin listener shows it.
type Upstream struct {
	Name   string
	URL    string
	Client *upstream.Client
}

// Config wires the admin handler. Metrics and Front are required.
type Config struct {
	Metrics   *telemetry.Metrics
	Front     *bff.Front
	Cache     *cache.Cache
	Upstreams []Upstream
	// Redis, if set, is the link to the shared tier; its state is part of
	// /readyz and the status (a degraded link leaves the BFF ready).
	Redis *shared.Redis
	// Shared, if set, is the cache tier on Redis: whether it is in step
	// with other replicas' purges is part of the Redis state.
	Shared *cache.Shared
	// Token, if set, is required as "Authorization: Bearer TOKEN" on every
	// endpoint but /healthz, /readyz and the status page's HTML (which holds
	// no data; it sends the token on its own requests).
	Token string
	// Ready reports readiness: config and views loaded, listener up, not draining.
	Ready func() bool
	// Draining reports that shutdown has begun.
	Draining func() bool
	Started  time.Time
	Version  string
}

type handler struct {
	cfg Config
}

// New builds the admin router.
func New(cfg Config) http.Handler {
	h := &handler{cfg: cfg}
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		bff.WriteProblem(w, r, http.StatusNotFound, bff.ProblemNotFound, "no admin endpoint at this path")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		bff.MethodNotAllowed(w, req, r)
	})
	healthz := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	// Load balancers probe with HEAD as well as GET.
	r.Get("/healthz", healthz)
	r.Head("/healthz", healthz)
	r.Get("/readyz", h.readyz)
	r.Head("/readyz", h.readyz)
	r.Get("/_bff/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// The page's own inline script and style, and requests back here only.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; frame-ancestors 'none'")
		_, _ = w.Write(statusPage)
	})
	r.Get("/_bff", http.RedirectHandler("/_bff/", http.StatusMovedPermanently).ServeHTTP)
	r.Group(func(r chi.Router) {
		// The operator's browser runs beside a loopback admin listener:
		// another site's form must not purge through it.
		csrf := http.NewCrossOriginProtection()
		csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bff.WriteProblem(w, r, http.StatusForbidden, bff.ProblemForbidden, "a cross-site request to the admin listener is refused")
		}))
		r.Use(h.addressedHere, csrf.Handler, h.authorize)
		r.Handle("/metrics", cfg.Metrics.Handler())
		r.Get("/_bff/status", h.status)
		r.Get("/_bff/upstreams", h.upstreams)
		r.Get("/_bff/views", h.views)
		r.Post("/_bff/cache/purge", h.purge)
		r.HandleFunc("/debug/pprof/*", pprof.Index)
		r.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		r.HandleFunc("/debug/pprof/profile", pprof.Profile)
		r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		r.HandleFunc("/debug/pprof/trace", pprof.Trace)
	})
	return r
}

// addressedHere refuses, when no token guards the listener, a request
// whose Host is a DNS name other than localhost. A page in the operator's
// browser can point a name it controls at 127.0.0.1 (DNS rebinding): the
// browser then reads the answers as that page's own, and sends purges
// that Go's cross-origin check takes for same-origin. Prometheus, probes
// and curl address the listener by IP or localhost; with a token, any name
// may be used.
func (h *handler) addressedHere(next http.Handler) http.Handler {
	if h.cfg.Token != "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostIsLocalOrIP(r.Host) {
			bff.WriteProblem(w, r, http.StatusForbidden, bff.ProblemForbidden,
				"without admin.token the admin listener answers only requests addressed to an IP address or localhost; set admin.token to reach it by name")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostIsLocalOrIP reports whether a Host header names an IP address (no
// DNS involved), localhost or a name below .localhost (RFC 6761: always
// loopback, which browsers hold to), or nothing at all: an HTTP/1.0
// request may send none, and a browser always sends one.
func hostIsLocalOrIP(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return true
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

func (h *handler) authorize(next http.Handler) http.Handler {
	if h.cfg.Token == "" {
		return next
	}
	want := []byte(h.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		// The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(token), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bff-admin"`)
			bff.WriteProblem(w, r, http.StatusUnauthorized, bff.ProblemUnauthorized, "this admin endpoint needs the admin bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *handler) readyz(w http.ResponseWriter, _ *http.Request) {
	ready := (h.cfg.Ready == nil || h.cfg.Ready()) && !h.draining()
	body := map[string]any{"status": "ready", "draining": h.draining()}
	if h.cfg.Redis != nil {
		st := h.redisStatus()
		// /readyz needs no token: the error, which names Redis's address,
		// is on the status endpoint only.
		st.LastError = ""
		body["redis"] = st
	}
	status := http.StatusOK
	if !ready {
		body["status"], status = "not ready", http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

type redisStatus struct {
	shared.Status
	// PurgesSynced: the purge log was read lately, so the shared tier is
	// read; false while it cannot be (the tier then serves as a miss).
	PurgesSynced  *bool `json:"purges_synced,omitempty"`
	PendingPurges int   `json:"pending_purges"`
}

func (h *handler) redisStatus() redisStatus {
	st := redisStatus{Status: h.cfg.Redis.Status()}
	if t := h.cfg.Shared; t != nil {
		synced := t.Synced()
		st.PurgesSynced, st.PendingPurges = &synced, t.PendingPurges()
	}
	return st
}

func (h *handler) draining() bool { return h.cfg.Draining != nil && h.cfg.Draining() }

type upstreamJSON struct {
	Name      string               `json:"name"`
	URL       string               `json:"url"`
	Breaker   breakerJSON          `json:"breaker"`
	Calls     map[string]uint64    `json:"calls"`
	Retries   uint64               `json:"retries"`
	InFlight  int64                `json:"in_flight"`
	LastError *telemetry.ErrorNote `json:"last_error"`
}

type breakerJSON struct {
	State string `json:"state"`
	// Requests are the calls the breaker judged; Excluded, those it did not
	// (the caller hung up).
	Requests            uint32 `json:"requests"`
	Excluded            uint32 `json:"excluded"`
	TotalFailures       uint32 `json:"total_failures"`
	ConsecutiveFailures uint32 `json:"consecutive_failures"`
}

func (h *handler) upstreamList() []upstreamJSON {
	out := make([]upstreamJSON, 0, len(h.cfg.Upstreams))
	for _, u := range h.cfg.Upstreams {
		j := upstreamJSON{Name: u.Name, URL: u.URL, Calls: map[string]uint64{}}
		if u.Client != nil {
			n := u.Client.BreakerCounts()
			j.Breaker = breakerJSON{State: u.Client.BreakerState().String(),
				Requests: n.Requests - min(n.TotalExclusions, n.Requests), Excluded: n.TotalExclusions,
				TotalFailures: n.TotalFailures, ConsecutiveFailures: n.ConsecutiveFailures}
		}
		if s, ok := h.cfg.Metrics.UpstreamStats(u.Name); ok {
			j.Calls, j.Retries, j.InFlight, j.LastError = s.Calls, s.Retries, s.InFlight, s.LastError
		}
		out = append(out, j)
	}
	return out
}

func (h *handler) upstreams(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"upstreams": h.upstreamList()})
}

type callJSON struct {
	Name     string `json:"name"`
	Upstream string `json:"upstream"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	Query    string `json:"query,omitempty"`
	Optional bool   `json:"optional"`
	ForEach  string `json:"for_each,omitempty"`
}

type routeJSON struct {
	Client    string     `json:"client"`
	View      string     `json:"view"`
	Method    string     `json:"method"`
	Path      string     `json:"path"`
	Source    string     `json:"source,omitempty"`
	Cache     cacheJSON  `json:"cache"`
	Upstreams []string   `json:"upstreams"`
	Calls     []callJSON `json:"calls"`
}

type cacheJSON struct {
	TTL   string `json:"ttl"`
	Scope string `json:"scope"`
}

func (h *handler) views(w http.ResponseWriter, _ *http.Request) {
	routes := h.cfg.Front.Routes()
	out := make([]routeJSON, 0, len(routes))
	for _, rt := range routes {
		j := routeJSON{Client: rt.Client, View: rt.View, Method: rt.Method, Path: rt.Path, Source: rt.Source,
			Cache: cacheJSON{TTL: rt.Cache.TTL.String(), Scope: string(rt.Cache.Scope)}, Upstreams: rt.Upstreams}
		for _, c := range rt.Calls {
			j.Calls = append(j.Calls, callJSON{Name: c.Name, Upstream: c.Upstream, Method: methodOf(c), Path: c.Path,
				Query: c.Query, Optional: c.Optional, ForEach: c.ForEach})
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"views": out})
}

func methodOf(c aggregate.Call) string {
	if c.Method == "" {
		return http.MethodGet
	}
	return c.Method
}

// purge takes ?view=NAME, ?prefix=/web/home/7, both, or neither (everything).
func (h *handler) purge(w http.ResponseWriter, r *http.Request) {
	// A body is not read: parameters sent there (curl -d view=…) would be
	// missed, and the purge widened to everything.
	if r.ContentLength != 0 {
		bff.WriteProblem(w, r, http.StatusBadRequest, bff.ProblemBadRequest, "purge takes view and prefix in the query string, not a body")
		return
	}
	q := r.URL.Query()
	for k, v := range q {
		if k != "view" && k != "prefix" {
			bff.WriteProblem(w, r, http.StatusBadRequest, bff.ProblemBadRequest, "unknown parameter "+k+": purge takes view and prefix")
			return
		}
		// An empty value is most often an unset shell variable: it must not
		// widen the purge to everything. Neither may a second value be ignored.
		if len(v) != 1 || v[0] == "" {
			bff.WriteProblem(w, r, http.StatusBadRequest, bff.ProblemBadRequest, k+" must have one non-empty value; leave both out to purge everything")
			return
		}
	}
	view, prefix := q.Get("view"), q.Get("prefix")
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		bff.WriteProblem(w, r, http.StatusBadRequest, bff.ProblemBadRequest, "prefix must start with '/', like the request paths it matches (/web/home/7)")
		return
	}
	if err := h.cfg.Front.Purge(view, prefix); err != nil {
		bff.WriteProblem(w, r, http.StatusNotFound, bff.ProblemNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"purged": map[string]string{"view": view, "prefix": prefix}})
}

type viewStatus struct {
	Client    string              `json:"client"`
	View      string              `json:"view"`
	Method    string              `json:"method"`
	Path      string              `json:"path"`
	Requests  map[string]uint64   `json:"requests"`
	Partial   uint64              `json:"partial"`
	LatencyMS map[string]*float64 `json:"latency_ms"`
	Cache     map[string]uint64   `json:"cache"`
}

type cacheStatus struct {
	Enabled   bool   `json:"enabled"`
	Hits      uint64 `json:"hits"`
	Misses    uint64 `json:"misses"`
	Coalesced uint64 `json:"coalesced"`
	Stale     uint64 `json:"stale"`
	Shared    uint64 `json:"shared_hits"`
	Bytes     int64  `json:"bytes"`
	MaxBytes  int64  `json:"max_bytes"`
	Entries   int64  `json:"entries"`
	Evictions uint64 `json:"evictions"`
}

// status is everything the status page shows, in one response.
func (h *handler) status(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	views := []viewStatus{}
	var cs cacheStatus
	for _, rt := range h.cfg.Front.Routes() {
		v := viewStatus{Client: rt.Client, View: rt.View, Method: rt.Method, Path: rt.Path,
			Requests: map[string]uint64{"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}, LatencyMS: map[string]*float64{},
			Cache: map[string]uint64{"hit": 0, "miss": 0, "coalesced": 0, "stale": 0}}
		if s, ok := h.cfg.Metrics.ViewStats(rt.Client, rt.View); ok {
			v.Requests, v.Partial, v.LatencyMS, v.Cache = s.Requests, s.Partial, s.LatencyMS, s.Cache
		}
		cs.Hits += v.Cache["hit"]
		cs.Misses += v.Cache["miss"]
		cs.Coalesced += v.Cache["coalesced"]
		cs.Stale += v.Cache["stale"]
		cs.Shared += v.Cache["shared"]
		views = append(views, v)
	}
	if h.cfg.Cache != nil {
		st := h.cfg.Cache.Stats()
		cs.Enabled, cs.Bytes, cs.MaxBytes, cs.Entries, cs.Evictions = st.Enabled, st.Bytes, st.MaxBytes, st.Entries, st.Evictions
	}
	status := map[string]any{
		"version":        h.cfg.Version,
		"started":        h.cfg.Started.UTC().Format(time.RFC3339),
		"now":            now.UTC().Format(time.RFC3339Nano),
		"uptime_seconds": now.Sub(h.cfg.Started).Seconds(),
		"ready":          (h.cfg.Ready == nil || h.cfg.Ready()) && !h.draining(),
		"draining":       h.draining(),
		"upstreams":      h.upstreamList(),
		"views":          views,
		"cache":          cs,
	}
	if h.cfg.Redis != nil {
		status["redis"] = h.redisStatus()
	}
	writeJSON(w, http.StatusOK, status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
