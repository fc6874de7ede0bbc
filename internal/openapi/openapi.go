package openapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

// Options add what the routes do not say.
type Options struct {
	// Title is info.title. Empty means "bff: <client> views".
	Title string
	// Version is info.version. Empty means "0".
	Version string
	// Examples maps a view's name to example response bodies, such as the
	// expected outputs of its view tests. They refine the types of values
	// copied from upstreams, which a view does not declare, and are shown
	// as the response's examples. Each must be one valid JSON value.
	Examples map[string][]json.RawMessage
	// ExamplesFor, if set, names the definition (bff.Route.Source) each
	// view's examples were written for: a view since replaced or changed at
	// run time gets none, rather than types taken from another definition.
	ExamplesFor map[string]string
}

func bodyLimit(b *aggregate.BodyPolicy) int64 {
	if b.MaxBytes > 0 {
		return b.MaxBytes
	}
	return 64 << 10
}

// specVersion is the OpenAPI version the documents follow: 3.1.0 rather
// than a later patch, which some generators still refuse.
const specVersion = "3.1.0"

// Document returns the OpenAPI document of client's views among routes
// (bff.Front.Routes lists every client's) as indented JSON. The same input
// gives the same bytes.
func Document(client string, routes []bff.Route, opts Options) ([]byte, error) {
	var own []bff.Route
	for _, r := range routes {
		if r.Client == client {
			own = append(own, r)
		}
	}
	// Names are handed out in view-name order, so they do not depend on the
	// order of routes.
	slices.SortFunc(own, func(a, b bff.Route) int { return cmp.Compare(a.View, b.View) })
	names := newNamer()
	schemas := map[string]*schema{"Problem": problemSchema()}
	bodies := map[string]json.RawMessage{} // mutations' body schemas, as written
	ops := make([]operation, 0, len(own))
	for _, r := range own {
		examples := opts.Examples[r.View]
		if src, ok := opts.ExamplesFor[r.View]; ok && src != r.Source {
			examples = nil
		}
		decoded := make([]any, 0, len(examples))
		for i, e := range examples {
			if !json.Valid(e) {
				return nil, fmt.Errorf("openapi: view %q: example %d is not valid JSON", r.View, i+1)
			}
			v, err := decode(e)
			if err != nil {
				return nil, fmt.Errorf("openapi: view %q: example %d: %v", r.View, i+1, err)
			}
			decoded = append(decoded, v)
		}
		opID := names.operation(r.View)
		schemaName := names.schema(r.View)
		schemas[schemaName] = responseSchema(r, decoded)
		bodyName := ""
		if r.Body != nil && len(r.Body.Schema) > 0 {
			bodyName = names.schema(r.View + ".body")
			raw, err := rebase(r.Body.Schema, "#/components/schemas/"+bodyName)
			if err != nil {
				return nil, fmt.Errorf("openapi: view %q: body schema: %v", r.View, err)
			}
			bodies[bodyName] = raw
		}
		path, chiPatterns, params := openAPIPath(r.Path)
		ops = append(ops, operation{
			route: r, id: opID, schema: schemaName, bodySchema: bodyName, path: path,
			method: strings.ToLower(cmp.Or(r.Method, http.MethodGet)),
			params: params, chiPatterns: chiPatterns, examples: examples,
		})
	}
	slices.SortStableFunc(ops, func(a, b operation) int {
		return cmp.Or(cmp.Compare(a.path, b.path), cmp.Compare(methodRank(a.method), methodRank(b.method)))
	})

	var paths obj
	var shadowed []string
	owner := map[string]string{} // a path with its parameters unnamed: the path that has it
	for i := 0; i < len(ops); {
		var item obj
		j := i
		for ; j < len(ops) && ops[j].path == ops[i].path; j++ {
			// chi tells /c/{id:[0-9]+} from /c/{sku:[A-Z]+}; OpenAPI takes
			// /c/{id} and /c/{sku} for the same path, which it forbids twice.
			shape := unnamed(ops[j].path)
			if prev, taken := owner[shape]; taken && prev != ops[j].path || j > i && ops[j].method == ops[j-1].method {
				shadowed = append(shadowed, fmt.Sprintf("view %s (%s %s)", ops[j].route.View, ops[j].route.Method, ops[j].route.Path))
				delete(schemas, ops[j].schema)
				delete(bodies, ops[j].bodySchema)
				continue
			}
			owner[shape] = ops[j].path
			item.set(ops[j].method, ops[j].build())
		}
		if len(item) > 0 {
			paths.set(ops[i].path, item)
		}
		i = j
	}

	title := opts.Title
	if title == "" {
		title = "bff: " + client + " views"
	}
	info := obj{{"title", title}, {"version", cmp.Or(opts.Version, "0")}, {"description", infoDescription(client, shadowed)}}
	doc := obj{
		{"openapi", specVersion},
		{"info", info},
		// Relative: the document is served by the BFF it describes.
		{"servers", []any{obj{{"url", "/"}}}},
		// None by default; views that verify tokens say so themselves.
		{"security", []any{}},
		{"paths", paths},
		{"components", obj{
			{"schemas", componentSchemas(schemas, bodies)},
			{"responses", sorted(problemResponses())},
			{"parameters", sorted(requestHeaders())},
			{"securitySchemes", obj{{"bearer", obj{{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}}}},
		}},
	}
	var out bytes.Buffer
	out.Grow(32 << 10)
	if err := write(&out, doc, 0); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// operation is one view's operation, before it is written.
type operation struct {
	route       bff.Route
	id, schema  string
	bodySchema  string // a mutation's body schema, in components; "" for none
	path        string
	method      string
	params      []string
	chiPatterns map[string]string
	examples    []json.RawMessage
}

func (op operation) build() obj {
	r := op.route
	var o obj
	o.set("operationId", op.id)
	o.set("summary", r.View)
	o.set("description", viewDescription(r))
	var params []any
	for _, name := range op.params {
		params = append(params, pathParameter(name, patternOf(r.Params, name), op.chiPatterns[name]))
	}
	for _, q := range r.Query {
		params = append(params, queryParameter(q))
	}
	for _, h := range []string{"Accept-Language", "If-None-Match", "X-Request-Id"} {
		params = append(params, ref("parameters", h))
	}
	if r.Method != "" && r.Method != http.MethodGet { // a mutation
		params = append(params, ref("parameters", "Idempotency-Key"))
	}
	if len(r.AppVersions) > 0 {
		params = append(params, appVersionParameter(r.AppVersions))
	}
	o.set("parameters", params)
	if r.Body != nil {
		schema := any(obj{})
		if op.bodySchema != "" {
			schema = ref("schemas", op.bodySchema)
		}
		o.set("requestBody", obj{
			{"required", true},
			{"description", "JSON, at most " + strconv.FormatInt(bodyLimit(r.Body), 10) + " bytes; a body the schema refuses is a 400 `" + bff.ProblemInvalidBody + "` naming the value's JSON pointer."},
			{"content", obj{{"application/json", obj{{"schema", schema}}}}},
		})
	}

	content := obj{{"schema", ref("schemas", op.schema)}}
	if len(op.examples) > 0 {
		var ex obj
		for i, e := range op.examples {
			ex.set("example-"+strconv.Itoa(i+1), obj{{"value", compactRaw(e)}})
		}
		content.set("examples", ex)
	}
	var ok obj
	ok.set("description", "The view's response. A response missing optional parts is still a 200: the "+
		bff.PartialHeader+" header names them, and a missing part is null, [] for a list, 0 for a count, or the field's default.")
	ok.set("headers", obj{
		{"Age", header("Age", false)},
		{bff.PartialHeader, header(bff.PartialHeader, false)},
		{"Cache-Control", header("Cache-Control", true)},
		{"ETag", header("ETag", true)},
		{"Server-Timing", header("Server-Timing", false)},
		{"Vary", header("Vary", true)},
		{"X-Cache", header("X-Cache", r.Method == "" || r.Method == http.MethodGet)}, // a mutation is never cached
		{"X-Request-Id", header("X-Request-Id", false)},
	})
	ok.set("content", obj{{"application/json", content}})

	responses := obj{{"200", ok}, {"304", ref("responses", "NotModified")}}
	switch {
	case r.Body != nil:
		responses.set("400", ref("responses", "InvalidBody"))
	case len(op.params) > 0 || len(r.Query) > 0:
		responses.set("400", ref("responses", "InvalidParameter"))
	}
	if r.Body != nil {
		responses.set("413", ref("responses", "BodyTooLarge"))
		responses.set("415", ref("responses", "UnsupportedMediaType"))
	}
	switch r.Auth.Mode {
	case "required":
		responses.set("401", ref("responses", "Unauthorized"))
		if len(r.Auth.Scopes) > 0 {
			responses.set("403", ref("responses", "Forbidden"))
		}
		o.set("security", []any{obj{{"bearer", r.Auth.Scopes}}})
	case "optional": // a token sent must verify
		responses.set("401", ref("responses", "Unauthorized"))
		o.set("security", []any{obj{}, obj{{"bearer", []string{}}}})
	}
	responses.set("404", ref("responses", "NotFound"))
	if r.RateLimited {
		responses.set("429", ref("responses", "TooManyRequests"))
	}
	responses.set("414", ref("responses", "URITooLong"))
	responses.set("500", ref("responses", "Internal"))
	if slices.ContainsFunc(r.Calls, func(c aggregate.Call) bool { return !c.Optional }) {
		responses.set("502", ref("responses", "UpstreamError"))
	}
	responses.set("503", ref("responses", "Unavailable"))
	responses.set("504", ref("responses", "Timeout"))
	o.set("responses", responses)
	return o
}

func methodRank(m string) int {
	i := slices.Index([]string{"get", "head", "post", "put", "patch", "delete", "options", "trace"}, m)
	if i < 0 {
		return 100
	}
	return i
}

// componentSchemas are the response schemas and the body schemas, by name.
func componentSchemas(schemas map[string]*schema, bodies map[string]json.RawMessage) obj {
	all := make(map[string]any, len(schemas)+len(bodies))
	for k, v := range schemas {
		all[k] = v
	}
	for k, v := range bodies {
		all[k] = v
	}
	return sorted(all)
}

// rebase moves a schema written to stand alone to base in the document:
// its own references ("#/$defs/item") would otherwise point at the
// document's root.
func rebase(raw json.RawMessage, base string) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	// walk visits a schema, or a list or map whose members are schemas
	// (byName: a map of names to schemas, such as properties).
	var walk func(v any, byName bool)
	walk = func(v any, byName bool) {
		switch v := v.(type) {
		case map[string]any:
			if byName {
				for _, e := range v {
					walk(e, false)
				}
				return
			}
			if _, ok := v["$id"]; ok {
				return // a resource of its own: its refs resolve against its $id
			}
			for k, e := range v {
				switch k {
				case "enum", "const", "default", "examples":
					continue // data, not schema
				case "properties", "patternProperties", "$defs", "definitions", "dependentSchemas":
					walk(e, true)
					continue
				}
				// JSON pointers only: "#item" names an $anchor, wherever it is.
				if r, ok := e.(string); ok && (k == "$ref" || k == "$dynamicRef") && strings.HasPrefix(r, "#/") {
					v[k] = base + r[1:]
					continue
				}
				walk(e, false)
			}
		case []any:
			for _, e := range v {
				walk(e, false)
			}
		}
	}
	walk(v, false)
	return json.Marshal(v)
}

func ref(kind, name string) obj { return obj{{"$ref", "#/components/" + kind + "/" + name}} }

// sorted lists a map's entries by key, for maps whose order means nothing.
func sorted[V any](m map[string]V) obj {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	o := make(obj, 0, len(keys))
	for _, k := range keys {
		o.set(k, m[k])
	}
	return o
}

func compactRaw(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// openAPIPath turns a chi route into an OpenAPI path: {id:[0-9]+} becomes
// {id}. It returns the parameter names in order and chi's patterns by name.
func openAPIPath(route string) (string, map[string]string, []string) {
	var b strings.Builder
	patterns := map[string]string{}
	var names []string
	for i := 0; i < len(route); i++ {
		if route[i] != '{' {
			b.WriteByte(route[i])
			continue
		}
		// chi allows braces inside a pattern ({id:[0-9]{1,3}}): count them.
		depth, end := 0, -1
		for j := i; j < len(route) && end < 0; j++ {
			switch route[j] {
			case '{':
				depth++
			case '}':
				if depth--; depth == 0 {
					end = j
				}
			}
		}
		if end < 0 {
			b.WriteString(route[i:])
			break
		}
		name, pattern, _ := strings.Cut(route[i+1:end], ":")
		names = append(names, name)
		if pattern != "" {
			patterns[name] = pattern
		}
		b.WriteString("{" + name + "}")
		i = end
	}
	return b.String(), patterns, names
}

// unnamed is path with its parameters' names left out: /c/{id} is /c/{}.
func unnamed(path string) string {
	var b strings.Builder
	for {
		open := strings.IndexByte(path, '{')
		end := strings.IndexByte(path[max(open, 0):], '}')
		if open < 0 || end < 0 {
			return b.String() + path
		}
		b.WriteString(path[:open+1] + "}")
		path = path[open+end+1:]
	}
}

func patternOf(params []aggregate.Param, name string) string {
	for _, p := range params {
		if p.Name == name {
			return p.Pattern
		}
	}
	return ""
}

func viewDescription(r bff.Route) string {
	var b strings.Builder
	fmt.Fprintf(&b, "View `%s`", r.View)
	if r.Source != "" {
		fmt.Fprintf(&b, ", defined at `%s`", r.Source)
	}
	b.WriteString(".\n\nUpstream calls, made in parallel unless one waits for another:\n")
	for _, c := range r.Calls {
		target := c.Path
		if c.Query != "" {
			target += "?" + c.Query
		}
		kind := "required"
		if c.Optional {
			kind = "optional"
		}
		fmt.Fprintf(&b, "\n- `%s`: %s %s `%s` (%s", c.Name, cmp.Or(c.Method, http.MethodGet), c.Upstream, target, kind)
		if c.ForEach != "" {
			fmt.Fprintf(&b, ", once per element of `%s`", c.ForEach)
		}
		if len(c.DependsOn) > 0 {
			fmt.Fprintf(&b, ", after %s", strings.Join(c.DependsOn, ", "))
		}
		b.WriteString(")")
	}
	b.WriteString("\n\nCache: " + cacheDescription(r.Cache) + ".")
	return b.String()
}

func cacheDescription(p aggregate.CachePolicy) string {
	if p.TTL <= 0 {
		return "not cached (`Cache-Control: no-store`)"
	}
	s := fmt.Sprintf("public, %s (`Cache-Control: public, max-age=%d`)", p.TTL, int(p.TTL/time.Second))
	if p.Scope == aggregate.ScopeUser {
		s = fmt.Sprintf("per caller, %s (`Cache-Control: private, max-age=%d`, `Vary` includes `Authorization`)", p.TTL, int(p.TTL/time.Second))
	}
	if p.StaleWhileRevalidate > 0 {
		s += fmt.Sprintf("; served stale for up to %s while it is refreshed", p.StaleWhileRevalidate)
	}
	if p.StaleIfError > 0 {
		s += fmt.Sprintf("; a copy up to %s past its TTL stands in when a fresh answer fails (marked in %s)", p.StaleIfError, bff.PartialHeader)
	}
	return s
}

func infoDescription(client string, shadowed []string) string {
	s := "The views of client `" + client + "`, generated from their definitions. " +
		"Every GET route also answers HEAD (same headers, no body); HEAD is not listed. " +
		"A route exists only for the methods listed: others get 405 (`" + bff.ProblemMethodNotAllowed + "`, with `Allow`). " +
		"Errors are RFC 9457 problem details (`application/problem+json`, schema `Problem`)."
	if len(shadowed) > 0 {
		s += "\n\nNot described, because OpenAPI cannot tell their paths from those of views described here: " + strings.Join(shadowed, "; ") + "."
	}
	return s
}

// namer hands out operation IDs ("web.home" gives webHome) and schema
// names (WebHome), unique within a document.
type namer struct{ ops, schemas map[string]bool }

func newNamer() *namer {
	return &namer{ops: map[string]bool{}, schemas: map[string]bool{"Problem": true}}
}

func (n *namer) operation(view string) string { return unique(n.ops, camel(view)) }

func (n *namer) schema(view string) string {
	c := camel(view)
	return unique(n.schemas, strings.ToUpper(c[:1])+c[1:])
}

func unique(taken map[string]bool, name string) string {
	out := name
	for i := 2; taken[out]; i++ {
		out = name + strconv.Itoa(i)
	}
	taken[out] = true
	return out
}

// camel joins a name's runs of letters and digits: "web.order_detail" is
// webOrderDetail.
func camel(name string) string {
	var b strings.Builder
	upper := false
	for _, r := range name {
		if r > unicode.MaxASCII || !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			upper = b.Len() > 0
			continue
		}
		if upper {
			r = unicode.ToUpper(r)
			upper = false
		} else if b.Len() == 0 {
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 || unicode.IsDigit(rune(b.String()[0])) {
		return "view" + strings.ToUpper(b.String()[:min(1, b.Len())]) + b.String()[min(1, b.Len()):]
	}
	return b.String()
}
