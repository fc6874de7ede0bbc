package openapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// first with fields copies a source that is not an object as it is
// (aggregate/shape.go appendCombined), so the document does not say
// "object or null" there: the fields describe it when it is an object.
func TestCombineFirstWithFieldsOverAString(t *testing.T) {
	front, v, _ := servedFront(t, `
views:
  - name: web.banner
    route: /banner
    calls:
      cms: {upstream: cms, path: /banner}
      fallback: {upstream: fallback, path: /banner}
    shape:
      banner:
        first: [cms.banner, fallback.banner]
        fields: [title]
`, map[string]http.Handler{
		"cms":      json200(`{"banner":"Sale today"}`),
		"fallback": json200(`{"banner":{"title":"Hello"}}`),
	}, nil)
	validateRequest(t, v, front, httptest.NewRequest(http.MethodGet, "/web/banner", nil), http.StatusOK)
}

// concat with a default writes the default when no source is a list, and
// the document allows the default's type.
func TestCombineConcatDefaultNull(t *testing.T) {
	front, v, _ := servedFront(t, `
views:
  - name: web.feed
    route: /feed
    calls:
      news: {upstream: news, path: /news, optional: true}
      promos: {upstream: promos, path: /promos, optional: true}
    shape:
      items:
        concat: [news.items, promos.items]
        default: null
`, map[string]http.Handler{
		"news":   status(http.StatusInternalServerError),
		"promos": status(http.StatusInternalServerError),
	}, nil)
	validateRequest(t, v, front, httptest.NewRequest(http.MethodGet, "/web/feed", nil), http.StatusOK)
}
