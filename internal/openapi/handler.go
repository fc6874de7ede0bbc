package openapi

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
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
		serve(w, r, client, routes(), opts)
	})
}

// Mount serves each client's document at /{client}/openapi.json, for every
// client that routes has views of now, and passes any other request to
// next (the front). A view whose own route is that path keeps it.
func Mount(next http.Handler, routes func() []bff.Route, opts Options) http.Handler {
	return MountFunc(next, routes, func() Options { return opts })
}

// MountFunc is Mount with options read on every request, for options that
// change with the views (examples from their fixtures).
func MountFunc(next http.Handler, routes func() []bff.Route, opts func() Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefix, ok := strings.CutSuffix(r.URL.Path, "/openapi.json")
		if ok && len(prefix) > 1 && strings.LastIndexByte(prefix, '/') == 0 {
			rs := routes()
			client := prefix[1:]
			if slices.ContainsFunc(rs, func(x bff.Route) bool { return x.Client == client }) &&
				!slices.ContainsFunc(rs, func(x bff.Route) bool { return x.Path == r.URL.Path }) {
				serve(w, r, client, rs, opts())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func serve(w http.ResponseWriter, r *http.Request, client string, routes []bff.Route, opts Options) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		bff.WriteProblem(w, r, http.StatusMethodNotAllowed, bff.ProblemMethodNotAllowed, "this route does not accept "+r.Method)
		return
	}
	body, err := Document(client, routes, opts)
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
	if inm := r.Header.Get("If-None-Match"); inm != "" && bff.ETagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
