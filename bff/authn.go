package bff

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/internal/auth"
	"github.com/go-chi/httprate"
)

// ClientAuth is one client's token verification.
type ClientAuth struct {
	Verifier *auth.Verifier
	// Default is the mode of views that set none: "none", "optional" or
	// "required". Empty means "optional".
	Default string
}

type subjectKey struct{}

// subjectOf is the verified caller, for rate limits; "" when anonymous.
func subjectOf(ctx context.Context) string {
	s, _ := ctx.Value(subjectKey{}).(string)
	return s
}

// authn verifies the caller's token as one view's policy says. It wraps
// that view's handler alone, so no request meets another view's policy
// (a lookup by route pattern once missed routes chi trims, such as
// "/staff/", and let them through on the client's default).
// Why a token was refused is logged, never told to the caller.
//
// checks, if set, is the budget of signature checks per address: a token
// not verified before costs one (an ES256 check costs more than a cache
// miss's own work), and past the budget it is 429 unchecked. Without it, a
// flood of made-up tokens would cost CPU the rate limit never counts, since
// it runs after authn to key callers by subject.
//
// pol is the policy as applied (see appliedAuth).
func (f *Front) authn(ca *ClientAuth, pol aggregate.AuthPolicy, checks *checkBudget) func(http.Handler) http.Handler {
	mode := pol.Mode
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if mode == "none" {
				next.ServeHTTP(w, r)
				return
			}
			// A token sent must verify: one that is not read as a token,
			// or a second one beside it, would still reach the upstreams
			// that receive Authorization, unverified.
			values := r.Header["Authorization"]
			if len(values) == 1 {
				// An empty header, or "Bearer " with nothing after it (a
				// signed-out page's client), is no token: dropped, so no
				// upstream reads anything into it.
				if v := strings.TrimSpace(values[0]); v == "" || strings.EqualFold(v, "Bearer") {
					delete(r.Header, "Authorization")
					values = nil
				}
			}
			token, ok := "", false
			if len(values) == 1 {
				token, ok = bearer(values[0])
			}
			if len(values) > 0 && !ok {
				challenge(w, r, `Bearer realm="bff", error="invalid_request"`, http.StatusBadRequest,
					"send one Authorization header, with a bearer token: Authorization: Bearer <token>")
				return
			}
			if !ok {
				if mode == "required" {
					challenge(w, r, `Bearer realm="bff"`, http.StatusUnauthorized, "this view needs a bearer token")
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			claims, known := ca.Verifier.Remembered(token)
			var err error
			if !known {
				if checks != nil {
					if key, _ := clientKey(r); checks.limiter.OnLimit(w, r, key) {
						f.log.Info("token not checked: the address is over its budget of signature checks", "request_id", requestIDOf(r))
						w.Header()["Retry-After"] = checks.retryAfter
						writeProblem(w, r, newProblem(http.StatusTooManyRequests, ProblemTooManyRequests,
							"too many new tokens from this address; try again later"))
						return
					}
				}
				claims, err = ca.Verifier.Verify(r.Context(), token)
			}
			if err != nil {
				f.log.Info("token refused", "request_id", requestIDOf(r), "reason", err.Error())
				challenge(w, r, `Bearer realm="bff", error="invalid_token"`, http.StatusUnauthorized, "the bearer token is not valid")
				return
			}
			if !claims.HasScopes(pol.Scopes) {
				challenge(w, r, `Bearer realm="bff", error="insufficient_scope", scope="`+strings.Join(pol.Scopes, " ")+`"`,
					http.StatusForbidden, "the token lacks a scope this view needs")
				return
			}
			if info := infoFrom(w); info != nil {
				info.claims = claims
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), subjectKey{}, claims.Subject)))
		})
	}
}

// checkBudget bounds the signature checks per address (see authn): as many
// per window as the client's rate limit allows one caller requests, and at
// least minChecks, since one address may be many callers (a NAT, an office)
// each with a new token. Counted per replica, across reloads.
type checkBudget struct {
	limiter    *httprate.RateLimiter
	retryAfter []string
}

const minChecks = 100

func newCheckBudget(client string, l Limit, counts *counters) *checkBudget {
	rl := counts.get("checks", client, l, func() *httprate.RateLimiter {
		return httprate.NewRateLimiter(max(l.Requests, minChecks), l.Window, httprate.WithKeyFuncs(clientKey),
			httprate.WithResponseHeaders(httprate.ResponseHeaders{}))
	})
	return &checkBudget{limiter: rl, retryAfter: []string{strconv.Itoa(int(max(l.Window/time.Second, 1)))}}
}

func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func challenge(w http.ResponseWriter, r *http.Request, value string, status int, detail string) {
	w.Header()["Www-Authenticate"] = []string{value}
	typ := ProblemUnauthorized
	switch status {
	case http.StatusForbidden:
		typ = ProblemForbidden
	case http.StatusBadRequest:
		typ = ProblemBadRequest
	}
	writeProblem(w, r, newProblem(status, typ, detail))
}

// claimValue is a claim as a template value: strings as they are, numbers
// and booleans as JSON writes them; "" when absent or structured.
func claimValue(c *auth.Claims, name string) string {
	switch v := c.All[name].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// appliedAuth is a view's auth policy as its client applies it: none when
// the client verifies no tokens, required when the view names scopes (they
// are checked on a token), else the view's mode or the client's default
// (optional when unset).
func appliedAuth(rs RouteSet, v aggregate.View) aggregate.AuthPolicy {
	mode := v.Auth.Mode
	switch {
	case rs.Auth == nil:
		mode = "none"
	case len(v.Auth.Scopes) > 0:
		mode = "required"
	case mode == "":
		mode = cmp.Or(rs.Auth.Default, "optional")
	}
	return aggregate.AuthPolicy{Mode: mode, Scopes: v.Auth.Scopes}
}

// checkAuthPolicies refuses views that need tokens in a client that
// verifies none.
func checkAuthPolicies(rs RouteSet) error {
	for _, v := range rs.Views {
		if rs.Auth == nil && (v.Auth.Mode == "optional" || v.Auth.Mode == "required" || len(v.Auth.Scopes) > 0) {
			return fmt.Errorf("%sview %q: auth %q, but client %s verifies no tokens (configure clients.%s.auth)",
				source(v), v.Name, v.Auth.Mode, rs.Client, rs.Client)
		}
	}
	return nil
}
