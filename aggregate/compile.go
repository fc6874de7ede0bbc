package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"hash/fnv"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Plan is a compiled, validated View, ready to run any number of times
// concurrently.
type Plan struct {
	view        View
	fingerprint string
	// sectionPrefix starts the keys of the view's kept sections.
	sectionPrefix string
	params        []compiledParam
	calls         []compiledCall
	shape         []node
	variants      [][]node // shapes by app version, after shape
	ranges        []versionRange
	fieldNames    []string // by node id
	bodySchema    *jsonschema.Schema
	intParams     []bool // by parameter index
	shapeFunc     ShapeFunc
	timeout       time.Duration
}

type compiledParam struct {
	name     string
	pattern  *regexp.Regexp
	run      *asciiRun // the pattern's fast form, if it has one
	query    bool
	claim    bool // a claim of the verified token: {auth.sub}
	inPath   bool // some call's path has it: empty, it would drop a segment
	isInt    bool
	min, max *int64
	def      *string
}

type compiledCall struct {
	Call
	forEach   *part // the list a fan-out walks, or nil
	index     int
	method    string
	path      template
	query     template
	deps      []int
	reads     []int // the deps whose answers its templates or for_each read
	dependent bool  // some other call waits for this one
}

// Catalog tells Compile what exists outside the view.
type Catalog struct {
	// Upstream reports whether an upstream of that name is configured.
	Upstream func(name string) bool
	// Shapers are the Go shaping functions views may name.
	Shapers map[string]ShapeFunc
}

// DefaultTimeout is a view's deadline when it sets none.
const DefaultTimeout = 3 * time.Second

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Compile validates v against cat and returns its Plan. Errors name the view
// and the offending field.
func Compile(v View, cat Catalog) (*Plan, error) {
	def := v
	def.Source, def.Lines = "", nil
	p := &Plan{view: v, timeout: v.Timeout, fingerprint: fingerprint(def)}
	p.sectionPrefix = "\x01" + p.fingerprint + "\x00"
	fail := func(field string, format string, args ...any) (*Plan, error) {
		return nil, fmt.Errorf("%sview %q: %s: %s", where(v, field), v.Name, field, fmt.Sprintf(format, args...))
	}
	if v.Name == "" {
		return fail("name", "is required")
	}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	switch v.Method {
	case "", http.MethodGet:
		p.view.Method = http.MethodGet
		if v.Body != nil || len(v.Invalidates) > 0 {
			return fail("body", "a GET view takes no body and invalidates nothing; a mutation is POST, PUT, PATCH or DELETE")
		}
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if v.Cache.TTL > 0 {
			return fail("cache", "a mutation's answer is not cached; name the views it changes in invalidates")
		}
		if v.Body != nil {
			if v.Body.MaxBytes < 0 {
				return fail("body.max_bytes", "must not be negative")
			}
			if len(v.Body.Schema) > 0 {
				sch, err := compileSchema(v.Body.Schema)
				if err != nil {
					return fail("body.schema", "%v", err)
				}
				p.bodySchema = sch
			}
		}
	default:
		return fail("method", "%q: want GET, POST, PUT, PATCH or DELETE", v.Method)
	}
	if !strings.HasPrefix(v.Route, "/") {
		return fail("route", "%q must start with '/'", v.Route)
	}
	switch v.Cache.Scope {
	case "":
		p.view.Cache.Scope = ScopePublic
	case ScopePublic, ScopeUser:
	default:
		return fail("cache.scope", "%q must be %q or %q", v.Cache.Scope, ScopePublic, ScopeUser)
	}
	if v.Cache.TTL < 0 {
		return fail("cache.ttl", "must not be negative")
	}
	if v.Cache.StaleWhileRevalidate < 0 {
		return fail("cache.stale_while_revalidate", "must not be negative")
	}
	if v.Cache.StaleIfError < 0 {
		return fail("cache.stale_if_error", "must not be negative")
	}
	if (v.Cache.StaleWhileRevalidate > 0 || v.Cache.StaleIfError > 0) && v.Cache.TTL == 0 {
		return fail("cache", "stale_while_revalidate and stale_if_error need a ttl: an uncached view has no copy to serve")
	}

	// Params: declared, unique, and exactly those of the route.
	routeParams := routeParamNames(v.Route)
	paramIndex := map[string]int{}
	for i, prm := range v.Params {
		field := fmt.Sprintf("params[%d]", i)
		if !tokenRE.MatchString(prm.Name) {
			return fail(field, "%q must be letters, digits, '_' or '-'", prm.Name)
		}
		field = "params." + prm.Name
		if _, dup := paramIndex[prm.Name]; dup {
			return fail(field, "%q is declared twice", prm.Name)
		}
		if _, inRoute := routeParams[prm.Name]; !inRoute {
			return fail(field, "%q is not a parameter of route %q", prm.Name, v.Route)
		}
		pattern := prm.Pattern
		if pattern == "" {
			pattern = `[^/]+`
		}
		re, err := compilePattern(pattern)
		if err != nil {
			return fail(field+".pattern", "%v", err)
		}
		paramIndex[prm.Name] = i
		p.params = append(p.params, compiledParam{name: prm.Name, pattern: re, run: fastForm(pattern)})
	}
	for name := range routeParams {
		if _, ok := paramIndex[name]; !ok {
			return fail("params", "route parameter %q is not declared (add it under params: %s: '<regexp>', or %s: {} for any one segment)", name, name, name)
		}
	}
	for i, q := range v.Query {
		field := fmt.Sprintf("query[%d]", i)
		if !tokenRE.MatchString(q.Name) {
			return fail(field, "%q must be letters, digits, '_' or '-'", q.Name)
		}
		field = "query." + q.Name
		if _, dup := paramIndex[q.Name]; dup {
			return fail(field, "%q is already a parameter of the view", q.Name)
		}
		cp, err := compileQueryParam(q)
		if err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				return fail(field+"."+fe.field, "%s", fe.msg)
			}
			return fail(field, "%v", err)
		}
		paramIndex[q.Name] = len(p.params)
		p.params = append(p.params, cp)
	}
	// {auth.sub} and the like: claims of the verified token, filled in
	// by the front after the parameters.
	for _, c := range v.Calls {
		for _, m := range claimRefRE.FindAllStringSubmatch(c.Path+" "+c.Query, -1) {
			name := "auth." + m[1]
			if _, ok := paramIndex[name]; ok {
				continue
			}
			if v.Auth.Mode != "required" {
				return fail("calls."+c.Name, "{%s}: a view reading the token's claims needs auth mode required", name)
			}
			switch {
			case v.Cache.Scope == ScopeUser:
			case v.Cache.TTL > 0 || v.Cache.Scope == ScopePublic:
				return fail("calls."+c.Name, "{%s}: the answer depends on who asks, so cache.scope must be %q", name, ScopeUser)
			default:
				// Uncached, but identical requests in flight still share
				// one execution: they must be the same caller's.
				p.view.Cache.Scope = ScopeUser
			}
			paramIndex[name] = len(p.params)
			p.params = append(p.params, compiledParam{name: name, claim: true, pattern: anyValueRE})
		}
	}
	switch v.Auth.Mode {
	case "", "none", "optional", "required":
	default:
		return fail("auth.mode", "%q: want none, optional or required", v.Auth.Mode)
	}
	if len(v.Auth.Scopes) > 0 && (v.Auth.Mode == "none" || v.Auth.Mode == "optional") {
		return fail("auth.scopes", "a scope needs a token, but auth mode %q lets callers without one in (use required, or leave the mode out)", v.Auth.Mode)
	}
	for _, prm := range p.params {
		p.intParams = append(p.intParams, prm.isInt)
	}

	// Calls: names first, so templates may refer to any call.
	if len(v.Calls) == 0 && v.ShapeFunc == "" {
		return fail("calls", "a view needs at least one call")
	}
	callIndex := map[string]int{}
	for i, c := range v.Calls {
		if !tokenRE.MatchString(c.Name) {
			return fail(fmt.Sprintf("calls[%d]", i), "%q must be letters, digits, '_' or '-'", c.Name)
		}
		if _, dup := callIndex[c.Name]; dup {
			return fail("calls."+c.Name, "%q is defined twice", c.Name)
		}
		if _, clash := paramIndex[c.Name]; clash {
			return fail("calls."+c.Name, "%q is also a parameter name", c.Name)
		}
		callIndex[c.Name] = i
	}
	for i, c := range v.Calls {
		cc, err := compileCall(i, c, paramIndex, callIndex, cat, p.view.Method != http.MethodGet)
		if err != nil {
			return fail("calls."+c.Name, "%v", err)
		}
		switch {
		case c.StaleIfError < 0:
			return fail("calls."+c.Name+".stale_if_error", "must not be negative")
		case c.StaleIfError > 0 && !c.Optional:
			return fail("calls."+c.Name+".stale_if_error",
				"applies to optional calls only: a required call's failure fails the view (a whole copy can stand in: cache.stale_if_error)")
		case c.StaleIfError > 0 && p.view.Cache.Scope == ScopeUser:
			return fail("calls."+c.Name+".stale_if_error", "a per-user view (cache.scope user) keeps no sections: one caller's answer must not stand in for another's")
		}
		p.calls = append(p.calls, cc)
	}
	for _, c := range p.calls {
		for _, part := range c.path.parts {
			if part.param >= 0 && !part.each {
				prm := &p.params[part.param]
				prm.inPath = true
				if prm.def != nil && *prm.def == "" {
					return fail("query."+prm.name+".default", `"" would leave an empty segment in the path of call %q`, c.Name)
				}
			}
		}
	}
	if cycle := findCycle(p.calls); cycle != "" {
		return fail("calls", "dependency cycle: %s", cycle)
	}
	for _, c := range p.calls {
		for _, d := range c.deps {
			p.calls[d].dependent = true
		}
	}

	// Shape.
	if v.ShapeFunc != "" {
		fn, ok := cat.Shapers[v.ShapeFunc]
		if !ok {
			return fail("shape_func", "no Go shaping function named %q is registered", v.ShapeFunc)
		}
		if len(v.Shape) > 0 {
			return fail("shape", "set either shape or shape_func, not both")
		}
		if len(v.Variants) > 0 {
			return fail("versions", "app-version variants reshape a declarative shape; a shape_func reads X-App-Version itself")
		}
		p.shapeFunc = fn
		return p, nil
	}
	if len(v.Shape) == 0 {
		return fail("shape", "is empty")
	}
	shape, err := compileFields(v.Shape, "shape", callIndex, paramIndex)
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return fail(fe.field, "%s", fe.msg)
		}
		return fail("shape", "%v", err)
	}
	p.shape = shape
	p.fieldNames = numberFields(p.shape, "", p.fieldNames)
	for i, vr := range v.Variants {
		field := fmt.Sprintf("versions[%d]", i)
		r, err := parseRange(vr.AppVersion)
		if err != nil {
			return fail(field+".app_version", "%v", err)
		}
		if len(vr.Shape) == 0 {
			return fail(field, "has no shape")
		}
		vs, err := compileFields(vr.Shape, field+".shape", callIndex, paramIndex)
		if err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				return fail(fe.field, "%s", fe.msg)
			}
			return fail(field+".shape", "%v", err)
		}
		p.ranges = append(p.ranges, r)
		p.variants = append(p.variants, vs)
		p.fieldNames = numberFields(vs, "", p.fieldNames)
	}
	return p, nil
}

// numberFields gives every node an id and names it by its place in the
// response ("orders[].total_cents"), for reports of fields upstreams did
// not send.
func numberFields(nodes []node, prefix string, names []string) []string {
	for i := range nodes {
		n := &nodes[i]
		name := prefix + n.name
		n.id, n.track = len(names), n.kind != kindConst && !n.omit && !n.hasDefault
		names = append(names, name)
		sub := name + "."
		if n.kind == kindList || n.combine == "concat" {
			sub = name + "[]."
		}
		names = numberFields(n.fields, sub, names)
	}
	return names
}

func compileQueryParam(q QueryParam) (compiledParam, error) {
	cp := compiledParam{name: q.Name, query: true, min: q.Min, max: q.Max, def: q.Default}
	switch q.Type {
	case "", "string":
		pattern := q.Pattern
		if pattern == "" {
			pattern = `(?s).{0,256}`
		}
		re, err := compilePattern(pattern)
		if err != nil {
			return cp, &fieldError{field: "pattern", msg: err.Error()}
		}
		cp.pattern, cp.run = re, fastForm(pattern)
		if q.Min != nil || q.Max != nil {
			return cp, &fieldError{field: "min", msg: "min and max bound int parameters; this one is a string (type: int?)"}
		}
	case "int":
		if q.Pattern != "" {
			return cp, &fieldError{field: "pattern", msg: "an int parameter has no pattern; bound it with min and max"}
		}
		cp.isInt, cp.pattern = true, intRE
		if q.Min != nil && q.Max != nil && *q.Min > *q.Max {
			return cp, &fieldError{field: "max", msg: fmt.Sprintf("%d is below min %d", *q.Max, *q.Min)}
		}
	default:
		return cp, &fieldError{field: "type", msg: fmt.Sprintf("%q must be string or int", q.Type)}
	}
	if q.Default != nil {
		if reason := cp.check(*q.Default); reason != "" {
			return cp, &fieldError{field: "default", msg: fmt.Sprintf("%q %s", *q.Default, reason)}
		}
	}
	return cp, nil
}

// intRE is a whole number as JSON writes it (no leading zeros: "007" is
// not JSON), which is how a param field puts it in the response.
var intRE = regexp.MustCompile(`^-?(?:0|[1-9][0-9]{0,17})$`)

// compileSchema compiles a view's body schema. Nothing is fetched: a $ref
// must point inside the schema.
func compileSchema(raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	if err := c.AddResource("view-body.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("view-body.json")
}

type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema %s: only references inside the view's schema are followed", url)
}

var (
	claimRefRE = regexp.MustCompile(`\{auth\.([A-Za-z0-9_]+)\}`)
	anyValueRE = regexp.MustCompile(`(?s)^.{1,256}$`)
)

// check says what is wrong with a value, or "".
func (cp *compiledParam) check(v string) string {
	// "." and ".." never name a resource, and some upstreams resolve them.
	if v == "." || v == ".." || !cp.matches(v) {
		if cp.isInt {
			return "is not a whole number (digits, no leading zeros)"
		}
		return "does not match its pattern"
	}
	if v == "" && cp.inPath {
		// "/items//details" asks the upstream for another resource.
		return "is empty, and it names a resource upstream"
	}
	if cp.isInt {
		n, _ := strconv.ParseInt(v, 10, 64)
		if cp.min != nil && n < *cp.min || cp.max != nil && n > *cp.max {
			return "is out of range " + bounds(cp.min, cp.max)
		}
	}
	return ""
}

func (cp *compiledParam) matches(v string) bool {
	if cp.run != nil {
		return cp.run.match(v)
	}
	return cp.pattern.MatchString(v)
}

func fastForm(pattern string) *asciiRun {
	if r, ok := parseASCIIRun(pattern); ok {
		return &r
	}
	return nil
}

func bounds(lo, hi *int64) string {
	s := func(p *int64, inf string) string {
		if p == nil {
			return inf
		}
		return strconv.FormatInt(*p, 10)
	}
	return s(lo, "-inf") + ".." + s(hi, "+inf")
}

func compileCall(i int, c Call, params, calls map[string]int, cat Catalog, mutation bool) (compiledCall, error) {
	cc := compiledCall{Call: c, index: i, method: c.Method}
	if cc.method == "" {
		cc.method = http.MethodGet
	}
	switch cc.method {
	case http.MethodGet:
		if c.Body != "" {
			return cc, errors.New("a GET call sends no body")
		}
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if !mutation {
			return cc, fmt.Errorf("method %s: only a mutation view (method POST, PUT, PATCH or DELETE) changes things upstream", c.Method)
		}
		if c.ForEach != "" {
			return cc, errors.New("a mutation call cannot fan out")
		}
	default:
		return cc, fmt.Errorf("method %q: want GET, POST, PUT, PATCH or DELETE", c.Method)
	}
	if c.Body != "" && c.Body != "request" {
		return cc, fmt.Errorf("body %q: the one body a call can send is \"request\", the client's", c.Body)
	}
	if c.Upstream == "" {
		return cc, errors.New("upstream is required")
	}
	if cat.Upstream != nil && !cat.Upstream(c.Upstream) {
		return cc, fmt.Errorf("upstream %q is not configured (add it under upstreams: in the config, with its url)", c.Upstream)
	}
	if c.Timeout < 0 {
		return cc, errors.New("timeout must not be negative")
	}
	deps, reads := map[int]bool{}, map[int]bool{}
	resolve := func(ref string) (part, error) {
		if ref == "each" {
			if c.ForEach == "" {
				return part{}, errors.New("{each}: only a call with for_each has an element")
			}
			return part{param: -1, call: -1, each: true}, nil
		}
		if j, ok := params[ref]; ok {
			return part{param: j, call: -1}, nil
		}
		name, path, _ := strings.Cut(ref, ".")
		j, ok := calls[name]
		if !ok {
			return part{}, fmt.Errorf("{%s}: no parameter or call named %q (%s)", ref, name, known(params, calls))
		}
		if j == i {
			return part{}, fmt.Errorf("{%s}: a call cannot refer to itself", ref)
		}
		if path == "" {
			return part{}, fmt.Errorf("{%s}: name a value inside call %q, e.g. {%s.id}", ref, name, name)
		}
		deps[j], reads[j] = true, true
		return part{param: -1, call: j, path: path}, nil
	}
	if c.ForEach != "" {
		ref := strings.Trim(strings.TrimSpace(c.ForEach), "{}")
		p, err := resolve(ref)
		if err != nil || p.call < 0 {
			return cc, fmt.Errorf("for_each: %q must name a list in an earlier call, e.g. order.items.#.sku", c.ForEach)
		}
		cc.forEach = &p
		if c.MaxEach < 0 || c.Concurrency < 0 {
			return cc, errors.New("max_each and concurrency must not be negative")
		}
		if cc.MaxEach == 0 {
			cc.MaxEach = 50
		}
		if cc.Concurrency == 0 {
			cc.Concurrency = 8
		}
	} else if c.MaxEach != 0 || c.Concurrency != 0 {
		return cc, errors.New("max_each and concurrency apply to a call with for_each")
	}
	var err error
	if cc.path, err = parseTemplate(c.Path, resolve); err != nil {
		return cc, fmt.Errorf("path: %w", err)
	}
	if err := checkPathLiterals(c.Path, cc.path); err != nil {
		return cc, fmt.Errorf("path: %w", err)
	}
	if cc.query, err = parseTemplate(c.Query, resolve); err != nil {
		return cc, fmt.Errorf("query: %w", err)
	}
	for _, lit := range cc.query.parts {
		if strings.ContainsAny(lit.literal, "#? ") {
			return cc, fmt.Errorf("query: %q must be an encoded query string without '?', '#' or spaces", c.Query)
		}
	}
	if cc.forEach != nil && !usesEach(cc.path) && !usesEach(cc.query) {
		return cc, errors.New("for_each: put {each} in path or query, where each element goes")
	}
	for _, name := range c.DependsOn {
		j, ok := calls[name]
		if !ok {
			return cc, fmt.Errorf("depends_on: no call named %q (calls: %s)", name, inOrder(calls))
		}
		if j == i {
			return cc, errors.New("depends_on: a call cannot depend on itself")
		}
		deps[j] = true
	}
	for j := range deps {
		cc.deps = append(cc.deps, j)
	}
	for j := range reads {
		cc.reads = append(cc.reads, j)
	}
	return cc, nil
}

// checkPathLiterals rejects templates whose fixed text could leave the
// upstream's path prefix or smuggle a query.
func checkPathLiterals(raw string, t template) error {
	if !strings.HasPrefix(raw, "/") {
		return fmt.Errorf("%q must start with '/'", raw)
	}
	for _, p := range t.parts {
		if strings.ContainsAny(p.literal, "?#\\ ") {
			return fmt.Errorf("%q: put the query in query, and no '#', '\\' or spaces", raw)
		}
	}
	for _, seg := range strings.Split(raw, "/") {
		// Servers decode before they resolve: ".%2e" is ".." to many.
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return fmt.Errorf("%q: %v", raw, err)
		}
		if dec == "." || dec == ".." {
			return fmt.Errorf("%q: dot segments (. or ..) could leave the upstream's path prefix; name the path without them", raw)
		}
	}
	return nil
}

// known lists the names a template may refer to, for error messages.
func known(params, calls map[string]int) string {
	return "parameters: " + inOrder(params) + "; calls: " + inOrder(calls)
}

// inOrder lists the names of m (name to definition index) in definition
// order, or "none".
func inOrder(m map[string]int) string {
	out := make([]string, 0, len(m))
	for k, i := range m {
		out = append(out, fmt.Sprintf("%03d%s", i, k))
	}
	sort.Strings(out)
	for i := range out {
		out[i] = out[i][3:]
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// findCycle returns a readable cycle, or "".
func findCycle(calls []compiledCall) string {
	const (
		unseen = iota
		active
		finished
	)
	state := make([]int, len(calls))
	var stack []int
	var visit func(i int) string
	visit = func(i int) string {
		state[i] = active
		stack = append(stack, i)
		for _, d := range calls[i].deps {
			switch state[d] {
			case active:
				var names []string
				for k := len(stack) - 1; k >= 0; k-- {
					names = append(names, calls[stack[k]].Name)
					if stack[k] == d {
						break
					}
				}
				return strings.Join(names, " -> ") + " -> " + calls[i].Name
			case unseen:
				if c := visit(d); c != "" {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = finished
		return ""
	}
	for i := range calls {
		if state[i] == unseen {
			if c := visit(i); c != "" {
				return c
			}
		}
	}
	return ""
}

func routeParamNames(route string) map[string]struct{} {
	names := map[string]struct{}{}
	for {
		open := strings.IndexByte(route, '{')
		if open < 0 {
			return names
		}
		end := strings.IndexByte(route[open:], '}')
		if end < 0 {
			return names
		}
		name, _, _ := strings.Cut(route[open+1:open+end], ":") // chi's {name:regexp}
		names[name] = struct{}{}
		route = route[open+end+1:]
	}
}

// node is a compiled Field.
type node struct {
	name       string
	key        []byte // `"name":`
	kind       nodeKind
	call       int    // top level: the source call
	path       string // gjson path; "" is the source itself
	fields     []node
	limit      int
	literal    []byte // Const
	missing    []byte // written when the value is absent
	combine    string // kindCombine: concat, first or merge
	param      int    // kindParam: index in Input.Params
	hasDefault bool
	sources    []node // kindCombine: value nodes, one per source
	// plainKey: path is one object key, found in the parent's single pass.
	plainKey bool
	omit     bool // leave the key out when the value is missing
	// id indexes Plan.fieldNames; track says a missing value is worth
	// noting (no default, not omitted: the view expects the upstream to send it).
	id    int
	track bool
}

type nodeKind int

const (
	kindValue nodeKind = iota
	kindObject
	kindList
	kindCount
	kindConst
	kindCombine
	kindParam
)

// compileFields compiles one object's fields. calls is non-nil only at the
// top level, where From starts with a call name.
func compileFields(fields []Field, prefix string, calls, params map[string]int) ([]node, error) {
	seen := map[string]bool{}
	out := make([]node, 0, len(fields))
	for i, f := range fields {
		if f.Name == "" {
			return nil, &fieldError{fmt.Sprintf("%s[%d]", prefix, i), "name is required"}
		}
		at := prefix + "." + f.Name
		if seen[f.Name] {
			msg := fmt.Sprintf("the key %q is written twice", f.Name)
			if calls != nil {
				msg += "; to build one key from several calls, say how: concat, first or merge"
			}
			return nil, &fieldError{at, msg}
		}
		seen[f.Name] = true
		key, _ := json.Marshal(f.Name)
		n := node{name: f.Name, key: append(key, ':'), call: -1, limit: f.Limit}
		if f.Limit < 0 {
			return nil, &fieldError{at, "limit must not be negative"}
		}
		if f.Param != "" {
			j, ok := params[f.Param]
			switch {
			case calls == nil:
				return nil, &fieldError{at, "param applies at the top level of shape"}
			case !ok:
				return nil, &fieldError{at, fmt.Sprintf("param %q: the view has no such parameter", f.Param)}
			case f.From != "" || f.List || f.Count || len(f.Const) > 0 || len(f.Fields) > 0 || f.Combine != "":
				return nil, &fieldError{at, "param writes the parameter's value: no from, list, count, const, fields or combine"}
			}
			n.kind, n.param = kindParam, j
			out = append(out, n)
			continue
		}
		if f.Combine != "" || len(f.Sources) > 0 {
			cn, err := compileCombine(f, at, n, calls)
			if err != nil {
				return nil, err
			}
			out = append(out, cn)
			continue
		}
		from := f.From
		if from == "" {
			from = f.Name
		}
		if calls != nil && len(f.Const) == 0 {
			name, path, _ := strings.Cut(from, ".")
			j, ok := calls[name]
			if !ok {
				return nil, &fieldError{at, fmt.Sprintf("from %q: no call named %q (calls: %s)", from, name, inOrder(calls))}
			}
			n.call, n.path = j, path
		} else {
			n.path = from
		}
		n.plainKey = isPlainKey(n.path)
		switch {
		case len(f.Const) > 0:
			if !json.Valid(f.Const) {
				return nil, &fieldError{at, "const is not valid JSON"}
			}
			n.kind, n.literal = kindConst, compact(f.Const)
		case f.Count:
			if f.List || len(f.Fields) > 0 {
				return nil, &fieldError{at, "count cannot have fields or list"}
			}
			n.kind, n.missing = kindCount, []byte("0")
		case f.List:
			n.kind, n.missing = kindList, []byte("[]")
		case len(f.Fields) > 0:
			n.kind, n.missing = kindObject, []byte("null")
		default:
			n.kind, n.missing = kindValue, []byte("null")
		}
		if f.Limit > 0 && n.kind != kindList {
			return nil, &fieldError{at, "limit applies to lists only"}
		}
		if f.Omit && (len(f.Default) > 0 || len(f.Const) > 0) {
			return nil, &fieldError{at, "omit leaves a missing value out; it cannot also have a default or be a const"}
		}
		n.omit = f.Omit
		if len(f.Default) > 0 {
			if !json.Valid(f.Default) {
				return nil, &fieldError{at, "default is not valid JSON"}
			}
			n.missing, n.hasDefault = compact(f.Default), true
		}
		if len(f.Fields) > 0 {
			sub, err := compileFields(f.Fields, at+".fields", nil, nil)
			if err != nil {
				return nil, err
			}
			n.fields = sub
		}
		out = append(out, n)
	}
	return out, nil
}

// compileCombine compiles a key written from several sources.
func compileCombine(f Field, at string, n node, calls map[string]int) (node, error) {
	switch {
	case calls == nil:
		return n, &fieldError{at, f.Combine + " applies at the top level of shape, where sources name calls"}
	case f.Combine != "concat" && f.Combine != "first" && f.Combine != "merge":
		return n, &fieldError{at, fmt.Sprintf("combine %q: want concat, first or merge", f.Combine)}
	case len(f.Sources) < 2:
		return n, &fieldError{at, f.Combine + " needs two or more sources"}
	case f.From != "" || f.List || f.Count || len(f.Const) > 0:
		return n, &fieldError{at, f.Combine + " takes its values from its sources: no from, list, count or const"}
	case f.Combine == "merge" && (f.Limit > 0 || len(f.Fields) > 0):
		return n, &fieldError{at, "merge copies objects whole: no fields or limit"}
	case f.Combine == "first" && f.Limit > 0:
		return n, &fieldError{at, "limit applies to lists only"}
	case f.Omit && len(f.Default) > 0:
		return n, &fieldError{at, "omit leaves a missing value out; it cannot also have a default or be a const"}
	}
	n.kind, n.combine, n.omit, n.missing = kindCombine, f.Combine, f.Omit, []byte("null")
	if f.Combine == "concat" {
		n.missing = []byte("[]")
	}
	if len(f.Default) > 0 {
		if !json.Valid(f.Default) {
			return n, &fieldError{at, "default is not valid JSON"}
		}
		n.missing, n.hasDefault = compact(f.Default), true
	}
	for _, src := range f.Sources {
		name, path, _ := strings.Cut(src, ".")
		j, ok := calls[name]
		if !ok {
			return n, &fieldError{at, fmt.Sprintf("source %q: no call named %q (calls: %s)", src, name, inOrder(calls))}
		}
		n.sources = append(n.sources, node{call: j, path: path, plainKey: isPlainKey(path), kind: kindValue, missing: []byte("null")})
	}
	if len(f.Fields) > 0 {
		sub, err := compileFields(f.Fields, at+".fields", nil, nil)
		if err != nil {
			return n, err
		}
		n.fields = sub
	}
	return n, nil
}

func compact(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// isPlainKey reports whether a gjson path is just one key, with none of the
// characters gjson gives a meaning.
func isPlainKey(path string) bool {
	// An all-digit key is an array index to gjson: not for the object scanner.
	if strings.Trim(path, "0123456789") == "" {
		return false
	}
	return !strings.ContainsAny(path, `.*?#@|\!=<>%[]{}()"`)
}

// fingerprint identifies a definition: the same on every parse of the same
// file and on every replica, so a reload or a peer keeps using its entries.
// JSON, not %#v, which prints the addresses of pointer fields.
func fingerprint(v View) string {
	h := fnv.New64a()
	b, err := json.Marshal(v)
	if err != nil { // a malformed const or schema: Compile refuses the view
		b = []byte(fmt.Sprintf("%#v", v))
	}
	_, _ = h.Write(b)
	return strconv.FormatUint(h.Sum64(), 36)
}

func usesEach(t template) bool {
	for _, p := range t.parts {
		if p.each {
			return true
		}
	}
	return false
}

// fieldError is a mistake in one field of a shape.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// Where is the place to report a mistake in one of v's fields (such as
// "calls.user.upstream"), as "file:line: ": the line of the most precise
// field the view's file recorded, else the view's own line. Empty for a
// view written in Go.
func Where(v View, field string) string { return where(v, field) }

func where(v View, field string) string {
	if v.Source == "" {
		return ""
	}
	colon := strings.LastIndexByte(v.Source, ':')
	if colon < 0 || v.Lines == nil {
		return v.Source + ": "
	}
	file, line := v.Source[:colon], v.Source[colon+1:]
	for f := field; f != ""; {
		if n, ok := v.Lines[f]; ok {
			return file + ":" + strconv.Itoa(n) + ": "
		}
		i := strings.LastIndexByte(f, '.')
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return file + ":" + line + ": "
}

// compilePattern compiles a parameter's pattern to match whole values. A
// mistake is reported in the pattern as written, without the anchoring.
func compilePattern(pattern string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return regexp.Compile(`^(?:` + pattern + `)$`)
}
