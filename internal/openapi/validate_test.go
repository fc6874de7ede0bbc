package openapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/bffproxy/bff/internal/openapi"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi/datamodel"
)

// newValidator parses a document as libopenapi does and fails the test on
// any error building it (unresolved $refs included).
func newValidator(t *testing.T, doc []byte) (libopenapi.Document, validator.Validator) {
	t.Helper()
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.BuildV3Model(); err != nil {
		t.Fatalf("building the model: %v", err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatalf("building the validator: %v", errs)
	}
	return d, v
}

// Acceptance: both clients' documents validate against the OpenAPI 3.1
// schema (the official one, embedded in libopenapi).
func TestDocumentsValidateAgainstOpenAPI31Schema(t *testing.T) {
	routes := builtinRoutes(t)
	for _, client := range []string{"web", "mobile"} {
		t.Run(client, func(t *testing.T) {
			doc, err := openapi.Document(client, routes, openapi.Options{})
			if err != nil {
				t.Fatal(err)
			}
			d, v := newValidator(t, doc)
			info := d.GetSpecInfo()
			if info.SpecFormat != datamodel.OAS31 || !strings.Contains(info.APISchema, `"https://spec.openapis.org/oas/3.1/schema/`) {
				t.Fatalf("validated as %s, not against the OpenAPI 3.1 schema", info.SpecFormat)
			}
			if ok, errs := v.ValidateDocument(); !ok {
				for _, e := range errs {
					t.Errorf("%s: %s (%s)", e.Message, e.Reason, e.Context)
				}
			}
		})
	}
}

// The validator is not a rubber stamp: a document the 3.1 schema forbids
// (a path parameter that is not required) fails.
func TestValidatorRejectsInvalidDocument(t *testing.T) {
	doc, err := openapi.Document("web", builtinRoutes(t), openapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	broken := bytes.Replace(doc, []byte(`"in": "path",
            "required": true`), []byte(`"in": "path",
            "required": false`), 1)
	if bytes.Equal(broken, doc) {
		t.Fatal("the path parameter was not found to break")
	}
	_, v := newValidator(t, broken)
	if ok, _ := v.ValidateDocument(); ok {
		t.Fatal("a path parameter with required: false passed validation")
	}
}

// Real responses of every built-in view over the demo upstreams, a partial
// one, and problem responses all match the documents: the schemas say what
// the engine writes.
func TestResponsesMatchDocuments(t *testing.T) {
	front, upstreams := demoFront(t)
	validators := map[string]validator.Validator{}
	for _, client := range []string{"web", "mobile"} {
		doc, err := openapi.Document(client, front.Routes(), openapi.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, validators[client] = newValidator(t, doc)
	}
	check := func(t *testing.T, path string, wantStatus int) {
		t.Helper()
		validateResponse(t, validators[strings.Split(path, "/")[1]], front, path, wantStatus)
	}
	for _, path := range []string{"/web/home/7", "/mobile/home/7", "/web/orders/ord-7-20", "/mobile/orders/ord-7-20", "/web/home/123456"} {
		t.Run(path, func(t *testing.T) { check(t, path, http.StatusOK) })
	}
	t.Run("a body the schema forbids fails", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/web/home/7", nil)
		w := httptest.NewRecorder()
		front.ServeHTTP(w, req)
		body := regexp.MustCompile(`"item_count":[0-9]+`).ReplaceAll(w.Body.Bytes(), []byte(`"item_count":"3"`))
		resp := w.Result()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if ok, _ := validators["web"].ValidateHttpResponse(req, resp); ok {
			t.Fatal("a string item_count passed validation")
		}
	})
	t.Run("invalid parameter", func(t *testing.T) { check(t, "/web/home/abc", http.StatusBadRequest) })
	t.Run("partial", func(t *testing.T) {
		fail := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
		upstreams["recs"].set(fail)
		upstreams["catalog"].set(fail)
		check(t, "/web/home/8", http.StatusOK)
		check(t, "/mobile/orders/ord-8-03", http.StatusOK)
	})
	t.Run("upstream error", func(t *testing.T) {
		upstreams["users"].set(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
		check(t, "/web/home/9", http.StatusBadGateway)
	})
}

// validateResponse serves path through front and validates the response
// against the document behind v.
func validateResponse(t *testing.T, v validator.Validator, front http.Handler, path string, wantStatus int) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	w := httptest.NewRecorder()
	front.ServeHTTP(w, req)
	if w.Code != wantStatus {
		t.Fatalf("%s: status %d, want %d: %s", path, w.Code, wantStatus, w.Body)
	}
	resp := w.Result()
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if ok, errs := v.ValidateHttpResponse(req, resp); !ok {
		for _, e := range errs {
			t.Errorf("%s: %s: %s %v", path, e.Message, e.Reason, schemaErrors(e.SchemaValidationErrors))
		}
		t.Logf("body: %s", body)
	}
}

func schemaErrors[E error](errs []E) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "; ")
}

// Example bodies become the response's examples, and still validate.
func TestExamplesValidate(t *testing.T) {
	routes := builtinRoutes(t)
	example := json.RawMessage(`{"user":{"id":7,"name":"Ada","email":"ada@example.com","avatar_url":null},
		"orders":[{"id":"ord-7-01","status":"shipped","total_cents":1250,"created_at":"2024-01-01T00:00:00Z","item_count":2}],
		"recommendations":[]}`)
	doc, err := openapi.Document("web", routes, openapi.Options{Examples: map[string][]json.RawMessage{"web.home": {example}}})
	if err != nil {
		t.Fatal(err)
	}
	_, v := newValidator(t, doc)
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("%v", errs[0])
	}
}
