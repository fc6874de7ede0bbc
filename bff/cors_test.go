package bff_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

func withCORS(t *testing.T, c *bff.CORS) *harness {
	sets := builtinRoutes(t)
	for i := range sets {
		if sets[i].Client == "web" {
			sets[i].CORS = c
		}
	}
	return newHarness(t, options{routeSets: sets})
}

func preflight(h *harness, path, origin string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodOptions, path, nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	w := httptest.NewRecorder()
	h.front.ServeHTTP(w, req)
	return w
}

// The web client's CORS policy: listed origins (exact or by pattern) get
// their own origin back, with credentials; anyone else gets nothing; a
// preflight never reaches a view or an upstream; mobile has no policy.
func TestCORS(t *testing.T) {
	h := withCORS(t, &bff.CORS{
		AllowedOrigins:   []string{"https://app.example.com", "https://*.preview.example.com"},
		AllowedHeaders:   []string{"Authorization", "X-App-Version"},
		AllowCredentials: true,
		MaxAge:           time.Hour,
	})
	for _, origin := range []string{"https://app.example.com", "https://pr-12.preview.example.com"} {
		w := preflight(h, "/web/home/7", origin)
		if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != origin ||
			w.Header().Get("Access-Control-Allow-Credentials") != "true" || w.Header().Get("Access-Control-Max-Age") != "3600" ||
			!strings.Contains(w.Header().Get("Access-Control-Allow-Methods"), "GET") {
			t.Errorf("preflight from %s: %d %v", origin, w.Code, w.Header())
		}
	}
	if n := h.totalCalls(); n != 0 {
		t.Errorf("preflights made %d upstream calls", n)
	}
	if w := preflight(h, "/web/home/7", "https://app.example.com"); w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("a preflight answer lacks nosniff")
	}
	for _, origin := range []string{"https://evil.example.com", "https://app.example.com.evil.net", "null", "http://app.example.com"} {
		w := preflight(h, "/web/home/7", origin)
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("preflight from unlisted %s: Allow-Origin %q", origin, got)
		}
	}

	// A simple GET, on a miss and on a hit: the origin, exposed headers, and
	// Vary: Origin beside the view's own Vary.
	for _, want := range []string{"MISS", "HIT"} {
		w := h.get(t, "/web/home/7", "Origin", "https://app.example.com")
		h.cache.Wait()
		if w.Header().Get("X-Cache") != want || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "Bff-Partial") {
			t.Errorf("GET with origin (%s): %v", want, w.Header())
		}
		vary := strings.Join(w.Header().Values("Vary"), ", ")
		if !strings.Contains(vary, "Origin") || !strings.Contains(vary, "Accept-Encoding") {
			t.Errorf("Vary %q; want Origin and the view's own", vary)
		}
	}
	if w := h.get(t, "/web/home/7", "Origin", "https://evil.example.com"); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Error("an unlisted origin was reflected on a GET")
	}
	if w := preflight(h, "/mobile/home/7", "https://app.example.com"); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("mobile has no CORS policy, yet answered %v", w.Header())
	}
}

func TestCORSPolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		c    bff.CORS
		want string
	}{
		{bff.CORS{AllowedOrigins: []string{"*"}, AllowCredentials: true}, `the origin "*" cannot be combined with allow_credentials`},
		{bff.CORS{}, "allowed_origins is empty"},
		{bff.CORS{AllowedOrigins: []string{"app.example.com"}}, `origin "app.example.com": want scheme://host[:port]`},
		// Patterns that let in sites nobody meant to list.
		{bff.CORS{AllowedOrigins: []string{"https://*"}, AllowCredentials: true}, `origin "https://*": want`},
		{bff.CORS{AllowedOrigins: []string{"http*://*"}}, `origin "http*://*": want`},
		{bff.CORS{AllowedOrigins: []string{"https://*example.com"}}, `origin "https://*example.com": want`},
		{bff.CORS{AllowedOrigins: []string{"https://*.com"}}, `origin "https://*.com": want`},
		{bff.CORS{AllowedOrigins: []string{"https://*.*.example.com"}}, `origin "https://*.*.example.com": want`},
		{bff.CORS{AllowedOrigins: []string{"https://app.*.example.com"}}, `origin "https://app.*.example.com": want`},
		{bff.CORS{AllowedOrigins: []string{"https://*.example.com/"}}, `origin "https://*.example.com/": want`},
	} {
		sets := builtinRoutes(t)
		sets[0].CORS = &tc.c
		h := newHarness(t, options{})
		doers := map[string]aggregate.Doer{}
		for name, c := range h.clients {
			doers[name] = c
		}
		_, err := bff.New(bff.Config{Engine: aggregate.NewEngine(doers), Cache: h.cache, RouteSets: sets})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want %q", tc.c, err, tc.want)
		}
	}
}

// Upstream headers never pass through: no Set-Cookie, no Server, nothing
// but what the BFF writes itself; every response says nosniff.
func TestNoUpstreamHeadersLeak(t *testing.T) {
	users := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Set-Cookie", "session=upstream-secret")
		w.Header().Set("Server", "users-service/1.2")
		w.Header().Set("X-Internal-Trace", "abc")
		_, _ = w.Write([]byte(`{"version":1}`))
	})
	h := newHarness(t, options{routeSets: profileView(aggregate.CachePolicy{TTL: time.Minute}), handlers: map[string]http.Handler{"users": users}})
	for _, path := range []string{"/web/profile/1", "/web/profile/1", "/web/profile/x", "/nowhere", "/healthz"} {
		w := h.get(t, path)
		for _, k := range []string{"Set-Cookie", "Server", "X-Internal-Trace"} {
			if v := w.Header().Get(k); v != "" {
				t.Errorf("%s: %s: %q leaked from the upstream", path, k, v)
			}
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s (%d): no nosniff", path, w.Code)
		}
	}
}
