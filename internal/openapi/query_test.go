package openapi_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/openapi"
)

// Query parameters carry their type, bounds and default, and are required
// only without a default; a view with app-version variants documents
// X-App-Version. The document stays valid OpenAPI 3.1.
func TestQueryParametersAndAppVersion(t *testing.T) {
	one, fifty := int64(1), int64(50)
	ten := "10"
	routes := []bff.Route{{
		Client: "web", Method: "GET", Path: "/web/feed/{id}", View: "web.feed",
		Params: []aggregate.Param{{Name: "id", Pattern: "[0-9]+"}},
		Query: []aggregate.QueryParam{
			{Name: "limit", Type: "int", Min: &one, Max: &fifty, Default: &ten},
			{Name: "tag", Pattern: "[a-z]+"},
		},
		AppVersions: []string{"<2.0"},
		Cache:       aggregate.CachePolicy{TTL: time.Minute},
		Calls:       []aggregate.Call{{Name: "f", Upstream: "feed", Path: "/f"}},
		Shape:       []aggregate.Field{aggregate.Rename("items", "f.items")},
	}}
	doc, err := openapi.Document("web", routes, openapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name, In string
				Required bool
				Schema   map[string]any
			}
		}
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, p := range d.Paths["/web/feed/{id}"]["get"].Parameters {
		if p.In == "query" || p.Name == "X-App-Version" {
			got[p.Name] = []any{p.In, p.Required, p.Schema["type"], p.Schema["minimum"], p.Schema["maximum"], p.Schema["default"], p.Schema["pattern"]}
		}
	}
	want := map[string]any{
		"limit":         []any{"query", false, "integer", 1.0, 50.0, 10.0, nil},
		"tag":           []any{"query", true, "string", nil, nil, nil, "^(?:[a-z]+)$"},
		"X-App-Version": []any{"header", false, "string", nil, nil, nil, `^[0-9]+(\.[0-9]+){0,2}$`},
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("parameters\n got %s\nwant %s", g, w)
	}
	_, v := newValidator(t, doc)
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("%s: %s (%s)", e.Message, e.Reason, e.Context)
		}
	}
}

// A mutation documents its request body with the view's schema.
func TestMutationRequestBody(t *testing.T) {
	routes := []bff.Route{{
		Client: "web", Method: "POST", Path: "/web/cart/items", View: "web.cart.add",
		Body:  &aggregate.BodyPolicy{Schema: json.RawMessage(`{"type":"object","required":["sku"],"properties":{"sku":{"type":"string"}}}`)},
		Calls: []aggregate.Call{{Name: "add", Upstream: "carts", Method: "POST", Path: "/cart/items", Body: "request"}},
		Shape: []aggregate.Field{aggregate.Rename("ok", "add.ok")},
	}}
	doc, err := openapi.Document("web", routes, openapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Required bool
				Content  map[string]struct{ Schema map[string]any }
			}
		}
		Components struct{ Schemas map[string]map[string]any }
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	// The schema is a component of its own, where its internal $refs resolve.
	rb := d.Paths["/web/cart/items"]["post"].RequestBody
	if !rb.Required || rb.Content["application/json"].Schema["$ref"] != "#/components/schemas/WebCartAddBody" ||
		d.Components.Schemas["WebCartAddBody"]["type"] != "object" {
		t.Errorf("requestBody %+v, schema %v", rb, d.Components.Schemas["WebCartAddBody"])
	}
	_, v := newValidator(t, doc)
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("%s: %s (%s)", e.Message, e.Reason, e.Context)
		}
	}
}
