package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/openapi"
)

// The handler generates the document on each request; this is its cost.
func BenchmarkHandler(b *testing.B) {
	routes := builtinRoutes(b)
	h := openapi.Handler("web", func() []bff.Route { return routes }, openapi.Options{})
	req := httptest.NewRequest(http.MethodGet, "/web/openapi.json", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}
