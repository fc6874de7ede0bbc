package bff_test

// Who may see what: per-method policies, scopes, tokens that must verify
// before they reach an upstream, and answers kept per caller.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

func testVerifier(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.New(auth.Config{Issuer: "https://id.example", Audience: "bff", Keys: []auth.Key{{Alg: "HS256", Secret: testSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// A route can serve two views, one per method (GET /cart/items to read,
// POST /cart/items to add), and each keeps its own auth policy. Policies
// were keyed by route alone once: the view listed last decided for both,
// and a POST that needs a token and a scope ran with the GET's "none".
func TestAuthPolicyIsPerMethod(t *testing.T) {
	cart := &cartUpstream{}
	sets := []bff.RouteSet{{Client: "web", Auth: &bff.ClientAuth{Verifier: testVerifier(t), Default: "optional"}, Views: []aggregate.View{
		{
			Name: "web.cart.add", Route: "/cart/items", Method: http.MethodPost,
			Auth: aggregate.AuthPolicy{Mode: "required", Scopes: []string{"cart:write"}},
			Body: &aggregate.BodyPolicy{MaxBytes: 200, Schema: json.RawMessage(`{"type":"object"}`)},
			Calls: []aggregate.Call{
				{Name: "add", Upstream: "carts", Method: http.MethodPost, Path: "/cart/items", Body: "request"},
			},
			Shape: []aggregate.Field{aggregate.Rename("ok", "add.ok")},
		},
		{
			Name: "web.cart.items", Route: "/cart/items", Auth: aggregate.AuthPolicy{Mode: "none"},
			Calls: []aggregate.Call{{Name: "cart", Upstream: "carts", Path: "/cart"}},
			Shape: []aggregate.Field{aggregate.List("items", "cart.items", 0)},
		},
	}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"carts": cart}})

	if w := post(h, "/web/cart/items", `{"sku":"A-1","qty":1}`); w.Code != http.StatusUnauthorized {
		t.Errorf("POST without a token to a view with auth required: %d %s; want 401", w.Code, w.Body)
	}
	if w := post(h, "/web/cart/items", `{"sku":"A-1","qty":1}`, "Authorization", token(t, "7", "profile")); w.Code != http.StatusForbidden {
		t.Errorf("POST with a token lacking scope cart:write: %d %s; want 403", w.Code, w.Body)
	}
	if n := cart.posts.Load(); n != 0 {
		t.Errorf("%d unauthorized POSTs reached the upstream", n)
	}
	// The GET keeps its own policy.
	if w := h.get(t, "/web/cart/items"); w.Code != http.StatusOK {
		t.Errorf("GET with auth none: %d %s", w.Code, w.Body)
	}
}

// An uncached view (no ttl) that reads {auth.sub} is still keyed per
// caller: identical requests in flight share one execution, and one that
// arrived while another caller's ran once got the other caller's data.
func TestUncachedClaimViewIsNotSharedBetweenCallers(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan string, 8)
	users := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/users/")
		arrived <- id
		if id == "7" {
			<-release
		}
		fmt.Fprintf(w, `{"id":%q,"email":"user%s@example.com"}`, id, id)
	})
	sets := []bff.RouteSet{{Client: "web", Auth: &bff.ClientAuth{Verifier: testVerifier(t), Default: "optional"}, Views: []aggregate.View{{
		Name: "web.me", Route: "/me", Auth: aggregate.AuthPolicy{Mode: "required"},
		// No cache: the caller's own account data is never stored.
		Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/{auth.sub}"}},
		Shape: []aggregate.Field{aggregate.Object("user", "user", aggregate.Pick("id"), aggregate.Pick("email"))},
	}}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"users": users}})

	var wg sync.WaitGroup
	var first, second *httptest.ResponseRecorder
	wg.Go(func() { first = h.get(t, "/web/me", "Authorization", token(t, "7", "")) })
	if id := <-arrived; id != "7" {
		t.Fatalf("first upstream call for %s", id)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		second = h.get(t, "/web/me", "Authorization", token(t, "8", ""))
	}()
	// Wait until user 8's request either joined user 7's execution or made
	// its own call; then let user 7's call answer.
	waitFor(t, "user 8's request to join or call", func() bool {
		if h.front.Coalesced() > 0 {
			return true
		}
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	close(release)
	wg.Wait()
	<-done
	if !strings.Contains(first.Body.String(), "user7@") {
		t.Errorf("user 7 got %d %s", first.Code, first.Body)
	}
	if second.Code != http.StatusOK || !strings.Contains(second.Body.String(), "user8@") {
		t.Errorf("user 8 got %d %s; want its own account", second.Code, second.Body)
	}
}

// A view that needs a token but is cached with the public scope answers
// Cache-Control private: under RFC 9111 §3.5 a shared cache in front of
// the BFF (a CDN, a corporate proxy) may keep a "public" answer and hand
// it to callers who send no token, undoing the view's auth requirement.
func TestGatedAnswerIsPrivateDownstream(t *testing.T) {
	h := withStaffView(t, aggregate.AuthPolicy{Mode: "required", Scopes: []string{"staff"}}, aggregate.CachePolicy{TTL: time.Minute})
	w := h.get(t, "/web/staff/7", "Authorization", token(t, "7", "staff"))
	if w.Code != http.StatusOK {
		t.Fatalf("with the scope: %d %s", w.Code, w.Body)
	}
	cc, vary := w.Header().Get("Cache-Control"), strings.Join(w.Header().Values("Vary"), ", ")
	if strings.Contains(cc, "public") && !strings.Contains(vary, "Authorization") {
		t.Errorf("a view that needs a token answers Cache-Control %q, Vary %q: a shared cache may serve it to anyone", cc, vary)
	}
}

// authEcho serves /web/profile/{id} per user, optional auth, over a users
// upstream that receives Authorization; received returns the values it got
// since the last call.
func authEcho(t *testing.T) (h *harness, received func() [][]string) {
	var mu sync.Mutex
	var got [][]string
	users := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Values("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"id":"7","name":"x"}`))
	})
	sets := []bff.RouteSet{{Client: "web", Auth: &bff.ClientAuth{Verifier: testVerifier(t), Default: "optional"}, Views: []aggregate.View{{
		Name: "web.profile", Route: "/profile/{id}", Params: []aggregate.Param{{Name: "id", Pattern: "[0-9]+"}},
		Cache: aggregate.CachePolicy{TTL: time.Minute, Scope: aggregate.ScopeUser},
		Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/{id}"}},
		Shape: []aggregate.Field{aggregate.Object("user", "user", aggregate.Pick("id"), aggregate.Pick("name"))},
	}}}}
	h = newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"users": users}, forwardsAuth: map[string]bool{"users": true}})
	return h, func() [][]string {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
}

// forged is a token for sub signed with a key the BFF does not know.
func forged(t *testing.T, sub string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "iss": "https://id.example", "aud": "bff",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("not the BFF's secret, but 32 bytes long"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withStaffView is the built-in views, web verifying tokens (optional by
// default), plus /web/staff/{id} with the given auth and cache policies.
func withStaffView(t *testing.T, auth aggregate.AuthPolicy, cache aggregate.CachePolicy) *harness {
	sets := builtinRoutes(t)
	for i := range sets {
		if sets[i].Client != "web" {
			continue
		}
		sets[i].Auth = &bff.ClientAuth{Verifier: testVerifier(t), Default: "optional"}
		sets[i].Views = append(sets[i].Views, aggregate.View{
			Name: "web.staff", Route: "/staff/{id}", Params: []aggregate.Param{{Name: "id", Pattern: "[0-9]+"}},
			Auth: auth, Cache: cache,
			Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/{id}"}},
			Shape: []aggregate.Field{aggregate.Object("user", "user", aggregate.Pick("id"), aggregate.Pick("email"))},
		})
	}
	return newHarness(t, options{routeSets: sets})
}

// A client that verifies tokens promises that a token sent must verify
// ("optional": none, or a valid one). An Authorization header that is not
// read as one bearer token ("Bearer<TAB>…", another scheme, a second
// header beside a valid one) is a 400: it would otherwise reach an
// upstream with forward_authorization unverified.
func TestOnlyVerifiedAuthorizationReachesUpstreams(t *testing.T) {
	h, received := authEcho(t)
	valid := token(t, "7", "")
	for i, header := range [][]string{
		{"Bearer\t" + forged(t, "8")},       // not split on the space: "no token"
		{"Bearer " + forged(t, "8")},        // the control: refused with 401
		{valid, "Bearer " + forged(t, "8")}, // the first is verified, both are forwarded
	} {
		req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/web/profile/%d", 100+i), nil)
		for _, v := range header {
			req.Header.Add("Authorization", v)
		}
		w := httptest.NewRecorder()
		h.front.ServeHTTP(w, req)
		for _, values := range received() {
			if len(values) != 1 || values[0] != valid {
				t.Errorf("case %d: answered %d, and the upstream received Authorization %q, which the BFF never verified", i, w.Code, values)
			}
		}
	}
}

// A view that names scopes but leaves its mode to the client's default
// ("optional") must still need a token: scopes are checked on one, so a
// caller who sends none would otherwise skip the check.
func TestScopesNeedAToken(t *testing.T) {
	h := withStaffView(t, aggregate.AuthPolicy{Scopes: []string{"staff"}}, aggregate.CachePolicy{})
	if w := h.get(t, "/web/staff/7"); w.Code != http.StatusUnauthorized {
		t.Errorf("no token: %d %s; want 401", w.Code, w.Body)
	}
	if w := h.get(t, "/web/staff/7", "Authorization", token(t, "7", "profile")); w.Code != http.StatusForbidden {
		t.Errorf("a token without the scope: %d %s; want 403", w.Code, w.Body)
	}
	if w := h.get(t, "/web/staff/7", "Authorization", token(t, "7", "staff")); w.Code != http.StatusOK {
		t.Errorf("a token with the scope: %d %s; want 200", w.Code, w.Body)
	}
	if w := h.get(t, "/web/home/7"); w.Code != http.StatusOK {
		t.Errorf("a view without scopes, no token: %d; want 200 (optional)", w.Code)
	}
}

// Per-user entries are kept per grant: an upstream that receives the
// token may answer a narrower one with less, so a token of the same
// subject with fewer scopes never gets what a broader one was answered.
// The same scopes in another order are the same grant.
func TestPerUserEntriesAreKeptPerGrant(t *testing.T) {
	var calls sync.Map
	users := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := calls.LoadOrStore(r.Header.Get("Authorization"), new(int))
		*n.(*int)++
		_, _ = w.Write([]byte(`{"id":"7","name":"x"}`))
	})
	sets := []bff.RouteSet{{Client: "web", Auth: &bff.ClientAuth{Verifier: testVerifier(t), Default: "optional"}, Views: []aggregate.View{{
		Name: "web.me", Route: "/me", Auth: aggregate.AuthPolicy{Mode: "required"},
		Cache: aggregate.CachePolicy{TTL: time.Minute, Scope: aggregate.ScopeUser},
		Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/{auth.sub}"}},
		Shape: []aggregate.Field{aggregate.Object("user", "user", aggregate.Pick("id"), aggregate.Pick("name"))},
	}}}}
	h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"users": users}, forwardsAuth: map[string]bool{"users": true}})
	broad, narrow, reordered := token(t, "7", "profile orders"), token(t, "7", "profile"), token(t, "7", "orders profile")
	for _, tok := range []string{broad, narrow, reordered} {
		if w := h.get(t, "/web/me", "Authorization", tok); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		h.cache.Wait()
	}
	asked := func(tok string) int {
		n, ok := calls.Load(tok)
		if !ok {
			return 0
		}
		return *n.(*int)
	}
	if asked(broad) != 1 || asked(narrow) != 1 || asked(reordered) != 0 {
		t.Errorf("upstream calls per token: broad %d, narrow %d, reordered %d; want 1, 1, 0 (the narrow grant fetched its own, the reordered one shared the broad one's)",
			asked(broad), asked(narrow), asked(reordered))
	}
}

// A flood of made-up tokens costs signature checks the rate limit never
// counts (it keys callers by subject, after authn). Each address has a
// budget of checks per window: past it, a new token is 429 unchecked,
// while a token verified before still passes and other addresses are
// untouched.
func TestMadeUpTokensSpendTheAddressBudget(t *testing.T) {
	h := withAuth(t, &bff.RateLimit{Limit: bff.Limit{Requests: 1000, Window: time.Hour}})
	known := token(t, "7", "")
	if w := from(h, "/web/me", "198.51.100.1", "Authorization", known); w.Code != http.StatusOK {
		t.Fatalf("a valid token: %d %s", w.Code, w.Body)
	}
	refused, limited := 0, 0
	for i := range 1100 {
		switch w := from(h, "/web/me", "198.51.100.1", "Authorization", "Bearer "+forged(t, fmt.Sprint(i))); w.Code {
		case http.StatusUnauthorized:
			refused++
		case http.StatusTooManyRequests:
			limited++
			if w.Header().Get("Retry-After") != "3600" {
				t.Fatalf("429 with Retry-After %q", w.Header().Get("Retry-After"))
			}
		default:
			t.Fatalf("a made-up token: %d %s", w.Code, w.Body)
		}
	}
	// The valid token spent one check of the 1000.
	if refused != 999 || limited != 101 {
		t.Errorf("1100 made-up tokens from one address: %d checked and refused, %d not checked; want 999 and 101", refused, limited)
	}
	if w := from(h, "/web/me", "198.51.100.1", "Authorization", known); w.Code != http.StatusOK {
		t.Errorf("a token verified before, from the same address: %d", w.Code)
	}
	if w := from(h, "/web/me", "198.51.100.2", "Authorization", token(t, "8", "")); w.Code != http.StatusOK {
		t.Errorf("a new token from another address: %d", w.Code)
	}
}

// A view whose route ends in '/' (or is the client's root, "/") keeps its
// own auth policy: each view's handler carries it. A lookup under chi's
// RoutePattern(), which drops a trailing '/', once missed, and the
// client's default ("optional") let callers without a token into a view
// that requires one.
func TestAuthPolicyOfTrailingSlashRoute(t *testing.T) {
	for _, route := range []string{"/staff/", "/"} {
		sets := []bff.RouteSet{{Client: "web", Auth: &bff.ClientAuth{Verifier: testVerifier(t), Default: "optional"}, Views: []aggregate.View{{
			Name: "web.staff", Route: route,
			Auth:  aggregate.AuthPolicy{Mode: "required", Scopes: []string{"staff"}},
			Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/7"}},
			Shape: []aggregate.Field{aggregate.Rename("version", "user.version")},
		}}}}
		h := newHarness(t, options{routeSets: sets, handlers: map[string]http.Handler{"users": &switchable{}}})
		if w := h.get(t, "/web"+route); w.Code != http.StatusUnauthorized {
			t.Errorf("GET /web%s without a token, view auth required with scope staff: %d %s; want 401", route, w.Code, w.Body)
		}
		if w := h.get(t, "/web"+route, "Authorization", token(t, "7", "profile")); w.Code != http.StatusForbidden {
			t.Errorf("GET /web%s with a token lacking scope staff: %d %s; want 403", route, w.Code, w.Body)
		}
		if n := h.calls("users"); n != 0 {
			t.Errorf("route %q: %d calls reached the upstream of a view that needs a token with scope staff", route, n)
		}
	}
}

// An empty Authorization, or "Bearer " with nothing after it (a signed-out
// page's client), is no token: an optional view answers as for anyone,
// and the upstream that receives Authorization gets none.
func TestBlankBearerIsNoToken(t *testing.T) {
	h, received := authEcho(t)
	for _, v := range []string{"", "Bearer ", "bearer", "  "} {
		if w := h.get(t, "/web/profile/7", "Authorization", v); w.Code != http.StatusOK {
			t.Errorf("Authorization %q: %d %s; want 200 as anyone", v, w.Code, w.Body)
		}
	}
	for _, values := range received() {
		if len(values) != 0 {
			t.Errorf("the upstream received Authorization %q", values)
		}
	}
	if w := h.get(t, "/web/profile/7", "Authorization", "Basic dTpw"); w.Code != http.StatusBadRequest {
		t.Errorf("Basic credentials: %d; want 400 (they cannot be verified)", w.Code)
	}
}
