package openapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/openapi"
)

// document generates and decodes a document.
func document(t *testing.T, client string, routes []bff.Route, opts openapi.Options) map[string]any {
	t.Helper()
	raw, err := openapi.Document(client, routes, opts)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return doc
}

// at walks a decoded document by keys (and indexes for arrays).
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %q", path, k)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("%v: no %q (have %v)", path[:i+1], k, keys(m))
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("%v: no element %d", path[:i+1], k)
			}
			v = a[k]
		}
	}
	return v
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestBuiltinDocuments(t *testing.T) {
	routes := builtinRoutes(t)
	web := document(t, "web", routes, openapi.Options{})
	mobile := document(t, "mobile", routes, openapi.Options{})

	if got := at(t, web, "openapi"); got != "3.1.0" {
		t.Errorf("openapi = %v", got)
	}
	if got := keys(at(t, web, "paths").(map[string]any)); !slices.Equal(got, []string{"/web/home/{id}", "/web/orders/{order_id}"}) {
		t.Errorf("web paths = %v", got)
	}
	if got := keys(at(t, mobile, "paths").(map[string]any)); !slices.Equal(got, []string{"/mobile/home/{id}", "/mobile/orders/{order_id}"}) {
		t.Errorf("mobile paths = %v", got)
	}

	home := at(t, web, "paths", "/web/home/{id}", "get")
	if got := at(t, home, "operationId"); got != "webHome" {
		t.Errorf("operationId = %v", got)
	}
	id := at(t, home, "parameters", 0)
	for k, want := range map[string]any{"name": "id", "in": "path", "required": true} {
		if got := at(t, id, k); got != want {
			t.Errorf("id parameter %s = %v, want %v", k, got, want)
		}
	}
	if got := at(t, id, "schema", "pattern"); got != "^(?:[0-9]{1,18})$" {
		t.Errorf("id pattern = %v", got)
	}
	if lo, hi := at(t, id, "schema", "minLength"), at(t, id, "schema", "maxLength"); lo != 1.0 || hi != 18.0 {
		t.Errorf("id length %v..%v, want 1..18", lo, hi)
	}
	orderID := at(t, web, "paths", "/web/orders/{order_id}", "get", "parameters", 0, "schema", "pattern")
	if orderID != "^(?:ord-[0-9]{1,18}-[0-9]{1,4})$" {
		t.Errorf("order_id pattern = %v", orderID)
	}
	desc := at(t, home, "description").(string)
	for _, want := range []string{"web.home", "bff/web/views.yaml:", "users `/users/{id}` (required)", "recs `/recommendations?user_id={id}` (optional)", "public, 30s"} {
		if !strings.Contains(desc, want) {
			t.Errorf("description lacks %q:\n%s", want, desc)
		}
	}

	responses := at(t, home, "responses").(map[string]any)
	for _, code := range []string{"200", "304", "400", "404", "414", "500", "502", "503", "504"} {
		if _, ok := responses[code]; !ok {
			t.Errorf("no %s response (have %v)", code, keys(responses))
		}
	}
	for code, name := range map[string]string{"502": "UpstreamError", "503": "Unavailable", "504": "Timeout"} {
		if got := at(t, responses, code, "$ref"); got != "#/components/responses/"+name {
			t.Errorf("%s = %v", code, got)
		}
		if got := at(t, web, "components", "responses", name, "content", "application/problem+json", "schema", "$ref"); got != "#/components/schemas/Problem" {
			t.Errorf("%s schema = %v", name, got)
		}
	}
	if at(t, web, "components", "responses", "Unavailable", "headers", "Retry-After", "required") != true {
		t.Error("503 without Retry-After")
	}
	partial := at(t, responses, "200", "headers", "Bff-Partial")
	if d := at(t, partial, "description").(string); !strings.Contains(d, "reason=") || at(t, partial, "required") != false {
		t.Errorf("Bff-Partial header = %v", partial)
	}
	for h, required := range map[string]bool{"ETag": true, "Cache-Control": true, "X-Cache": true, "Vary": true, "Age": false, "Server-Timing": false} {
		if got := at(t, responses, "200", "headers", h, "required"); got != required {
			t.Errorf("200 header %s required = %v", h, got)
		}
	}
	problem := at(t, web, "components", "schemas", "Problem")
	for _, p := range []string{"type", "title", "status", "detail", "instance", "view", "upstream", "request_id"} {
		at(t, problem, "properties", p)
	}
	types := at(t, problem, "properties", "type", "examples").([]any)
	for _, want := range []string{bff.ProblemUpstreamTimeout, bff.ProblemInvalidParameter, bff.ProblemOverloaded} {
		if !slices.Contains(types, any(want)) {
			t.Errorf("Problem.type examples lack %s", want)
		}
	}

	// web.home's response: user, orders, recommendations, nested as the view says.
	if got := at(t, responses, "200", "content", "application/json", "schema", "$ref"); got != "#/components/schemas/WebHome" {
		t.Fatalf("200 schema = %v", got)
	}
	s := at(t, web, "components", "schemas", "WebHome")
	if got := at(t, s, "required"); !reflect.DeepEqual(got, []any{"user", "orders", "recommendations"}) {
		t.Errorf("required = %v", got)
	}
	user := at(t, s, "properties", "user")
	if at(t, user, "type") != "object" {
		t.Errorf("user type = %v", at(t, user, "type"))
	}
	if got := at(t, user, "required"); !reflect.DeepEqual(got, []any{"id", "name", "email", "avatar_url"}) {
		t.Errorf("user required = %v", got)
	}
	// No examples: a copied value's type is unknown, so its schema is open.
	if name := at(t, user, "properties", "name").(map[string]any); name["type"] != nil || !strings.Contains(name["description"].(string), "users: `user.name`") {
		t.Errorf("user.name = %v", name)
	}
	orders := at(t, s, "properties", "orders")
	if at(t, orders, "type") != "array" || at(t, orders, "maxItems") != 10.0 {
		t.Errorf("orders = %v", orders)
	}
	count := at(t, orders, "items", "properties", "item_count")
	if at(t, count, "type") != "integer" || at(t, count, "minimum") != 0.0 {
		t.Errorf("item_count = %v", count)
	}
	recs := at(t, s, "properties", "recommendations")
	if at(t, recs, "type") != "array" || at(t, recs, "maxItems") != 10.0 || at(t, recs, "items", "type") != "object" {
		t.Errorf("recommendations = %v", recs)
	}
	if got := at(t, recs, "items", "required"); !reflect.DeepEqual(got, []any{"id", "title", "price_cents", "image_url", "rating"}) {
		t.Errorf("recommendations items required = %v", got)
	}
	if at(t, mobile, "components", "schemas", "MobileHome", "properties", "orders", "maxItems") != 3.0 {
		t.Error("mobile orders maxItems is not 3")
	}
	// web.order nests an object and a list inside the order.
	order := at(t, web, "components", "schemas", "WebOrder", "properties", "order", "properties")
	if at(t, order, "shipping", "type") != "object" || at(t, order, "items", "type") != "array" || at(t, order, "item_count", "type") != "integer" {
		t.Errorf("web.order's order = %v", order)
	}
	if _, ok := at(t, order, "items").(map[string]any)["maxItems"]; ok {
		t.Error("a list without limit has maxItems")
	}
}

func TestDeterministic(t *testing.T) {
	routes := builtinRoutes(t)
	a, err := openapi.Document("web", routes, openapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Route order and other clients' routes do not matter.
	shuffled := slices.Clone(routes)
	slices.Reverse(shuffled)
	for range 5 {
		b, err := openapi.Document("web", shuffled, openapi.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("two generations differ")
		}
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, a, "", "  "); err != nil || !bytes.Equal(bytes.TrimSpace(indented.Bytes()), bytes.TrimSpace(a)) {
		t.Error("the document is not indented JSON")
	}
}

// Examples refine copied values' types; what they do not show stays open.
func TestExamplesRefineTypes(t *testing.T) {
	routes := builtinRoutes(t)
	examples := []json.RawMessage{
		json.RawMessage(`{"user":{"id":7,"name":"Ada","email":"ada@example.com","avatar_url":null},
			"orders":[{"id":"ord-7-01","status":"shipped","total_cents":1250,"created_at":"2024-01-01","item_count":2},
			          {"id":"ord-7-02","status":"new","total_cents":99.5,"created_at":"2024-01-02","item_count":0}],
			"recommendations":[{"id":3,"title":"Lamp","price_cents":100,"image_url":"https://x/3.png","rating":4}]}`),
		json.RawMessage(`{"user":{"id":8,"name":"Bo","email":"bo@example.com","avatar_url":"https://x/8.png"},
			"orders":[],"recommendations":[{"id":4,"title":"Rug","price_cents":200,"image_url":null,"rating":4.5}]}`),
	}
	doc := document(t, "web", routes, openapi.Options{Examples: map[string][]json.RawMessage{"web.home": examples}})
	s := at(t, doc, "components", "schemas", "WebHome", "properties")
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"user", "properties", "id", "type"}, "integer"},
		{[]any{"user", "properties", "name", "type"}, "string"},
		{[]any{"user", "properties", "avatar_url", "type"}, []any{"string", "null"}},
		{[]any{"orders", "items", "properties", "total_cents", "type"}, "number"},
		{[]any{"orders", "items", "properties", "item_count", "type"}, "integer"},
		{[]any{"recommendations", "items", "properties", "image_url", "type"}, []any{"string", "null"}},
		{[]any{"recommendations", "items", "properties", "rating", "type"}, "number"},
		// The call is optional, but a missing list is [], never null.
		{[]any{"recommendations", "type"}, "array"},
	} {
		if got := at(t, s, c.path...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v = %v, want %v", c.path, got, c.want)
		}
	}
	ex := at(t, doc, "paths", "/web/home/{id}", "get", "responses", "200", "content", "application/json", "examples")
	if at(t, ex, "example-2", "value", "user", "name") != "Bo" {
		t.Errorf("examples = %v", ex)
	}
	// Invalid examples are an error naming the view.
	_, err := openapi.Document("web", routes, openapi.Options{Examples: map[string][]json.RawMessage{"web.home": {json.RawMessage(`{"user":`)}}})
	if err == nil || !strings.Contains(err.Error(), "web.home") {
		t.Errorf("invalid example: err = %v", err)
	}
}

// Real responses as examples: the types they show are what the engine
// writes, and other ids' responses, complete or partial, still match.
func TestExamplesFromRealResponses(t *testing.T) {
	front, upstreams := demoFront(t)
	examples := map[string][]json.RawMessage{}
	for view, paths := range map[string][]string{
		"web.home":  {"/web/home/7", "/web/home/123456"},
		"web.order": {"/web/orders/ord-7-20", "/web/orders/ord-3-01"},
	} {
		for _, path := range paths {
			w := httptest.NewRecorder()
			front.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			if w.Code != http.StatusOK {
				t.Fatalf("%s: %d", path, w.Code)
			}
			examples[view] = append(examples[view], w.Body.Bytes())
		}
	}
	raw, err := openapi.Document("web", front.Routes(), openapi.Options{Examples: examples})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	user := at(t, doc, "components", "schemas", "WebHome", "properties", "user", "properties")
	if at(t, user, "id", "type") != "integer" || at(t, user, "name", "type") != "string" {
		t.Errorf("user = %v", user)
	}
	_, v := newValidator(t, raw)
	for id := 1; id <= 30; id++ {
		validateResponse(t, v, front, "/web/home/"+strconv.Itoa(id), http.StatusOK)
		validateResponse(t, v, front, fmt.Sprintf("/web/orders/ord-%d-%02d", id, id%5+1), http.StatusOK)
	}
	upstreams["recs"].set(http.NotFoundHandler())
	upstreams["catalog"].set(http.NotFoundHandler())
	validateResponse(t, v, front, "/web/home/31", http.StatusOK)
	validateResponse(t, v, front, "/web/orders/ord-31-01", http.StatusOK)
}

// A structure TypeScript generators read well: every schema has a type,
// a $ref, or constrains nothing; no 3.0 "nullable".
func TestGeneratorFriendly(t *testing.T) {
	routes := append(builtinRoutes(t), tricky())
	for _, client := range []string{"web", "mobile", "test"} {
		doc := document(t, client, routes, openapi.Options{})
		walkSchemas(t, doc, func(where string, s map[string]any) {
			if _, ok := s["nullable"]; ok {
				t.Errorf("%s: nullable", where)
			}
			_, typed := s["type"]
			_, ref := s["$ref"]
			if typed || ref {
				return
			}
			for k := range s {
				if k != "description" && k != "default" && k != "examples" {
					t.Errorf("%s: untyped schema with %q: %v", where, k, s)
				}
			}
		})
		raw, _ := json.Marshal(doc)
		if bytes.Contains(raw, []byte(`"nullable"`)) {
			t.Errorf("%s: nullable in the document", client)
		}
	}
}

// walkSchemas calls fn for every schema object in a document.
func walkSchemas(t *testing.T, doc map[string]any, fn func(where string, s map[string]any)) {
	var walk func(where string, s any)
	walk = func(where string, v any) {
		s, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: schema is %T", where, v)
			return
		}
		fn(where, s)
		if props, ok := s["properties"].(map[string]any); ok {
			for k, p := range props {
				walk(where+".properties."+k, p)
			}
		}
		if items, ok := s["items"]; ok {
			walk(where+".items", items)
		}
	}
	for name, s := range at(t, doc, "components", "schemas").(map[string]any) {
		walk("components.schemas."+name, s)
	}
	for path, item := range at(t, doc, "paths").(map[string]any) {
		for method, op := range item.(map[string]any) {
			for _, p := range op.(map[string]any)["parameters"].([]any) {
				if s, ok := p.(map[string]any)["schema"]; ok {
					walk(path+" "+method+" parameter", s)
				}
			}
		}
	}
	for name, p := range at(t, doc, "components", "parameters").(map[string]any) {
		walk("components.parameters."+name, p.(map[string]any)["schema"])
	}
	walkHeaders := func(where string, response any) {
		headers, _ := response.(map[string]any)["headers"].(map[string]any)
		for name, h := range headers {
			walk(where+".headers."+name, h.(map[string]any)["schema"])
		}
	}
	for name, r := range at(t, doc, "components", "responses").(map[string]any) {
		walkHeaders("components.responses."+name, r)
	}
	for path, item := range at(t, doc, "paths").(map[string]any) {
		for method, op := range item.(map[string]any) {
			walkHeaders(path+" "+method+" 200", at(t, op, "responses", "200"))
		}
	}
}

// tricky is a route using every kind of field, for client "test".
func tricky() bff.Route {
	return bff.Route{
		Client: "test", Method: http.MethodGet, Path: "/test/items/{sku:[A-Z0-9-]+}/{n}", View: "test.items",
		Params: []aggregate.Param{{Name: "sku", Pattern: "SKU-[0-9]{6}"}, {Name: "n", Pattern: `(?i)[a-f]+`}},
		Calls: []aggregate.Call{
			{Name: "item", Upstream: "catalog", Path: "/products/{sku}"},
			{Name: "extra", Upstream: "recs", Path: "/extra", Optional: true},
			{Name: "each", Upstream: "catalog", Path: "/products/{each}", ForEach: "item.related", MaxEach: 5, Optional: true},
		},
		Cache: aggregate.CachePolicy{TTL: time.Minute, Scope: aggregate.ScopeUser, StaleWhileRevalidate: time.Second},
		Shape: []aggregate.Field{
			{Name: "api", Const: json.RawMessage(`2`)},
			{Name: "kind", Const: json.RawMessage(`"item"`)},
			{Name: "nothing", Const: json.RawMessage(`null`)},
			{Name: "item", From: "item", Fields: []aggregate.Field{
				{Name: "sku"},
				{Name: "tags", List: true},
				{Name: "size", From: "dims.size", Default: json.RawMessage(`"n/a"`)},
				{Name: "colour", Omit: true},
			}},
			{Name: "extra", From: "extra"},
			{Name: "extra_obj", From: "extra", Fields: []aggregate.Field{{Name: "a"}}},
			{Name: "extra_default", From: "extra.b", Default: json.RawMessage(`0`)},
			{Name: "extra_omit", From: "extra.c", Omit: true},
			{Name: "extra_count", From: "extra.list", Count: true},
			{Name: "extra_count_default", From: "extra.list", Count: true, Default: json.RawMessage(`-1`)},
			{Name: "related", From: "each", List: true, Fields: []aggregate.Field{{Name: "sku"}}},
			{Name: "related_raw", From: "each", List: true, Limit: 10},
		},
	}
}

// The shape's rules, on a view using each of them.
func TestShapeRules(t *testing.T) {
	doc := document(t, "test", []bff.Route{tricky()}, openapi.Options{})
	if got := keys(at(t, doc, "paths").(map[string]any)); !slices.Equal(got, []string{"/test/items/{sku}/{n}"}) {
		t.Fatalf("paths = %v (chi's patterns must not stay in the path)", got)
	}
	op := at(t, doc, "paths", "/test/items/{sku}/{n}", "get")
	if got := at(t, op, "operationId"); got != "testItems" {
		t.Errorf("operationId = %v", got)
	}
	sku := at(t, op, "parameters", 0, "schema")
	if at(t, sku, "pattern") != "^(?:SKU-[0-9]{6})$" || at(t, sku, "minLength") != 10.0 || at(t, sku, "maxLength") != 10.0 {
		t.Errorf("sku = %v", sku)
	}
	if d := at(t, op, "parameters", 0, "description").(string); !strings.Contains(d, "[A-Z0-9-]+") {
		t.Errorf("sku description lacks the route's pattern: %s", d)
	}
	// (?i) is Go syntax: no pattern rather than a wrong one.
	if n := at(t, op, "parameters", 1, "schema").(map[string]any); n["pattern"] != nil || n["minLength"] != 1.0 {
		t.Errorf("n = %v", n)
	}
	if d := at(t, op, "description").(string); !strings.Contains(d, "per caller, 1m0s") || !strings.Contains(d, "once per element of `item.related`") {
		t.Errorf("description = %s", d)
	}
	if _, ok := at(t, op, "responses").(map[string]any)["502"]; !ok {
		t.Error("no 502 for a view with a required call")
	}

	s := at(t, doc, "components", "schemas", "TestItems")
	p := at(t, s, "properties")
	check := func(want any, path ...any) {
		t.Helper()
		if got := at(t, p, path...); !reflect.DeepEqual(got, want) {
			t.Errorf("%v = %v, want %v", path, got, want)
		}
	}
	check("integer", "api", "type")
	check(2.0, "api", "const")
	check("string", "kind", "type")
	check("item", "kind", "const")
	check("null", "nothing", "type")
	check(nil, "nothing", "const")
	check("object", "item", "type") // a required call: never null
	check("array", "item", "properties", "tags", "type")
	check("n/a", "item", "properties", "size", "default")
	check([]any{"sku", "tags", "size"}, "item", "required") // colour is omitted when missing
	// An optional call's values: open (already nullable), object or null,
	// default in place of null, omitted, 0 for a count.
	if extra := at(t, p, "extra").(map[string]any); extra["type"] != nil {
		t.Errorf("extra = %v", extra)
	}
	check([]any{"object", "null"}, "extra_obj", "type")
	check(0.0, "extra_default", "default")
	check("integer", "extra_count", "type")
	check(0.0, "extra_count", "minimum")
	check("integer", "extra_count_default", "type")
	if _, ok := at(t, p, "extra_count_default").(map[string]any)["minimum"]; ok {
		t.Error("a count defaulting to -1 keeps minimum 0")
	}
	// A fan-out: at most max_each elements; an optional one leaves null
	// for an element that failed.
	check([]any{"object", "null"}, "related", "items", "type")
	check(5.0, "related", "maxItems")
	check(5.0, "related_raw", "maxItems")
	required := at(t, s, "required").([]any)
	if slices.Contains(required, any("extra_omit")) || !slices.Contains(required, any("extra")) {
		t.Errorf("required = %v", required)
	}
}

// A view shaped by Go has an open object response that says so.
func TestShapeFunc(t *testing.T) {
	r := bff.Route{Client: "web", Method: http.MethodGet, Path: "/web/custom", View: "web.custom", ShapeFunc: "custom",
		Calls: []aggregate.Call{{Name: "a", Upstream: "users", Path: "/a", Optional: true}}}
	doc := document(t, "web", []bff.Route{r}, openapi.Options{})
	s := at(t, doc, "components", "schemas", "WebCustom").(map[string]any)
	if s["type"] != "object" || s["properties"] != nil || !strings.Contains(s["description"].(string), `"custom"`) {
		t.Errorf("schema = %v", s)
	}
	responses := at(t, doc, "paths", "/web/custom", "get", "responses").(map[string]any)
	if _, ok := responses["400"]; ok {
		t.Error("400 for a route without parameters")
	}
	if _, ok := responses["502"]; ok {
		t.Error("502 for a view whose calls are all optional")
	}
}

// Operation IDs and schema names are unique, whatever the view names.
func TestNamesUnique(t *testing.T) {
	var routes []bff.Route
	for i, name := range []string{"web.a_b", "web.aB", "web.a-b", "problem", "9lives"} {
		routes = append(routes, bff.Route{Client: "web", Method: http.MethodGet, Path: "/web/p" + string(rune('a'+i)), View: name,
			Calls: []aggregate.Call{{Name: "c", Upstream: "u", Path: "/"}}, Shape: []aggregate.Field{{Name: "c"}}})
	}
	doc := document(t, "web", routes, openapi.Options{})
	var ids []string
	for _, item := range at(t, doc, "paths").(map[string]any) {
		ids = append(ids, at(t, item, "get", "operationId").(string))
	}
	slices.Sort(ids)
	if want := []string{"problem", "view9lives", "webAB", "webAB2", "webAB3"}; !slices.Equal(ids, want) {
		t.Errorf("operation IDs = %v, want %v", ids, want)
	}
	schemas := keys(at(t, doc, "components", "schemas").(map[string]any))
	if want := []string{"Problem", "Problem2", "View9lives", "WebAB", "WebAB2", "WebAB3"}; !slices.Equal(schemas, want) {
		t.Errorf("schemas = %v, want %v", schemas, want)
	}
}

// Routes chi tells apart by their patterns but OpenAPI cannot are left out,
// and the document says so; it stays valid.
func TestShadowedRoutes(t *testing.T) {
	route := func(view, path string) bff.Route {
		return bff.Route{Client: "web", Method: http.MethodGet, Path: path, View: view,
			Calls: []aggregate.Call{{Name: "c", Upstream: "u", Path: "/"}}, Shape: []aggregate.Field{{Name: "c"}}}
	}
	routes := []bff.Route{route("web.a", "/web/c/{id:[0-9]+}"), route("web.b", "/web/c/{sku:[A-Z]+}"), route("web.c", "/web/c/{id:[a-z]+}")}
	raw, err := openapi.Document("web", routes, openapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if got := keys(at(t, doc, "paths").(map[string]any)); !slices.Equal(got, []string{"/web/c/{id}"}) {
		t.Errorf("paths = %v", got)
	}
	if at(t, doc, "paths", "/web/c/{id}", "get", "operationId") != "webA" {
		t.Error("the first view by name does not keep the path")
	}
	if got := keys(at(t, doc, "components", "schemas").(map[string]any)); !slices.Equal(got, []string{"Problem", "WebA"}) {
		t.Errorf("schemas = %v", got)
	}
	d := at(t, doc, "info", "description").(string)
	if !strings.Contains(d, "web.b") || !strings.Contains(d, "web.c") {
		t.Errorf("info.description does not name the views left out: %s", d)
	}
	_, v := newValidator(t, raw)
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatal(errs[0])
	}
}

func TestHandler(t *testing.T) {
	routes := builtinRoutes(t)
	current := routes
	h := openapi.Handler("web", func() []bff.Route { return current }, openapi.Options{Version: "1.2.3"})
	get := func(method string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/web/openapi.json", nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	w := get(http.MethodGet)
	want, _ := openapi.Document("web", routes, openapi.Options{Version: "1.2.3"})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" || !bytes.Equal(w.Body.Bytes(), want) {
		t.Fatalf("GET: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	etag := w.Header().Get("ETag")
	if etag == "" || w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("headers = %v", w.Header())
	}
	if w := get(http.MethodGet, "If-None-Match", etag); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("If-None-Match: %d", w.Code)
	}
	if w := get(http.MethodHead); w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Length") != strconv.Itoa(len(want)) {
		t.Errorf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
	if w := get(http.MethodPost); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" ||
		w.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("POST: %d %v", w.Code, w.Header())
	}

	// A reload: the document follows the routes, and the old ETag no longer matches.
	current = append(slices.Clone(routes), bff.Route{Client: "web", Method: http.MethodGet, Path: "/web/profile/{id}", View: "web.profile",
		Params: []aggregate.Param{{Name: "id", Pattern: "[0-9]+"}},
		Calls:  []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/{id}"}},
		Shape:  []aggregate.Field{{Name: "name", From: "user.name"}}})
	w = get(http.MethodGet, "If-None-Match", etag)
	if w.Code != http.StatusOK || w.Header().Get("ETag") == etag {
		t.Fatalf("after a reload: %d, ETag %s", w.Code, w.Header().Get("ETag"))
	}
	body, _ := io.ReadAll(w.Body)
	if !bytes.Contains(body, []byte(`"/web/profile/{id}"`)) || !bytes.Contains(body, []byte(`"version": "1.2.3"`)) {
		t.Error("the reloaded view is not in the document")
	}

	// A document that cannot be made is a 500 problem, not a broken body.
	bad := openapi.Handler("web", func() []bff.Route { return routes },
		openapi.Options{Examples: map[string][]json.RawMessage{"web.home": {json.RawMessage(`nope`)}}})
	w = httptest.NewRecorder()
	bad.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/web/openapi.json", nil))
	if w.Code != http.StatusInternalServerError || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("bad examples: %d %v", w.Code, w.Header())
	}
}

func TestMount(t *testing.T) {
	front, _ := demoFront(t)
	routes := front.Routes()
	routes = append(routes, bff.Route{Client: "test", Method: http.MethodGet, Path: "/test/openapi.json", View: "test.doc",
		Calls: []aggregate.Call{{Name: "c", Upstream: "users", Path: "/"}}, Shape: []aggregate.Field{{Name: "c"}}})
	h := openapi.Mount(front, func() []bff.Route { return routes }, openapi.Options{})
	for path, want := range map[string]string{
		"/web/openapi.json":    "document",
		"/mobile/openapi.json": "document",
		"/other/openapi.json":  "front", // no such client
		"/web/x/openapi.json":  "front",
		"/openapi.json":        "front",
		"/web/home/7":          "front",
		"/test/openapi.json":   "front", // a view's own route wins
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		got := "front"
		if bytes.HasPrefix(w.Body.Bytes(), []byte("{\n  \"openapi\": \"3.1.0\"")) {
			got = "document"
		}
		if got != want {
			t.Errorf("%s: served by the %s (%d), want the %s", path, got, w.Code, want)
		}
	}
}
