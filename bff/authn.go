package bff

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/internal/auth"
	"github.com/go-chi/chi/v5"
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

// authn verifies the caller's token as the matched view's policy says.
// Why a token was refused is logged, never told to the caller.
func (f *Front) authn(ca *ClientAuth, policies map[string]aggregate.AuthPolicy) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pol := policies[chi.RouteContext(r.Context()).RoutePattern()]
			mode := pol.Mode
			if mode == "" {
				mode = ca.Default
			}
			if mode == "none" {
				next.ServeHTTP(w, r)
				return
			}
			token, ok := bearer(r.Header.Get("Authorization"))
			if !ok {
				if mode == "required" {
					challenge(w, r, `Bearer realm="bff"`, http.StatusUnauthorized, "this view needs a bearer token")
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			claims, err := ca.Verifier.Verify(r.Context(), token)
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
	if status == http.StatusForbidden {
		typ = ProblemForbidden
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

// authPolicies maps each view's route pattern to its policy, and refuses
// views that need tokens in a client that verifies none.
func authPolicies(rs RouteSet) (map[string]aggregate.AuthPolicy, error) {
	out := map[string]aggregate.AuthPolicy{}
	for _, v := range rs.Views {
		if rs.Auth == nil && (v.Auth.Mode == "optional" || v.Auth.Mode == "required" || len(v.Auth.Scopes) > 0) {
			return nil, fmt.Errorf("%sview %q: auth %q, but client %s verifies no tokens (configure clients.%s.auth)",
				source(v), v.Name, v.Auth.Mode, rs.Client, rs.Client)
		}
		out["/"+rs.Client+v.Route] = v.Auth
	}
	return out, nil
}
