package openapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/openapi"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// servedBodyDoc mounts one POST view with the given body schema (YAML,
// indented under "schema:"), checks the view accepts body, and returns the
// client's document.
func servedBodyDoc(t *testing.T, schemaYAML, body string) []byte {
	t.Helper()
	front, doc := servedFrontSet(t, `
views:
  - name: web.cart.add
    route: /cart/items
    method: POST
    body:
      schema:
`+schemaYAML+`
    calls:
      add: {upstream: carts, method: POST, path: /cart/items, body: request}
    shape:
      ok: add.ok
`, map[string]http.Handler{"carts": json200(`{"ok":true}`)}, func(*bff.RouteSet) {}, openapi.Options{})
	req := httptest.NewRequest(http.MethodPost, "/web/cart/items", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	front.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("the view refuses a body its schema accepts: %d %s", w.Code, w.Body)
	}
	return doc
}

// compileComponent compiles the body component of doc as JSON Schema
// 2020-12 (OpenAPI 3.1's dialect), the document being its resource, as a
// generator or validator reading the document does.
func compileComponent(t *testing.T, doc []byte, name string) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	comp := v.(map[string]any)["components"].(map[string]any)["schemas"].(map[string]any)[name]
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("https://doc.example/openapi.json", map[string]any{"$defs": map[string]any{name: comp}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Compile("https://doc.example/openapi.json#/$defs/" + name)
	return err
}

// A body schema that refers to a subschema by its $anchor ("#item") keeps
// the reference as written: only JSON pointers ("#/...") are moved with
// the schema into components.
func TestBodySchemaAnchorRefIsKept(t *testing.T) {
	doc := servedBodyDoc(t, `        type: object
        required: [item]
        properties:
          item: {$ref: '#item'}
        $defs:
          it:
            $anchor: item
            type: object
            required: [sku]
            properties: {sku: {type: string}}`, `{"item":{"sku":"a"}}`)
	var d map[string]any
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	ref := at(t, d, "components", "schemas", "WebCartAddBody", "properties", "item", "$ref")
	if ref != "#item" {
		t.Errorf("anchor reference rewritten to %q: it names no anchor, nor any node of the document", ref)
	}
}

// A body schema with its own $id resolves its "#/$defs/item" against that
// $id (JSON Schema 2020-12, OpenAPI 3.1), so it is left as written: moved,
// the reference would point into the $id resource at a path it lacks.
func TestBodySchemaWithItsOwnID(t *testing.T) {
	doc := servedBodyDoc(t, `        $id: https://shop.example/schemas/cart-add
        type: object
        required: [item]
        properties:
          item: {$ref: '#/$defs/item'}
        $defs:
          item:
            type: object
            required: [sku]
            properties: {sku: {type: string}}`, `{"item":{"sku":"a"}}`)
	if err := compileComponent(t, doc, "WebCartAddBody"); err != nil {
		t.Errorf("the body component, read as JSON Schema 2020-12, does not compile: %v", err)
	}
}

// A property named like a keyword ("default", "enum") is a schema all the
// same: its references move with the body schema.
func TestBodySchemaPropertyNamedLikeAKeyword(t *testing.T) {
	doc := servedBodyDoc(t, `        type: object
        properties:
          default: {$ref: '#/$defs/item'}
        $defs:
          item:
            type: object
            properties: {sku: {type: string}}`, `{"default":{"sku":"a"}}`)
	var d map[string]any
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if ref := at(t, d, "components", "schemas", "WebCartAddBody", "properties", "default", "$ref"); ref != "#/components/schemas/WebCartAddBody/$defs/item" {
		t.Errorf("the reference of property \"default\" is %q; want it moved with the schema", ref)
	}
}
