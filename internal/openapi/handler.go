package openapi

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/bffproxy/bff/bff"
)

// Handler serves client's document at GET and HEAD. It asks routes for the
// views on every request, so the document follows views reloaded at run
// time; its ETag is the document's hash, so a client revalidating gets 304
// until the views change.
func Handler(client string, routes func() []bff.Route, opts Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			bff.WriteProblem(w, r, http.StatusMethodNotAllowed, bff.ProblemMethodNotAllowed, "this route does not accept "+r.Method)
			return
		}
		body, err := Document(client, routes(), opts)
		if err != nil {
			bff.WriteProblem(w, r, http.StatusInternalServerError, bff.ProblemInternal, "the OpenAPI document could not be generated")
			return
		}
		sum := sha256.Sum256(body)
		etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		h := w.Header()
		h.Set("ETag", etag)
		// Revalidate every time: a reload changes the document at any moment.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if inm := r.Header.Get("If-None-Match"); inm != "" && matches(inm, etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

// matches is If-None-Match's weak comparison.
func matches(header, etag string) bool {
	for header != "" {
		var tag string
		tag, header, _ = strings.Cut(header, ",")
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}
