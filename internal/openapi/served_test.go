package openapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/aggregate/viewfile"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/auth"
	"github.com/bffproxy/bff/internal/openapi"
	"github.com/bffproxy/bff/upstream"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// servedFront serves the web views of one YAML file over upstreams served
// by handlers (loopback httptest servers), cache off, and returns it with
// a validator for the web document generated from the same routes: the
// tests here check what the views really answer against the document a
// generated client would trust.
func servedFront(t *testing.T, yaml string, handlers map[string]http.Handler, ca *bff.ClientAuth) (*bff.Front, validator.Validator, []byte) {
	t.Helper()
	return servedFrontWith(t, yaml, handlers, ca, openapi.Options{})
}

func servedFrontWith(t *testing.T, yaml string, handlers map[string]http.Handler, ca *bff.ClientAuth, opts openapi.Options) (*bff.Front, validator.Validator, []byte) {
	t.Helper()
	front, doc := servedFrontSet(t, yaml, handlers, func(rs *bff.RouteSet) { rs.Auth = ca }, opts)
	_, v := newValidator(t, doc)
	return front, v, doc
}

// servedFrontSet is servedFrontWith with the client's route set as edge
// leaves it (auth, rate limits), and no validator: libopenapi cannot read
// every valid document (an $anchor reference).
func servedFrontSet(t *testing.T, yaml string, handlers map[string]http.Handler, edge func(*bff.RouteSet), opts openapi.Options) (*bff.Front, []byte) {
	t.Helper()
	views, err := viewfile.Parse("served.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	doers := map[string]aggregate.Doer{}
	for name, h := range handlers {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		c, err := upstream.New(upstream.Config{Name: name, BaseURL: srv.URL,
			Retry: upstream.RetryConfig{WaitMin: time.Millisecond, WaitMax: time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		doers[name] = c
	}
	rc, err := cache.New(cache.Config{MaxBytes: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	rs := bff.RouteSet{Client: "web", Views: views}
	edge(&rs)
	front, err := bff.New(bff.Config{Engine: aggregate.NewEngine(doers), Cache: rc, RouteSets: []bff.RouteSet{rs}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi.Document("web", front.Routes(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return front, doc
}

// json200 answers every request with body.
func json200(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	})
}

func status(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
}

// validateRequest serves req through front and validates the response
// against the document behind v.
func validateRequest(t *testing.T, v validator.Validator, front http.Handler, req *http.Request, wantStatus int) {
	t.Helper()
	w := httptest.NewRecorder()
	front.ServeHTTP(w, req)
	if w.Code != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", req.Method, req.URL, w.Code, wantStatus, w.Body)
	}
	resp := w.Result()
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if ok, errs := v.ValidateHttpResponse(req, resp); !ok {
		for _, e := range errs {
			t.Errorf("%s %s: the response does not match the document: %s: %s %v", req.Method, req.URL, e.Message, e.Reason, schemaErrors(e.SchemaValidationErrors))
		}
		t.Logf("body: %s", body)
	}
}

// A concat with fields writes an array of shaped elements; the document
// must not describe it as an object.
func TestServedConcatWithFieldsIsAnArray(t *testing.T) {
	front, v, _ := servedFront(t, `
views:
  - name: web.feed
    route: /feed
    calls:
      news: {upstream: news, path: /news}
      promos: {upstream: promos, path: /promos}
    shape:
      items:
        concat: [news.items, promos.items]
        fields: [id, title]
`, map[string]http.Handler{
		"news":   json200(`{"items":[{"id":"n1","title":"News"}]}`),
		"promos": json200(`{"items":[{"id":"p1","title":"Promo"}]}`),
	}, nil)
	validateRequest(t, v, front, httptest.NewRequest(http.MethodGet, "/web/feed", nil), http.StatusOK)
}

// first with fields over optional calls that both failed writes null
// (the README: a missing value is null); the document must allow it.
func TestServedFirstOverFailedOptionalCallsIsNull(t *testing.T) {
	front, v, _ := servedFront(t, `
views:
  - name: web.banner
    route: /banner
    calls:
      cms: {upstream: cms, path: /banner, optional: true}
      fallback: {upstream: fallback, path: /banner, optional: true}
    shape:
      banner:
        first: [cms.banner, fallback.banner]
        fields: [title]
`, map[string]http.Handler{
		"cms":      status(http.StatusInternalServerError),
		"fallback": status(http.StatusInternalServerError),
	}, nil)
	validateRequest(t, v, front, httptest.NewRequest(http.MethodGet, "/web/banner", nil), http.StatusOK)
}

// A required call whose placeholder finds an empty list is skipped, not
// failed (README "Placeholders"): its object is null in a 200, and the
// document must allow that.
func TestServedSkippedRequiredCallIsNull(t *testing.T) {
	front, v, _ := servedFront(t, `
views:
  - name: web.basket
    route: /basket
    calls:
      basket: {upstream: baskets, path: /basket}
      prices: {upstream: catalog, path: /prices, query: 'skus={basket.items.#.sku}'}
    shape:
      prices:
        from: prices
        fields: [currency, total]
`, map[string]http.Handler{
		"baskets": json200(`{"items":[]}`),
		"catalog": json200(`{"currency":"EUR","total":0}`),
	}, nil)
	validateRequest(t, v, front, httptest.NewRequest(http.MethodGet, "/web/basket", nil), http.StatusOK)
}

// A view with query parameters but no path parameters answers 400
// invalid-parameter to a bad query; the document must list that 400.
func TestServedQueryOnlyViewDocumentsItsBadRequest(t *testing.T) {
	front, v, _ := servedFront(t, `
views:
  - name: web.search
    route: /search
    query:
      limit: {type: int, min: 1, max: 50, default: 10}
    calls:
      s: {upstream: search, path: /search, query: 'limit={limit}'}
    shape:
      hits: s.hits
`, map[string]http.Handler{"search": json200(`{"hits":1}`)}, nil)
	validateRequest(t, v, front, httptest.NewRequest(http.MethodGet, "/web/search?limit=500", nil), http.StatusBadRequest)
}

// A mutation's 200 has no X-Cache (it is never cached), and the document
// does not require it there. It documents the Idempotency-Key it takes.
func TestServedMutationResponseHeaders(t *testing.T) {
	front, v, doc := servedFront(t, `
views:
  - name: web.cart.add
    route: /cart/items
    method: POST
    body:
      schema:
        type: object
        required: [sku]
        properties: {sku: {type: string}}
    calls:
      add: {upstream: carts, method: POST, path: /cart/items, body: request}
    shape:
      ok: add.ok
`, map[string]http.Handler{"carts": json200(`{"ok":true}`)}, nil)
	req := httptest.NewRequest(http.MethodPost, "/web/cart/items", strings.NewReader(`{"sku":"a"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k-1")
	validateRequest(t, v, front, req, http.StatusOK)
	var d struct {
		Paths map[string]map[string]struct {
			Parameters []map[string]string `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range d.Paths["/web/cart/items"]["post"].Parameters {
		found = found || p["$ref"] == "#/components/parameters/Idempotency-Key"
	}
	if !found {
		t.Errorf("the mutation's parameters do not list Idempotency-Key: %v", d.Paths["/web/cart/items"]["post"].Parameters)
	}
}

// A mutation refuses a body the schema forbids with 400 invalid-body, a
// body too large with 413 and another media type with 415: the document
// must list them.
func TestServedMutationProblemsDocumented(t *testing.T) {
	front, v, _ := servedFront(t, `
views:
  - name: web.cart.add
    route: /cart/items
    method: POST
    body:
      max_bytes: 64
      schema:
        type: object
        required: [sku]
        properties: {sku: {type: string}}
    calls:
      add: {upstream: carts, method: POST, path: /cart/items, body: request}
    shape:
      ok: add.ok
`, map[string]http.Handler{"carts": json200(`{"ok":true}`)}, nil)
	for _, c := range []struct {
		name, body, ctype string
		want              int
	}{
		{"schema", `{"sku":1}`, "application/json", http.StatusBadRequest},
		{"too large", `{"sku":"` + strings.Repeat("a", 100) + `"}`, "application/json", http.StatusRequestEntityTooLarge},
		{"media type", `{"sku":"a"}`, "text/plain", http.StatusUnsupportedMediaType},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/web/cart/items", strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.ctype)
			validateRequest(t, v, front, req, c.want)
		})
	}
}

// A view that needs a token answers 401 without one; the document must
// list that response.
func TestServedAuthViewDocumentsUnauthorized(t *testing.T) {
	verifier, err := auth.New(auth.Config{Issuer: "iss", Audience: "aud",
		Keys: []auth.Key{{ID: "k", Alg: "HS256", Secret: []byte("0123456789abcdef0123456789abcdef")}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(verifier.Close)
	front, v, _ := servedFront(t, `
views:
  - name: web.me
    route: /me
    auth: required
    cache: {ttl: 1m, scope: user}
    calls:
      user: {upstream: users, path: '/users/{auth.sub}'}
    shape:
      name: user.name
`, map[string]http.Handler{"users": json200(`{"name":"Ada"}`)}, &bff.ClientAuth{Verifier: verifier, Default: "optional"})
	validateRequest(t, v, front, httptest.NewRequest(http.MethodGet, "/web/me", nil), http.StatusUnauthorized)
}

// A mutation's body schema may $ref inside itself (README: "Schemas may
// only $ref inside themselves"), and the view serves such bodies; copied
// into the document as is, its "#/$defs/item" points at the document's
// root, which has no $defs: the whole document (every view of the client)
// no longer loads in libopenapi, and generators refuse it likewise.
func TestServedBodySchemaWithInternalRef(t *testing.T) {
	views, err := viewfile.Parse("review3.yaml", []byte(`
views:
  - name: web.cart.add
    route: /cart/items
    method: POST
    body:
      schema:
        type: object
        required: [item]
        properties:
          item: {$ref: '#/$defs/item'}
        $defs:
          item:
            type: object
            required: [sku]
            properties: {sku: {type: string}}
    calls:
      add: {upstream: carts, method: POST, path: /cart/items, body: request}
    shape:
      ok: add.ok
`))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(json200(`{"ok":true}`))
	t.Cleanup(srv.Close)
	c, err := upstream.New(upstream.Config{Name: "carts", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	rc, err := cache.New(cache.Config{MaxBytes: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	front, err := bff.New(bff.Config{Engine: aggregate.NewEngine(map[string]aggregate.Doer{"carts": c}), Cache: rc,
		RouteSets: []bff.RouteSet{{Client: "web", Views: views}}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/web/cart/items", strings.NewReader(`{"item":{"sku":"a"}}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	front.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("the view refuses a body its schema accepts: %d %s", w.Code, w.Body)
	}
	doc, err := openapi.Document("web", front.Routes(), openapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.BuildV3Model(); err != nil {
		t.Fatalf("the web document does not load: %v", err)
	}
}

// An optional fan-out leaves null in place of an element whose request
// failed (README "Fan-out over a list"). The document allows that null when
// the list has fields, but not when the answers are copied whole
// ({list: each}): with the fixtures' complete answers as examples, the
// items are "object" and the partial response breaks the schema.
func TestServedOptionalFanOutCopiedWholeAllowsNullElements(t *testing.T) {
	catalog := http.NewServeMux()
	catalog.Handle("/products/a", json200(`{"sku":"a"}`))
	catalog.Handle("/products/b", status(http.StatusInternalServerError))
	front, v, _ := servedFrontWith(t, `
views:
  - name: web.order
    route: /order
    calls:
      order: {upstream: orders, path: /order}
      each: {upstream: catalog, path: '/products/{each}', for_each: order.skus, optional: true}
    shape:
      products: {list: each}
`, map[string]http.Handler{
		"orders":  json200(`{"skus":["a","b"]}`),
		"catalog": catalog,
	}, nil, openapi.Options{Examples: map[string][]json.RawMessage{
		"web.order": {json.RawMessage(`{"products":[{"sku":"a"},{"sku":"b"}]}`)},
	}})
	validateRequest(t, v, front, httptest.NewRequest(http.MethodGet, "/web/order", nil), http.StatusOK)
}

// A client with a rate limit answers 429 past it, and its views document
// that answer.
func TestServedRateLimitedViewDocumentsTooManyRequests(t *testing.T) {
	front, doc := servedFrontSet(t, `
views:
  - name: web.search
    route: /search
    calls:
      s: {upstream: search, path: /search}
    shape:
      hits: s.hits
`, map[string]http.Handler{"search": json200(`{"hits":1}`)}, func(rs *bff.RouteSet) {
		rs.RateLimit = &bff.RateLimit{Limit: bff.Limit{Requests: 1, Window: time.Hour}}
	}, openapi.Options{})
	_, v := newValidator(t, doc)
	validateRequest(t, v, front, httptest.NewRequest(http.MethodGet, "/web/search", nil), http.StatusOK)
	validateRequest(t, v, front, httptest.NewRequest(http.MethodGet, "/web/search", nil), http.StatusTooManyRequests)
}

// A route may carry chi's own pattern (/item/{id:[0-9]+}): a value it
// refuses reaches no route, and the document says so (404), beside the 400
// for a value the view's parameter pattern refuses.
func TestRoutePatternStatusMatchesDocument(t *testing.T) {
	front, doc := servedFrontSet(t, `
views:
  - name: web.item
    route: '/item/{id:[0-9]+}'
    params: {id: '[0-9]{1,9}'}
    calls:
      item: {upstream: items, path: '/items/{id}'}
    shape:
      title: item.title
`, map[string]http.Handler{"items": json200(`{"title":"x"}`)}, func(*bff.RouteSet) {}, openapi.Options{})

	var d map[string]any
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	var desc string
	var responses map[string]any
	for path, item := range d["paths"].(map[string]any) {
		if !strings.HasPrefix(path, "/web/item/") {
			continue
		}
		responses = item.(map[string]any)["get"].(map[string]any)["responses"].(map[string]any)
		for _, p := range item.(map[string]any)["get"].(map[string]any)["parameters"].([]any) {
			if m, ok := p.(map[string]any); ok && m["name"] == "id" {
				desc, _ = m["description"].(string)
			}
		}
	}
	if desc == "" {
		t.Fatalf("no id parameter in the document:\n%s", doc)
	}

	w := httptest.NewRecorder()
	front.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/web/item/abc", nil))
	if want := fmt.Sprintf("the answer is %d", w.Code); !strings.Contains(desc, want) {
		t.Errorf("GET /web/item/abc answered %d (%s), but the document says of id: %q", w.Code, strings.TrimSpace(w.Body.String()), desc)
	}
	if _, ok := responses[strconv.Itoa(w.Code)]; !ok {
		t.Errorf("GET /web/item/abc answered %d, which the operation's responses do not list", w.Code)
	}
}
