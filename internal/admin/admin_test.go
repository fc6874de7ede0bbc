package admin_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/demo"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// protected are the admin endpoints that hold data or act, with the status
// each gives an operator who may use it.
var protected = []struct{ method, path string }{
	{http.MethodGet, "/metrics"},
	{http.MethodGet, "/_bff/status"},
	{http.MethodGet, "/_bff/upstreams"},
	{http.MethodGet, "/_bff/views"},
	{http.MethodPost, "/_bff/cache/purge"},
	{http.MethodGet, "/debug/pprof/"},
	{http.MethodGet, "/debug/pprof/cmdline"},
}

// open are the endpoints a load balancer or a browser reaches without the
// token.
var open = []struct{ path, contentType string }{
	{"/healthz", "application/json"},
	{"/readyz", "application/json"},
	{"/_bff/", "text/html; charset=utf-8"},
}

const adminToken = "adm1n-t0ken-7c1f"

func TestTokenGuardsEveryEndpointWithData(t *testing.T) {
	s := newStack(t, adminToken)
	s.get(t, "/web/home/7")
	s.wantCache(t, "/web/home/7", "HIT")

	for _, e := range protected {
		for _, c := range []struct {
			name   string
			header []string
		}{
			{"no Authorization", nil},
			{"wrong token", []string{"Authorization", "Bearer not-the-token"}},
			{"token without scheme", []string{"Authorization", adminToken}},
			{"token as Basic", []string{"Authorization", "Basic " + adminToken}},
			{"token with a suffix", []string{"Authorization", "Bearer " + adminToken + "x"}},
			{"token prefix", []string{"Authorization", "Bearer " + adminToken[:len(adminToken)-1]}},
		} {
			t.Run(e.method+" "+e.path+"/"+c.name, func(t *testing.T) {
				r := s.do(t, e.method, s.admin.URL+e.path, c.header...)
				wantProblem(t, e.path, r, http.StatusUnauthorized, bff.ProblemUnauthorized)
				if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", got)
				}
				if bytes.Contains(r.body, []byte(adminToken)) || bytes.Contains(r.body, []byte("not-the-token")) {
					t.Errorf("the 401 body repeats a token: %s", r.body)
				}
			})
		}
		t.Run(e.method+" "+e.path+"/with token", func(t *testing.T) {
			r := s.adminDo(t, e.method, e.path)
			if r.status != http.StatusOK {
				t.Errorf("status %d with the token, want 200: %s", r.status, r.body)
			}
		})
	}

	// Only the authorized purge above emptied the cache: re-fill it and
	// check that a refused purge leaves it alone.
	s.get(t, "/web/home/7")
	s.wantCache(t, "/web/home/7", "HIT")
	r := s.do(t, http.MethodPost, s.admin.URL+"/_bff/cache/purge", "Authorization", "Bearer wrong")
	if r.status != http.StatusUnauthorized {
		t.Fatalf("purge with a wrong token: %d", r.status)
	}
	s.wantCache(t, "/web/home/7", "HIT")

	for _, e := range open {
		t.Run("open "+e.path, func(t *testing.T) {
			r := s.do(t, http.MethodGet, s.admin.URL+e.path)
			if r.status != http.StatusOK {
				t.Fatalf("status %d without a token, want 200: %s", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != e.contentType {
				t.Errorf("Content-Type %q, want %q", ct, e.contentType)
			}
			// The page fetches its data with the token the operator types in;
			// the page itself must hold nothing from this process.
			for _, secret := range []string{adminToken, s.upstreams["users"].URL, version} {
				if bytes.Contains(r.body, []byte(secret)) {
					t.Errorf("served without a token, the body holds %q", secret)
				}
			}
		})
	}
}

func TestPageIsServedWithSafeHeaders(t *testing.T) {
	s := newStack(t, adminToken)
	r := s.do(t, http.MethodGet, s.admin.URL+"/_bff/")
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte("<html")) {
		t.Fatalf("GET /_bff/: %d %.100s", r.status, r.body)
	}
	for k, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s %q, want %q", k, got, want)
		}
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
		}
	}
	r = s.do(t, http.MethodGet, s.admin.URL+"/_bff")
	if r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/_bff/" {
		t.Errorf("GET /_bff: %d Location %q, want 301 to /_bff/", r.status, r.header.Get("Location"))
	}
}

func TestWithoutTokenEverythingIsOpen(t *testing.T) {
	s := newStack(t, "")
	for _, e := range protected {
		r := s.do(t, e.method, s.admin.URL+e.path)
		if r.status != http.StatusOK {
			t.Errorf("%s %s without a token configured: %d %s", e.method, e.path, r.status, r.body)
		}
	}
	for _, e := range open {
		if r := s.do(t, http.MethodGet, s.admin.URL+e.path); r.status != http.StatusOK {
			t.Errorf("GET %s: %d", e.path, r.status)
		}
	}
	// A stray Authorization header (a browser's, a proxy's) changes nothing.
	r := s.do(t, http.MethodGet, s.admin.URL+"/_bff/status", "Authorization", "Bearer whatever")
	if r.status != http.StatusOK {
		t.Errorf("/_bff/status with some Authorization and no token configured: %d", r.status)
	}
}

// Without a token, the listener answers only requests addressed to an IP
// address or localhost: a page that points a DNS name of its own at the
// listener (rebinding) reads nothing and purges nothing, though its Origin
// matches the Host it sends. Health stays open to any name, and with a
// token any name may be used.
func TestWithoutTokenOnlyIPsAndLocalhostAreAnswered(t *testing.T) {
	s := newStack(t, "")
	port := s.admin.URL[strings.LastIndexByte(s.admin.URL, ':')+1:]
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost.:" + port, "bff.localhost:" + port, "[::1]:" + port, "10.1.2.3:" + port, "127.0.0.1"} {
		if r := s.do(t, http.MethodGet, s.admin.URL+"/_bff/status", "Host", host); r.status != http.StatusOK {
			t.Errorf("Host %s: %d %s", host, r.status, r.body)
		}
	}
	s.get(t, "/web/home/7")
	s.wantCache(t, "/web/home/7", "HIT")
	for _, host := range []string{"rebind.example:" + port, "localhost.example:" + port, "127.0.0.1.nip.io:" + port} {
		for _, e := range protected {
			r := s.do(t, e.method, s.admin.URL+e.path, "Host", host, "Origin", "http://"+host, "Sec-Fetch-Site", "same-origin")
			wantProblem(t, host+e.path, r, http.StatusForbidden, bff.ProblemForbidden)
		}
	}
	s.wantCache(t, "/web/home/7", "HIT") // the purges were refused
	for _, e := range open {
		if r := s.do(t, http.MethodGet, s.admin.URL+e.path, "Host", "bff-admin.internal:"+port); r.status != http.StatusOK {
			t.Errorf("GET %s by name: %d", e.path, r.status)
		}
	}
	tokened := newStack(t, adminToken)
	if r := tokened.do(t, http.MethodGet, tokened.admin.URL+"/_bff/status", "Host", "bff-admin.internal", "Authorization", "Bearer "+adminToken); r.status != http.StatusOK {
		t.Errorf("with the token, by name: %d %s", r.status, r.body)
	}
}

// A request with no Host (HTTP/1.0 may send none; a minimal container's
// check script may) names no DNS name to rebind: it is answered without a
// token like one addressed to an IP.
func TestRequestWithoutHostIsAnswered(t *testing.T) {
	s := newStack(t, "")
	addr := strings.TrimPrefix(s.admin.URL, "http://")
	for _, req := range []string{
		"GET /metrics HTTP/1.0\r\n\r\n",
		"GET /_bff/status HTTP/1.0\r\n\r\n",
		"GET /_bff/status HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%q: status %d; want 200 (no Host, no DNS name to rebind)", req, resp.StatusCode)
		}
	}
}

// filled is a stack whose cache holds /web/home/7, /web/home/8 and
// /mobile/home/7, each served once from the cache already.
func filled(t *testing.T) *stack {
	t.Helper()
	s := newStack(t, adminToken)
	paths := []string{"/web/home/7", "/web/home/8", "/mobile/home/7"}
	for _, p := range paths {
		s.wantCache(t, p, "MISS")
	}
	for _, p := range paths {
		s.wantCache(t, p, "HIT")
	}
	return s
}

func (s *stack) purge(t *testing.T, query string) response {
	t.Helper()
	return s.adminDo(t, http.MethodPost, "/_bff/cache/purge"+query)
}

func TestPurge(t *testing.T) {
	for _, c := range []struct {
		name, query string
		purged      []string // miss after the purge; the others stay hits
		view        string   // what the answer says was purged
		prefix      string
	}{
		{name: "prefix", query: "?prefix=/web/home/7", purged: []string{"/web/home/7"}, prefix: "/web/home/7"},
		{name: "prefix of a client", query: "?prefix=/mobile/", purged: []string{"/mobile/home/7"}, prefix: "/mobile/"},
		{name: "view", query: "?view=mobile.home", purged: []string{"/mobile/home/7"}, view: "mobile.home"},
		{name: "view and prefix", query: "?view=web.home&prefix=/web/home/8", purged: []string{"/web/home/8"}, view: "web.home", prefix: "/web/home/8"},
		{name: "view and prefix of another view", query: "?view=web.order&prefix=/web/home/", view: "web.order", prefix: "/web/home/"},
		{name: "prefix nothing has", query: "?prefix=/web/orders/", prefix: "/web/orders/"},
		{name: "everything", query: "", purged: []string{"/web/home/7", "/web/home/8", "/mobile/home/7"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := filled(t)
			before := s.upstreams["users"].calls.Load()
			r := s.purge(t, c.query)
			if r.status != http.StatusOK {
				t.Fatalf("POST purge%s: %d %s", c.query, r.status, r.body)
			}
			var got struct {
				Purged struct{ View, Prefix string }
			}
			if err := json.Unmarshal(r.body, &got); err != nil || got.Purged.View != c.view || got.Purged.Prefix != c.prefix {
				t.Errorf("answer %s (%v), want view %q prefix %q", r.body, err, c.view, c.prefix)
			}
			for _, p := range []string{"/web/home/7", "/web/home/8", "/mobile/home/7"} {
				want := "HIT"
				if slices.Contains(c.purged, p) {
					want = "MISS"
				}
				s.wantCache(t, p, want)
			}
			if n := s.upstreams["users"].calls.Load() - before; n != int64(len(c.purged)) {
				t.Errorf("users upstream called %d times after the purge, want %d (one per purged path)", n, len(c.purged))
			}
			// What a purge hid is cached again by the next miss.
			for _, p := range c.purged {
				s.wantCache(t, p, "HIT")
			}
		})
	}
}

func TestPurgeRefusals(t *testing.T) {
	s := filled(t)
	for _, c := range []struct {
		name, method, query string
		status              int
		typ                 string
	}{
		{"unknown view", http.MethodPost, "?view=web.nope", http.StatusNotFound, bff.ProblemNotFound},
		{"unknown view with a prefix", http.MethodPost, "?view=web.nope&prefix=/web/", http.StatusNotFound, bff.ProblemNotFound},
		{"unknown parameter", http.MethodPost, "?path=/web/home/7", http.StatusBadRequest, bff.ProblemBadRequest},
		{"unknown parameter beside known ones", http.MethodPost, "?view=web.home&all=1", http.StatusBadRequest, bff.ProblemBadRequest},
		{"relative prefix", http.MethodPost, "?prefix=web/home/7", http.StatusBadRequest, bff.ProblemBadRequest},
		{"GET", http.MethodGet, "?prefix=/web/home/7", http.StatusMethodNotAllowed, bff.ProblemMethodNotAllowed},
		{"DELETE", http.MethodDelete, "", http.StatusMethodNotAllowed, bff.ProblemMethodNotAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.adminDo(t, c.method, "/_bff/cache/purge"+c.query)
			p := wantProblem(t, c.method+" purge"+c.query, r, c.status, c.typ)
			if p.Instance != "/_bff/cache/purge" {
				t.Errorf("instance %q, want the endpoint's path", p.Instance)
			}
			if p.Detail == "" {
				t.Error("no detail: the operator is not told what to change")
			}
		})
	}
	// None of them purged anything.
	for _, p := range []string{"/web/home/7", "/web/home/8", "/mobile/home/7"} {
		s.wantCache(t, p, "HIT")
	}
}

// An empty parameter is most often an unset shell variable
// (?view=$VIEW): it must not widen a purge to the whole cache.
func TestPurgeEmptyParameterIsRefused(t *testing.T) {

	for _, query := range []string{"?view=", "?prefix=", "?view=&prefix=", "?view=web.home&view=mobile.home"} {
		t.Run(query, func(t *testing.T) {
			s := filled(t)
			r := s.purge(t, query)
			wantProblem(t, "POST purge"+query, r, http.StatusBadRequest, bff.ProblemBadRequest)
			for _, p := range []string{"/web/home/7", "/web/home/8", "/mobile/home/7"} {
				s.wantCache(t, p, "HIT")
			}
		})
	}
}

// RFC 9110 §15.5.6: a 405 must say which methods the resource takes.
func TestMethodNotAllowedSaysAllow(t *testing.T) {

	s := newStack(t, adminToken)
	r := s.adminDo(t, http.MethodGet, "/_bff/cache/purge")
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Errorf("GET purge: %d, Allow %q, want 405 with Allow: POST", r.status, r.header.Get("Allow"))
	}
}

// Load balancers probe with HEAD too (haproxy's "option httpchk HEAD
// /readyz"); RFC 9110 §9.1: a server must support HEAD wherever it
// supports GET.
func TestHealthAnswersHEAD(t *testing.T) {

	s := newStack(t, adminToken)
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := s.do(t, http.MethodHead, s.admin.URL+path); r.status != http.StatusOK || len(r.body) != 0 {
			t.Errorf("HEAD %s: %d, %d body bytes, want 200 and no body", path, r.status, len(r.body))
		}
	}
	s.ready.Store(false)
	if r := s.do(t, http.MethodHead, s.admin.URL+"/readyz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("HEAD /readyz, not ready: %d, want 503", r.status)
	}
}

// RFC 9110 §11.1: the authentication scheme is case-insensitive.
func TestTokenSchemeIsCaseInsensitive(t *testing.T) {

	s := newStack(t, adminToken)
	for _, scheme := range []string{"bearer", "BEARER"} {
		if r := s.do(t, http.MethodGet, s.admin.URL+"/_bff/status", "Authorization", scheme+" "+adminToken); r.status != http.StatusOK {
			t.Errorf("Authorization: %s TOKEN: %d, want 200", scheme, r.status)
		}
	}
}

type upstreamJSON struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	Breaker struct {
		State               string `json:"state"`
		Requests            uint32 `json:"requests"`
		TotalFailures       uint32 `json:"total_failures"`
		ConsecutiveFailures uint32 `json:"consecutive_failures"`
	} `json:"breaker"`
	Calls     map[string]uint64 `json:"calls"`
	Retries   uint64            `json:"retries"`
	InFlight  int64             `json:"in_flight"`
	LastError *struct {
		Time  time.Time `json:"time"`
		Error string    `json:"error"`
	} `json:"last_error"`
}

func (s *stack) upstreamsByName(t *testing.T) (map[string]upstreamJSON, []byte) {
	t.Helper()
	var got struct{ Upstreams []upstreamJSON }
	body := s.adminJSON(t, "/_bff/upstreams", &got)
	out := map[string]upstreamJSON{}
	for _, u := range got.Upstreams {
		out[u.Name] = u
	}
	return out, body
}

// Secrets a caller sends to the public listener; none of them may reach
// the admin listener's output.
var callerSecrets = []string{"Bearer caller-s3cret-jwt", "sess10n-c00kie", "ap1-k3y-header", "qu3ry-t0ken"}

func TestUpstreamsShowBreakerAndLastError(t *testing.T) {
	s := newStack(t, adminToken)
	ups, _ := s.upstreamsByName(t)
	if len(ups) != len(demo.Names()) {
		t.Fatalf("%d upstreams listed, want %v", len(ups), demo.Names())
	}
	for _, name := range demo.Names() {
		u, ok := ups[name]
		switch {
		case !ok:
			t.Errorf("upstream %s not listed", name)
		case u.URL != s.upstreams[name].URL:
			t.Errorf("%s: url %q, want %q", name, u.URL, s.upstreams[name].URL)
		case u.Breaker.State != "closed" || u.LastError != nil || u.InFlight != 0:
			t.Errorf("%s before any traffic: %+v", name, u)
		}
	}

	s.upstreams["recs"].set(failing)
	secretly := func(id string) response {
		return s.get(t, "/web/home/"+id+"?token=qu3ry-t0ken",
			"Authorization", "Bearer caller-s3cret-jwt",
			"Cookie", "session=sess10n-c00kie",
			"X-Api-Key", "ap1-k3y-header")
	}
	// Each call makes 1+retries attempts and the breaker counts every one:
	// it opens within ceil(breakerTrips/(1+retries)) requests.
	opened, requests := false, 0
	for i := 0; i < breakerTrips && !opened; i++ {
		requests++
		r := secretly(string(rune('1' + i)))
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Bff-Partial"), "recommendations;reason=") {
			t.Fatalf("with recs failing: %d Bff-Partial %q, want a partial 200", r.status, r.header.Get("Bff-Partial"))
		}
		ups, _ = s.upstreamsByName(t)
		opened = ups["recs"].Breaker.State == "open"
	}
	if !opened {
		t.Fatalf("recs breaker still %q after %d failing calls", ups["recs"].Breaker.State, breakerTrips)
	}
	networkCalls := s.upstreams["recs"].calls.Load()
	if networkCalls != breakerTrips {
		t.Errorf("recs answered %d attempts before its breaker opened, want %d", networkCalls, breakerTrips)
	}
	// One more while open: the breaker refuses without a network call.
	requests++
	if r := secretly("90"); r.header.Get("Bff-Partial") != "recommendations;reason=breaker-open" {
		t.Errorf("with the breaker open: Bff-Partial %q", r.header.Get("Bff-Partial"))
	}

	ups, body := s.upstreamsByName(t)
	recs := ups["recs"]
	if recs.Breaker.State != "open" {
		t.Errorf("recs breaker %q, want open", recs.Breaker.State)
	}
	if recs.Calls["http_error"] == 0 || recs.Calls["breaker_open"] == 0 || recs.Calls["ok"] != 0 {
		t.Errorf("recs calls %v, want http_error and breaker_open counted, none ok", recs.Calls)
	}
	if recs.Retries == 0 {
		t.Errorf("recs retries %d: the 503s were retried", recs.Retries)
	}
	if recs.InFlight != 0 {
		t.Errorf("recs in_flight %d after every request finished", recs.InFlight)
	}
	if recs.LastError == nil || !strings.Contains(recs.LastError.Error, "recs") || recs.LastError.Time.IsZero() {
		t.Errorf("recs last_error %+v, want a dated error naming recs", recs.LastError)
	}
	for _, name := range []string{"users", "orders"} {
		u := ups[name]
		if u.Breaker.State != "closed" || u.LastError != nil || u.Calls["ok"] != uint64(requests) || u.Breaker.Requests != uint32(requests) {
			t.Errorf("%s, healthy: %+v, want closed, %d ok calls counted, no last_error", name, u, requests)
		}
	}
	if c := ups["catalog"]; c.Calls["ok"] != 0 || c.Breaker.State != "closed" {
		t.Errorf("catalog, never called: %+v", c)
	}

	status := s.adminDo(t, http.MethodGet, "/_bff/status").body
	for _, out := range [][]byte{body, status} {
		for _, secret := range append(callerSecrets, adminToken) {
			if bytes.Contains(out, []byte(secret)) {
				t.Errorf("admin output holds a request's secret %q: %s", secret, out)
			}
		}
	}
}

type callJSON struct {
	Name     string `json:"name"`
	Upstream string `json:"upstream"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	Query    string `json:"query"`
	Optional bool   `json:"optional"`
	ForEach  string `json:"for_each"`
}

type routeJSON struct {
	Client    string `json:"client"`
	View      string `json:"view"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Source    string `json:"source"`
	Cache     struct{ TTL, Scope string }
	Upstreams []string   `json:"upstreams"`
	Calls     []callJSON `json:"calls"`
}

func TestViewsListsEveryRouteWithItsCalls(t *testing.T) {
	s := newStack(t, adminToken)
	var got struct{ Views []routeJSON }
	s.adminJSON(t, "/_bff/views", &got)

	routes := s.front.Routes()
	if len(got.Views) != len(routes) {
		t.Fatalf("%d views listed, the front mounts %d", len(got.Views), len(routes))
	}
	byName := map[string]routeJSON{}
	for i, rt := range routes {
		v := got.Views[i]
		byName[v.View] = v
		if v.Client != rt.Client || v.View != rt.View || v.Method != rt.Method || v.Path != rt.Path || v.Source != rt.Source ||
			v.Cache.TTL != rt.Cache.TTL.String() || !slices.Equal(v.Upstreams, rt.Upstreams) || len(v.Calls) != len(rt.Calls) {
			t.Errorf("view %d: listed %+v, mounted %+v", i, v, rt)
			continue
		}
		for j, c := range rt.Calls {
			l := v.Calls[j]
			if l.Name != c.Name || l.Upstream != c.Upstream || l.Path != c.Path || l.Query != c.Query || l.Optional != c.Optional || l.Method != "GET" {
				t.Errorf("%s call %d: listed %+v, mounted %+v", rt.View, j, l, c)
			}
		}
	}

	// The built-in views, as an operator reads them.
	want := map[string]struct {
		path, ttl string
		calls     []string // name upstream path?query, * when optional
	}{
		"web.home":     {"/web/home/{id}", "30s", []string{"user users /users/{id}", "orders orders /orders?user_id={id}", "recommendations recs /recommendations?user_id={id} *"}},
		"mobile.home":  {"/mobile/home/{id}", "30s", []string{"user users /users/{id}", "orders orders /orders?user_id={id}", "recommendations recs /recommendations?user_id={id} *"}},
		"web.order":    {"/web/orders/{order_id}", "10s", []string{"order orders /orders/{order_id}", "products catalog /products?skus={order.items.#.sku} *"}},
		"mobile.order": {"/mobile/orders/{order_id}", "10s", []string{"order orders /orders/{order_id}", "products catalog /products?skus={order.items.#.sku} *"}},
	}
	if len(byName) != len(want) {
		t.Errorf("views %v, want the built-in %d", slices.Sorted(mapKeys(byName)), len(want))
	}
	for name, w := range want {
		v, ok := byName[name]
		if !ok {
			t.Errorf("view %s not listed", name)
			continue
		}
		var calls []string
		for _, c := range v.Calls {
			s := c.Name + " " + c.Upstream + " " + c.Path
			if c.Query != "" {
				s += "?" + c.Query
			}
			if c.Optional {
				s += " *"
			}
			calls = append(calls, s)
		}
		if v.Method != "GET" || v.Path != w.path || v.Cache.TTL != w.ttl || v.Cache.Scope != "public" || !slices.Equal(calls, w.calls) {
			t.Errorf("%s: GET %s cache %s/%s calls %q\nwant GET %s cache %s/public calls %q",
				name, v.Path, v.Cache.TTL, v.Cache.Scope, calls, w.path, w.ttl, w.calls)
		}
		if !strings.HasPrefix(v.Source, "bff/") {
			t.Errorf("%s: source %q, want the views.yaml line", name, v.Source)
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// keys returns the sorted keys of a JSON object.
func keys(t *testing.T, what string, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: not an object: %v: %s", what, err, raw)
	}
	return slices.Sorted(mapKeys(m))
}

func wantKeys(t *testing.T, what string, raw json.RawMessage, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keys(t, what, raw); !slices.Equal(got, want) {
		t.Errorf("%s keys %q, want %q", what, got, want)
	}
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

type statusJSON struct {
	Version       string         `json:"version"`
	Started       string         `json:"started"`
	Now           string         `json:"now"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	Ready         bool           `json:"ready"`
	Draining      bool           `json:"draining"`
	Upstreams     []upstreamJSON `json:"upstreams"`
	Views         []viewStatus   `json:"views"`
	Cache         struct {
		Enabled   bool   `json:"enabled"`
		Hits      uint64 `json:"hits"`
		Misses    uint64 `json:"misses"`
		Coalesced uint64 `json:"coalesced"`
		Bytes     int64  `json:"bytes"`
		MaxBytes  int64  `json:"max_bytes"`
		Entries   int64  `json:"entries"`
		Evictions uint64 `json:"evictions"`
	} `json:"cache"`
}

// checkStatusContract checks the keys the status page reads, at every level.
func checkStatusContract(t *testing.T, body []byte) {
	t.Helper()
	var top struct {
		Upstreams []json.RawMessage
		Views     []json.RawMessage
		Cache     json.RawMessage
	}
	wantKeys(t, "status", body, "version", "started", "now", "uptime_seconds", "ready", "draining", "upstreams", "views", "cache")
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, "cache", top.Cache, "enabled", "hits", "misses", "coalesced", "stale", "shared_hits", "bytes", "max_bytes", "entries", "evictions")
	for _, u := range top.Upstreams {
		wantKeys(t, "upstream", u, "name", "url", "breaker", "calls", "retries", "in_flight", "last_error")
		var b struct{ Breaker json.RawMessage }
		_ = json.Unmarshal(u, &b)
		wantKeys(t, "upstream breaker", b.Breaker, "state", "requests", "excluded", "total_failures", "consecutive_failures")
	}
	for _, v := range top.Views {
		wantKeys(t, "view", v, "client", "view", "method", "path", "requests", "partial", "latency_ms", "cache")
		var parts struct{ Requests, Cache json.RawMessage }
		_ = json.Unmarshal(v, &parts)
		wantKeys(t, "view requests", parts.Requests, "2xx", "3xx", "4xx", "5xx")
		wantKeys(t, "view cache", parts.Cache, "hit", "miss", "coalesced", "stale", "shared")
	}
}

func TestStatusContractAndCounts(t *testing.T) {
	s := newStack(t, adminToken)
	users, _ := demo.Handler("users")
	s.upstreams["users"].set(except(users, "/users/9?", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
	})))
	recs, _ := demo.Handler("recs")
	s.upstreams["recs"].set(except(recs, "/recommendations?user_id=5", failing))

	first := s.get(t, "/web/home/7") // 200 miss
	s.wantCache(t, "/web/home/7", "HIT")
	if r := s.get(t, "/web/home/7", "If-None-Match", first.header.Get("ETag")); r.status != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", r.status) // 304 hit
	}
	s.wantCache(t, "/web/home/8", "MISS")
	if r := s.get(t, "/web/home/5"); r.status != http.StatusOK || r.header.Get("Bff-Partial") == "" {
		t.Fatalf("/web/home/5 with its recs failing: %d Bff-Partial %q", r.status, r.header.Get("Bff-Partial"))
	}
	if r := s.get(t, "/web/home/9"); r.status != http.StatusBadGateway {
		t.Fatalf("/web/home/9 with its user failing: %d", r.status)
	}
	if r := s.get(t, "/web/home/abc"); r.status != http.StatusBadRequest {
		t.Fatalf("/web/home/abc: %d", r.status)
	}
	s.wantCache(t, "/mobile/home/7", "MISS")
	s.wantCache(t, "/mobile/home/7", "HIT")
	s.wantCache(t, "/web/orders/ord-7-20", "MISS")

	var st statusJSON
	body := s.adminJSON(t, "/_bff/status", &st)
	checkStatusContract(t, body)

	if st.Version != version || !st.Ready || st.Draining {
		t.Errorf("version %q ready %v draining %v, want %q true false", st.Version, st.Ready, st.Draining, version)
	}
	if st.Started != s.started.UTC().Format(time.RFC3339) {
		t.Errorf("started %q, want %q", st.Started, s.started.UTC().Format(time.RFC3339))
	}
	now, err := time.Parse(time.RFC3339Nano, st.Now)
	if err != nil || !now.After(s.started) {
		t.Errorf("now %q (%v), want an RFC 3339 time after started", st.Now, err)
	}
	if st.UptimeSeconds < time.Hour.Seconds() {
		t.Errorf("uptime_seconds %v, want at least 3600: started an hour ago", st.UptimeSeconds)
	}

	type counts struct {
		requests      [4]uint64 // 2xx..5xx
		partial       uint64
		hit, miss, co uint64
	}
	want := map[string]counts{
		"web.home":     {requests: [4]uint64{4, 1, 1, 1}, partial: 1, hit: 2, miss: 4},
		"mobile.home":  {requests: [4]uint64{2, 0, 0, 0}, hit: 1, miss: 1},
		"web.order":    {requests: [4]uint64{1, 0, 0, 0}, miss: 1},
		"mobile.order": {},
	}
	if len(st.Views) != len(want) {
		t.Errorf("%d views, want %d", len(st.Views), len(want))
	}
	for _, v := range st.Views {
		w, ok := want[v.View]
		if !ok {
			t.Errorf("unexpected view %q", v.View)
			continue
		}
		got := counts{
			requests: [4]uint64{v.Requests["2xx"], v.Requests["3xx"], v.Requests["4xx"], v.Requests["5xx"]},
			partial:  v.Partial, hit: v.Cache["hit"], miss: v.Cache["miss"], co: v.Cache["coalesced"],
		}
		if got != w {
			t.Errorf("%s: %+v, want %+v", v.View, got, w)
		}
		if v.Method != "GET" || !strings.HasPrefix(v.Path, "/"+v.Client+"/") || !strings.HasPrefix(v.View, v.Client+".") {
			t.Errorf("%s: client %q method %q path %q", v.View, v.Client, v.Method, v.Path)
		}
		if w.requests == [4]uint64{} {
			continue
		}
		p50, p90, p99 := v.LatencyMS["p50"], v.LatencyMS["p90"], v.LatencyMS["p99"]
		if p50 == nil || p90 == nil || p99 == nil {
			t.Errorf("%s, with requests: latency_ms %s", v.View, mustJSON(v.LatencyMS))
			continue
		}
		if !(*p50 > 0 && *p50 <= *p90 && *p90 <= *p99) {
			t.Errorf("%s: p50 %v p90 %v p99 %v, want 0 < p50 <= p90 <= p99", v.View, *p50, *p90, *p99)
		}
		if len(v.LatencyMS) != 3 {
			t.Errorf("%s: latency_ms %s, want p50, p90, p99", v.View, mustJSON(v.LatencyMS))
		}
	}

	c := st.Cache
	if !c.Enabled || c.Hits != 3 || c.Misses != 6 || c.Coalesced != 0 || c.MaxBytes != 16<<20 || c.Entries <= 0 || c.Bytes <= 0 {
		t.Errorf("cache %+v, want enabled, 3 hits, 6 misses, 0 coalesced, max 16 MiB, something stored", c)
	}

	ups := map[string]upstreamJSON{}
	for _, u := range st.Upstreams {
		ups[u.Name] = u
	}
	if len(ups) != len(demo.Names()) {
		t.Errorf("status lists upstreams %v", slices.Sorted(mapKeys(ups)))
	}
	if u := ups["users"]; u.LastError == nil || !strings.Contains(u.LastError.Error, "users") || !strings.Contains(u.LastError.Error, "500") || u.Calls["http_error"] != 1 {
		t.Errorf("users after one 500: calls %v last_error %+v", u.Calls, u.LastError)
	}
	if u := ups["recs"]; u.Retries != retries || u.Calls["http_error"] != 1 {
		t.Errorf("recs after one 503 call: calls %v retries %d, want 1 http_error and %d retries", u.Calls, u.Retries, retries)
	}
	if u := ups["catalog"]; u.Calls["ok"] != 1 || u.LastError != nil {
		t.Errorf("catalog after one order: %+v", u)
	}
}

// A view nobody requested yet has no latency: the page shows a dash, and
// the contract still names the three percentiles (null), like every other
// key that always exists.
func TestStatusLatencyOfIdleViewIsNull(t *testing.T) {

	s := newStack(t, "")
	var st struct {
		Views []struct {
			LatencyMS json.RawMessage `json:"latency_ms"`
		}
	}
	s.adminJSON(t, "/_bff/status", &st)
	for _, v := range st.Views {
		if string(v.LatencyMS) != `{"p50":null,"p90":null,"p99":null}` {
			t.Errorf("latency_ms %s", v.LatencyMS)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestReadyzFollowsReadyAndDraining(t *testing.T) {
	s := newStack(t, adminToken)
	readyz := func() (int, map[string]any) {
		t.Helper()
		r := s.do(t, http.MethodGet, s.admin.URL+"/readyz") // no token: load balancers have none
		if ct, cc := r.header.Get("Content-Type"), r.header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
			t.Errorf("/readyz: Content-Type %q Cache-Control %q", ct, cc)
		}
		var body map[string]any
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("/readyz: %v: %s", err, r.body)
		}
		return r.status, body
	}
	status := func() statusJSON {
		var st statusJSON
		s.adminJSON(t, "/_bff/status", &st)
		return st
	}

	if code, body := readyz(); code != http.StatusOK || body["status"] != "ready" || body["draining"] != false {
		t.Errorf("serving: %d %v, want 200 ready, not draining", code, body)
	}
	if st := status(); !st.Ready || st.Draining {
		t.Errorf("serving: status says ready %v draining %v", st.Ready, st.Draining)
	}

	// Shutdown begins, as cmd/bff does it.
	s.draining.Store(true)
	s.ready.Store(false)
	if code, body := readyz(); code != http.StatusServiceUnavailable || body["status"] != "not ready" || body["draining"] != true {
		t.Errorf("draining: %d %v, want 503 not ready, draining", code, body)
	}
	if st := status(); st.Ready || !st.Draining {
		t.Errorf("draining: status says ready %v draining %v", st.Ready, st.Draining)
	}
	// Alive all the same, and still serving the admin endpoints.
	if r := s.do(t, http.MethodGet, s.admin.URL+"/healthz"); r.status != http.StatusOK {
		t.Errorf("/healthz while draining: %d", r.status)
	}

	// Not ready without draining: during start-up.
	s.draining.Store(false)
	if code, body := readyz(); code != http.StatusServiceUnavailable || body["draining"] != false {
		t.Errorf("not ready, not draining: %d %v", code, body)
	}
	s.ready.Store(true)
	if code, _ := readyz(); code != http.StatusOK {
		t.Errorf("ready again: %d", code)
	}
}

func TestMetricsInPrometheusTextFormat(t *testing.T) {
	s := newStack(t, adminToken)
	s.get(t, "/web/home/7")
	s.get(t, "/web/home/7")
	s.get(t, "/mobile/home/7")

	r := s.adminDo(t, http.MethodGet, "/metrics")
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("not the text format: %v", err)
	}
	requests, ok := families["bff_requests_total"]
	if !ok || requests.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("bff_requests_total missing or not a counter: %v", requests)
	}
	want := map[string]float64{"web/web.home/2xx": 2, "mobile/mobile.home/2xx": 1}
	for _, m := range requests.Metric {
		l := map[string]string{}
		for _, lp := range m.Label {
			l[lp.GetName()] = lp.GetValue()
		}
		k := l["client"] + "/" + l["view"] + "/" + l["code"]
		if w, ok := want[k]; ok {
			if got := m.GetCounter().GetValue(); got != w {
				t.Errorf("bff_requests_total{%s} = %v, want %v", k, got, w)
			}
			delete(want, k)
		}
	}
	if len(want) > 0 {
		t.Errorf("bff_requests_total lacks %v", want)
	}
	for _, name := range []string{"bff_upstream_calls_total", "bff_upstream_breaker_state", "bff_cache_requests_total", "bff_cache_bytes", "go_goroutines"} {
		if _, ok := families[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !bytes.Contains(r.body, []byte("# TYPE bff_requests_total counter\n")) {
		t.Error("no TYPE line for bff_requests_total")
	}
}

func TestUnknownPathIsProblem(t *testing.T) {
	s := newStack(t, adminToken)
	for _, path := range []string{"/nope", "/_bff/nope", "/_bff/status/extra", "/web/home/7", "/metrics/x"} {
		r := s.adminDo(t, http.MethodGet, path)
		p := wantProblem(t, path, r, http.StatusNotFound, bff.ProblemNotFound)
		if p.Instance != path {
			t.Errorf("%s: instance %q", path, p.Instance)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
	}
}
