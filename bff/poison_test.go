package bff_test

// Cache poisoning and cache deception, reviewed from the outside: a value a
// request carries that changes what the upstreams answer must either be part
// of the cache key or never reach the upstreams.

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/demo"
	"github.com/golang-jwt/jwt/v5"
)

// tokenWith is a valid token for sub with extra claims.
func tokenWith(t *testing.T, sub string, extra map[string]any) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "iss": "https://id.example", "aud": "bff", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

// A per-user view whose upstream path reads a claim other than sub
// ({auth.org}: the organisation the token was issued for) asks the upstream
// for a different resource per org. One subject may hold tokens for two orgs
// (a consultant, a user switching workspaces); the entry cached for the
// first org must not answer the second, whose data the upstream was never
// asked for: every claim the templates read is in the key.
func TestPerUserKeyHoldsEveryClaimTheViewReads(t *testing.T) {
	orgs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		org := strings.TrimPrefix(r.URL.Path, "/orgs/")
		fmt.Fprintf(w, `{"id":%q,"invoices":"invoices of %s"}`, org, org)
	})
	sets := []bff.RouteSet{{Client: "web", Auth: &bff.ClientAuth{Verifier: testVerifier(t), Default: "optional"}, Views: []aggregate.View{{
		Name: "web.org", Route: "/org", Auth: aggregate.AuthPolicy{Mode: "required"},
		Cache: aggregate.CachePolicy{TTL: time.Minute, Scope: aggregate.ScopeUser},
		Calls: []aggregate.Call{{Name: "org", Upstream: "orgs", Path: "/orgs/{auth.org}"}},
		Shape: []aggregate.Field{aggregate.Object("org", "org", aggregate.Pick("id"), aggregate.Pick("invoices"))},
	}}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"orgs": orgs}})

	acme := h.get(t, "/web/org", "Authorization", tokenWith(t, "7", map[string]any{"org": "acme"}))
	if acme.Code != http.StatusOK || !strings.Contains(acme.Body.String(), "invoices of acme") {
		t.Fatalf("org acme: %d %s", acme.Code, acme.Body)
	}
	h.cache.Wait()
	globex := h.get(t, "/web/org", "Authorization", tokenWith(t, "7", map[string]any{"org": "globex"}))
	if globex.Code != http.StatusOK || !strings.Contains(globex.Body.String(), "invoices of globex") {
		t.Errorf("a token of the same subject for org globex got %d (X-Cache %s) %s; want globex's own data, not acme's",
			globex.Code, globex.Header().Get("X-Cache"), globex.Body)
	}
}

// Traceparent, Tracestate and Idempotency-Key are forwarded but not part
// of the cache key. An upstream behind a common proxy refuses a header line
// over 8 KiB (nginx answers 400); for an optional call that makes a partial
// answer, cached for partial_ttl and served to every caller of the path. So
// an oversized or malformed one is dropped before it is forwarded (and
// Idempotency-Key means nothing on a read).
func TestOversizedTraceHeaderDoesNotDegradeOtherCallers(t *testing.T) {
	recs, _ := demo.Handler("recs")
	strict := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, values := range r.Header {
			for _, v := range values {
				if len(v) > 8<<10 {
					http.Error(w, "Request Header Or Cookie Too Large", http.StatusBadRequest)
					return
				}
			}
		}
		recs.ServeHTTP(w, r)
	})
	handlers := map[string]http.Handler{}
	for _, name := range demo.Names() {
		handlers[name], _ = demo.Handler(name)
	}
	handlers["recs"] = strict
	// partial_ttl is 1s by default; a longer one keeps the test free of timing.
	h := newHarness(t, options{handlers: handlers, partialTTL: time.Minute})

	for _, header := range []string{"Tracestate", "Traceparent", "Idempotency-Key"} {
		t.Run(header, func(t *testing.T) {
			h.front.Purge("", "")
			attacker := h.get(t, "/web/home/7", header, strings.Repeat("a", 9<<10))
			if attacker.Code != http.StatusOK {
				t.Fatalf("attacker's request: %d %s", attacker.Code, attacker.Body)
			}
			h.cache.Wait()
			victim := h.get(t, "/web/home/7")
			if p := victim.Header().Get(bff.PartialHeader); victim.Code != http.StatusOK || p != "" {
				t.Errorf("another caller, plain request: %d, X-Cache %s, %s %q; want the complete answer (the attacker's %s made the partial one)",
					victim.Code, victim.Header().Get("X-Cache"), bff.PartialHeader, p, header)
			}
		})
	}
}

// Trace context a tracer really sends is forwarded as it came; what no
// tracer sends is not.
func TestTraceContextIsForwardedOnlyWhenWellFormed(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
	got := make(chan http.Header, 1)
	users := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		_, _ = w.Write([]byte(`{"name":"Ada"}`))
	})
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{
		Name: "web.who", Route: "/who/{id}", Params: []aggregate.Param{{Name: "id", Pattern: `[0-9]+`}},
		Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/{id}"}},
		Shape: []aggregate.Field{aggregate.Pick("user.name")},
	}}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"users": users}})
	for i, c := range []struct {
		name                  string
		parent, state         string
		wantParent, wantState string
	}{
		{"well formed", parent, state, parent, state},
		{"a later version with a field more", "01" + parent[2:] + "-what-comes-next", state, "01" + parent[2:] + "-what-comes-next", state},
		{"upper-case hex", strings.ToUpper(parent), state, "", ""},
		{"version 00 with a field more", parent + "-x", state, "", ""},
		{"version ff", "ff" + parent[2:], state, "", ""},
		{"trace id all zeros", "00-" + strings.Repeat("0", 32) + parent[35:], state, "", ""},
		{"tracestate without a parent", "", state, "", ""},
		{"tracestate too long", parent, strings.Repeat("k=v,", 200), parent, ""},
		{"tracestate with a control byte", parent, "k=v\x01", parent, ""},
		{"tracestate with tabs between members", parent, "rojo=1,\tcongo=2", parent, "rojo=1,\tcongo=2"},
	} {
		// A new id each time: each request is a miss that reaches the upstream.
		path := "/web/who/" + strconv.Itoa(i+1)
		var header []string
		if c.parent != "" {
			header = append(header, "Traceparent", c.parent)
		}
		header = append(header, "Tracestate", c.state)
		if w := h.get(t, path, header...); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.name, w.Code, w.Body)
		}
		up := <-got
		if p, s := up.Get("Traceparent"), up.Get("Tracestate"); p != c.wantParent || s != c.wantState {
			t.Errorf("%s: upstream got traceparent %q, tracestate %q; want %q, %q", c.name, p, s, c.wantParent, c.wantState)
		}
	}
}

// The other way an upstream learns the org: it receives the caller's token
// (forward_authorization) and reads its org claim, as a tenant-aware API
// does. Every claim of a forwarded token but its times is in the key.
func TestPerUserKeyCoversClaimsOfAForwardedToken(t *testing.T) {
	orgs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims := jwt.MapClaims{}
		raw := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
			http.Error(w, `{"error":"no token"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"invoices":"invoices of %v"}`, claims["org"])
	})
	sets := []bff.RouteSet{{Client: "web", Auth: &bff.ClientAuth{Verifier: testVerifier(t), Default: "optional"}, Views: []aggregate.View{{
		Name: "web.invoices", Route: "/invoices", Auth: aggregate.AuthPolicy{Mode: "required"},
		Cache: aggregate.CachePolicy{TTL: time.Minute, Scope: aggregate.ScopeUser},
		Calls: []aggregate.Call{{Name: "inv", Upstream: "orgs", Path: "/invoices"}},
		Shape: []aggregate.Field{aggregate.Pick("inv.invoices")},
	}}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"orgs": orgs}, forwardsAuth: map[string]bool{"orgs": true}})

	acme := h.get(t, "/web/invoices", "Authorization", tokenWith(t, "7", map[string]any{"org": "acme"}))
	if acme.Code != http.StatusOK || !strings.Contains(acme.Body.String(), "invoices of acme") {
		t.Fatalf("org acme: %d %s", acme.Code, acme.Body)
	}
	h.cache.Wait()
	globex := h.get(t, "/web/invoices", "Authorization", tokenWith(t, "7", map[string]any{"org": "globex"}))
	if !strings.Contains(globex.Body.String(), "invoices of globex") {
		t.Errorf("a token of the same subject for org globex got %d (X-Cache %s) %s; want globex's own data, not acme's",
			globex.Code, globex.Header().Get("X-Cache"), globex.Body)
	}
}
