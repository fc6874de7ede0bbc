package bff_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func token(t testing.TB, sub string, scopes string) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "iss": "https://id.example", "aud": "bff", "exp": time.Now().Add(time.Hour).Unix(), "scope": scopes}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + s
}

func withAuth(t *testing.T, rl *bff.RateLimit) *harness {
	v, err := auth.New(auth.Config{Issuer: "https://id.example", Audience: "bff", Keys: []auth.Key{{Alg: "HS256", Secret: testSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	sets := builtinRoutes(t)
	for i := range sets {
		if sets[i].Client == "web" {
			sets[i].Auth = &bff.ClientAuth{Verifier: v, Default: "optional"}
			sets[i].RateLimit = rl
			sets[i].Views = append(sets[i].Views,
				aggregate.View{
					Name: "web.me", Route: "/me", Auth: aggregate.AuthPolicy{Mode: "required"},
					Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/{auth.sub}"}},
					Cache: aggregate.CachePolicy{TTL: time.Minute, Scope: aggregate.ScopeUser},
					Shape: []aggregate.Field{aggregate.Object("user", "user", aggregate.Pick("id"), aggregate.Pick("name"))},
				},
				aggregate.View{
					Name: "web.admin", Route: "/admin/{id}", Params: []aggregate.Param{{Name: "id", Pattern: "[0-9]+"}},
					Auth:  aggregate.AuthPolicy{Mode: "required", Scopes: []string{"admin"}},
					Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/{id}"}},
					Shape: []aggregate.Field{aggregate.Rename("id", "user.id")},
				})
		}
	}
	return newHarness(t, options{routeSets: sets})
}

func TestAuth(t *testing.T) {
	h := withAuth(t, nil)
	check := func(name string, w interface {
		Header() http.Header
	}, code, wantCode int, challenge string) {
		t.Helper()
		if code != wantCode || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), challenge) {
			t.Errorf("%s: %d %q; want %d with %q", name, code, w.Header().Get("WWW-Authenticate"), wantCode, challenge)
		}
	}
	w := h.get(t, "/web/me")
	check("no token", w, w.Code, http.StatusUnauthorized, `Bearer realm="bff"`)
	w = h.get(t, "/web/me", "Authorization", "Bearer not.a.token")
	check("a bad token", w, w.Code, http.StatusUnauthorized, `Bearer realm="bff", error="invalid_token"`)
	if strings.Contains(w.Body.String(), "signature") || strings.Contains(w.Body.String(), "malformed") {
		t.Errorf("the problem says why the token failed: %s", w.Body)
	}
	w = h.get(t, "/web/admin/7", "Authorization", token(t, "7", "profile"))
	check("a missing scope", w, w.Code, http.StatusForbidden, `Bearer realm="bff", error="insufficient_scope", scope="admin"`)
	if w := h.get(t, "/web/admin/7", "Authorization", token(t, "7", "profile admin")); w.Code != http.StatusOK {
		t.Errorf("with the scope: %d %s", w.Code, w.Body)
	}
	// Optional: no token is fine, a bad one is not.
	if w := h.get(t, "/web/home/7"); w.Code != http.StatusOK {
		t.Errorf("optional view without a token: %d", w.Code)
	}
	w = h.get(t, "/web/home/7", "Authorization", "Bearer not.a.token")
	check("optional view with a bad token", w, w.Code, http.StatusUnauthorized, `Bearer realm="bff", error="invalid_token"`)
	// The mobile client verifies nothing.
	if w := h.get(t, "/mobile/home/7", "Authorization", "Bearer not.a.token"); w.Code != http.StatusOK {
		t.Errorf("mobile, which has no auth: %d", w.Code)
	}
}

// Two users calling the same per-user view, many times at once, each get
// their own data: the subject is in the call and in the cache key.
func TestUsersNeverSeeEachOthersData(t *testing.T) {
	h := withAuth(t, nil)
	var wg sync.WaitGroup
	for _, sub := range []string{"7", "8", "9"} {
		tok := token(t, sub, "")
		for range 30 {
			wg.Go(func() {
				w := h.get(t, "/web/me", "Authorization", tok)
				var got struct{ User struct{ ID json.Number } }
				_ = json.Unmarshal(w.Body.Bytes(), &got)
				if w.Code != http.StatusOK || got.User.ID.String() != sub {
					t.Errorf("user %s got %d %s", sub, w.Code, w.Body)
				}
			})
		}
	}
	wg.Wait()
	if n := h.calls("users"); n < 3 {
		t.Errorf("users called %d times; want at least one per user", n)
	}
}

// An authenticated caller's rate limit follows the subject, not the address.
func TestRateLimitBySubject(t *testing.T) {
	h := withAuth(t, &bff.RateLimit{Limit: bff.Limit{Requests: 1, Window: time.Hour}})
	for i, sub := range []string{"7", "8"} {
		if w := from(h, "/web/me", "198.51.100.1", "Authorization", token(t, sub, "")); w.Code != http.StatusOK {
			t.Errorf("user %s (request %d) from one address: %d; want its own budget", sub, i, w.Code)
		}
	}
	if w := from(h, "/web/me", "198.51.100.2", "Authorization", token(t, "7", "")); w.Code != http.StatusTooManyRequests {
		t.Errorf("user 7 from another address: %d; want 429", w.Code)
	}
}

func TestAuthViewErrors(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{"users": nil})
	for _, tc := range []struct {
		v    aggregate.View
		want string
	}{
		{aggregate.View{Name: "v", Route: "/v", Calls: []aggregate.Call{{Name: "u", Upstream: "users", Path: "/users/{auth.sub}"}},
			Shape: []aggregate.Field{aggregate.Pick("u")}}, "{auth.sub}: a view reading the token's claims needs auth mode required"},
		{aggregate.View{Name: "v", Route: "/v", Auth: aggregate.AuthPolicy{Mode: "required"}, Cache: aggregate.CachePolicy{TTL: time.Minute},
			Calls: []aggregate.Call{{Name: "u", Upstream: "users", Path: "/users/{auth.sub}"}},
			Shape: []aggregate.Field{aggregate.Pick("u")}}, `cache.scope must be "user"`},
		{aggregate.View{Name: "v", Route: "/v", Auth: aggregate.AuthPolicy{Mode: "sometimes"},
			Calls: []aggregate.Call{{Name: "u", Upstream: "users", Path: "/u"}}, Shape: []aggregate.Field{aggregate.Pick("u")}},
			`auth.mode: "sometimes": want none, optional or required`},
	} {
		if _, err := aggregate.Compile(tc.v, e.Catalog(nil)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v; want %q", err, tc.want)
		}
	}
	// A view that needs tokens in a client that verifies none.
	sets := []bff.RouteSet{{Client: "web", Views: []aggregate.View{{Name: "v", Route: "/v", Auth: aggregate.AuthPolicy{Mode: "required"},
		Calls: []aggregate.Call{{Name: "u", Upstream: "users", Path: "/u"}}, Shape: []aggregate.Field{aggregate.Pick("u")}}}}}
	h := newHarness(t, options{})
	_, err := bff.New(bff.Config{Engine: aggregate.NewEngine(map[string]aggregate.Doer{"users": h.clients["users"]}), Cache: h.cache, RouteSets: sets})
	if err == nil || !strings.Contains(err.Error(), "verifies no tokens") {
		t.Errorf("%v", err)
	}
}
