package bff

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rs/cors"
)

// CORS is one client's cross-origin policy: the web SPA is served from
// another origin than the BFF; a mobile app needs none.
type CORS struct {
	// AllowedOrigins are exact origins ("https://app.example.com") or
	// patterns with one '*' ("https://*.example.com"). An origin not listed
	// gets no CORS headers at all: it is never reflected.
	AllowedOrigins []string
	// AllowedMethods default to GET and HEAD.
	AllowedMethods []string
	// AllowedHeaders are the request headers a browser may send.
	AllowedHeaders []string
	// ExposedHeaders are the response headers scripts may read. Empty
	// means Bff-Partial, ETag, Server-Timing, X-Cache, X-Request-Id, Age
	// and Retry-After.
	ExposedHeaders []string
	// AllowCredentials lets cookies and Authorization go along; it cannot
	// be combined with the origin "*".
	AllowCredentials bool
	// MaxAge is how long a browser may reuse a preflight answer. Zero means
	// 10 minutes.
	MaxAge time.Duration
}

var defaultExposed = []string{PartialHeader, "ETag", "Server-Timing", "X-Cache", "X-Request-Id", "Age", "Retry-After"}

// handler validates the policy and builds its middleware.
func (c *CORS) handler() (func(http.Handler) http.Handler, error) {
	if len(c.AllowedOrigins) == 0 {
		return nil, errors.New("cors: allowed_origins is empty; list the origins the client is served from")
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" && c.AllowCredentials {
			return nil, errors.New(`cors: the origin "*" cannot be combined with allow_credentials: list the origins instead`)
		}
		if o != "*" && !validOrigin(o) {
			return nil, fmt.Errorf("cors: origin %q: want scheme://host[:port], or scheme://*.domain.tld for its subdomains", o)
		}
	}
	methods := c.AllowedMethods
	if len(methods) == 0 {
		methods = []string{http.MethodGet, http.MethodHead}
	}
	exposed := c.ExposedHeaders
	if len(exposed) == 0 {
		exposed = defaultExposed
	}
	maxAge := c.MaxAge
	if maxAge == 0 {
		maxAge = 10 * time.Minute
	}
	h := cors.New(cors.Options{
		AllowedOrigins:       c.AllowedOrigins,
		AllowedMethods:       methods,
		AllowedHeaders:       c.AllowedHeaders,
		ExposedHeaders:       exposed,
		AllowCredentials:     c.AllowCredentials,
		MaxAge:               int(maxAge / time.Second),
		OptionsSuccessStatus: http.StatusNoContent,
	})
	return h.Handler, nil
}

// validOrigin takes an exact origin, or a pattern whose '*' stands for
// whole leftmost labels under a domain of two labels or more
// ("https://*.example.com"). Anything looser ("https://*",
// "https://*example.com", "https://*.com") lets in sites nobody meant to
// list, with credentials if the policy allows them.
func validOrigin(o string) bool {
	scheme, host, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || host == "" || strings.ContainsAny(scheme, "*/") || strings.ContainsAny(host, "/?#@ ") {
		return false
	}
	if !strings.Contains(host, "*") {
		return true
	}
	domain, ok := strings.CutPrefix(host, "*.")
	if !ok || strings.Contains(domain, "*") {
		return false
	}
	name, _, _ := strings.Cut(domain, ":")
	labels := strings.Split(name, ".")
	return len(labels) >= 2 && !slices.Contains(labels, "")
}

// preflightOnly answers an OPTIONS request that is not a CORS preflight
// (those never get past the CORS middleware).
func preflightOnly(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		w.WriteHeader(http.StatusNoContent)
	})
}
