// Package viewfile reads views from YAML, the format frontend teams write
// views in. Parse turns one file into aggregate.View values; it checks the
// file's structure (unknown keys, wrong types, bad durations) and reports
// every mistake with the file, line, view and field. What a view means (do
// its upstreams and references exist, is there a cycle) is checked by
// aggregate.Compile, whose errors carry the view's Source.
//
// It does not compile, serve or watch files.
package viewfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bffproxy/bff/internal/yamlstrict"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"go.yaml.in/yaml/v3"
)

// Error is a mistake in a view file.
type Error struct {
	File  string
	Line  int
	View  string // empty when the mistake is outside any view
	Field string // dotted path of the field, e.g. calls.user.timeout
	Msg   string
}

func (e *Error) Error() string {
	return yamlstrict.Message(e.File, e.Line, "view", e.View, e.Field, e.Msg)
}

// Parse reads the views of one file:
//
//	views:
//	  - name: web.home
//	    route: /home/{id}
//	    ...
//
// The README has the full reference.
func Parse(file string, data []byte) ([]aggregate.View, error) {
	entries, err := ParseEntries(file, data)
	if err != nil {
		return nil, err
	}
	views := make([]aggregate.View, len(entries))
	for i, e := range entries {
		views[i] = e.View
	}
	return views, nil
}

// Entry is a view and the client it belongs to: the view's own `client`
// key, else the file's top-level `client`, else empty.
type Entry struct {
	Client string
	View   aggregate.View
}

// ParseEntries reads a file whose views may name their client, as files in
// a views directory do:
//
//	client: web        # the default for the views below
//	views:
//	  - name: web.profile
//	    client: web    # or per view
func ParseEntries(file string, data []byte) ([]Entry, error) {
	p := &parser{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // empty file
			return nil, nil
		}
		line, msg := yamlstrict.Line(err)
		return nil, &Error{File: file, Line: line, Msg: msg}
	}
	var second yaml.Node
	if err := dec.Decode(&second); !errors.Is(err, io.EOF) {
		line := second.Line
		if err != nil {
			line, _ = yamlstrict.Line(err)
		}
		return nil, &Error{File: file, Line: line, Msg: "one document per file: put every view under the one views: list"}
	}
	if doc.Kind == 0 {
		return nil, nil
	}
	var fileClient string
	var entries []Entry
	p.mapping(doc.Content[0], "", map[string]func(*yaml.Node){
		"client": func(n *yaml.Node) { p.str(n, "client", &fileClient) },
		"views": func(n *yaml.Node) {
			if !p.is(n, yaml.SequenceNode, "views", "a list of views") {
				return
			}
			for _, vn := range n.Content {
				entries = append(entries, p.view(vn)...)
			}
		},
	})
	if p.err != nil {
		return nil, p.err
	}
	for i := range entries {
		if entries[i].Client == "" {
			entries[i].Client = fileClient
		}
	}
	return entries, nil
}

// parser keeps the first error; later checks still run but do not replace it.
type parser struct {
	file    string
	current string         // the view being read
	lines   map[string]int // its fields' lines, for aggregate.View.Lines
	err     error
}

func (p *parser) record(field string, line int) {
	if p.lines != nil && field != "" {
		p.lines[field] = line
	}
}

func (p *parser) fail(n *yaml.Node, field, format string, args ...any) {
	if p.err == nil {
		p.err = &Error{File: p.file, Line: n.Line, View: p.current, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
}

func (p *parser) integer(n *yaml.Node, field string, dst *int) {
	if !p.is(n, yaml.ScalarNode, field, "a whole number") {
		return
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 0 {
		p.fail(n, field, "want a whole number >= 0, found %q", n.Value)
		return
	}
	*dst = v
}

func (p *parser) int64(n *yaml.Node, field string) *int64 {
	if !p.is(n, yaml.ScalarNode, field, "a whole number") {
		return nil
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		p.fail(n, field, "want a whole number, found %q", n.Value)
		return nil
	}
	return &v
}

func (p *parser) strings(n *yaml.Node, field string, dst *[]string) {
	if !p.is(n, yaml.SequenceNode, field, "a list of names") {
		return
	}
	for _, c := range n.Content {
		var s string
		p.str(c, field, &s)
		*dst = append(*dst, s)
	}
}

// jsonValue turns any YAML value into the JSON a Const or Default writes.
func (p *parser) jsonValue(n *yaml.Node, field string, dst *json.RawMessage) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		p.fail(n, field, "anchors and aliases are not supported in view files")
		return
	}
	var v any
	if err := n.Decode(&v); err != nil {
		p.fail(n, field, "%v", err)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.fail(n, field, "cannot be written as JSON: %v", err)
		return
	}
	*dst = b
}

// projection is one client's shape of a view whose calls several clients share.
type projection struct {
	client   string
	shape    []aggregate.Field
	variants []aggregate.Variant
}

// view reads one view: one entry, or one per client of its projections.
func (p *parser) view(n *yaml.Node) []Entry {
	var v aggregate.View
	var client string
	var projections []projection
	v.Source = fmt.Sprintf("%s:%d", p.file, n.Line)
	// Name first, so errors in the other keys can name the view.
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode {
				p.current = n.Content[i+1].Value
			}
		}
	}
	p.lines = map[string]int{}
	defer func() { p.current, p.lines = "", nil }()
	errBefore := p.err
	p.mapping(n, "", map[string]func(*yaml.Node){
		"name":       func(c *yaml.Node) { p.str(c, "name", &v.Name) },
		"client":     func(c *yaml.Node) { p.str(c, "client", &client) },
		"method":     func(c *yaml.Node) { p.str(c, "method", &v.Method) },
		"route":      func(c *yaml.Node) { p.str(c, "route", &v.Route) },
		"timeout":    func(c *yaml.Node) { p.duration(c, "timeout", &v.Timeout) },
		"shape_func": func(c *yaml.Node) { p.str(c, "shape_func", &v.ShapeFunc) },
		"params": func(c *yaml.Node) {
			p.pairs(c, "params", func(name string, pn *yaml.Node) {
				prm := aggregate.Param{Name: name}
				field := join("params", name)
				if pn.Kind == yaml.ScalarNode {
					p.str(pn, field, &prm.Pattern)
				} else {
					p.mapping(pn, field, map[string]func(*yaml.Node){
						"pattern": func(x *yaml.Node) { p.str(x, join(field, "pattern"), &prm.Pattern) },
					})
				}
				v.Params = append(v.Params, prm)
			})
		},
		"query": func(c *yaml.Node) {
			p.pairs(c, "query", func(name string, qn *yaml.Node) {
				q := aggregate.QueryParam{Name: name}
				field := join("query", name)
				p.mapping(qn, field, map[string]func(*yaml.Node){
					"type":    func(x *yaml.Node) { p.str(x, join(field, "type"), &q.Type) },
					"pattern": func(x *yaml.Node) { p.str(x, join(field, "pattern"), &q.Pattern) },
					"min":     func(x *yaml.Node) { q.Min = p.int64(x, join(field, "min")) },
					"max":     func(x *yaml.Node) { q.Max = p.int64(x, join(field, "max")) },
					"default": func(x *yaml.Node) {
						var d string
						if p.is(x, yaml.ScalarNode, join(field, "default"), "a value") {
							d = x.Value
							q.Default = &d
						}
					},
				})
				v.Query = append(v.Query, q)
			})
		},
		"auth": func(c *yaml.Node) {
			if c.Kind == yaml.ScalarNode {
				p.str(c, "auth", &v.Auth.Mode)
				return
			}
			p.mapping(c, "auth", map[string]func(*yaml.Node){
				"mode":   func(x *yaml.Node) { p.str(x, "auth.mode", &v.Auth.Mode) },
				"scopes": func(x *yaml.Node) { p.strings(x, "auth.scopes", &v.Auth.Scopes) },
			})
		},
		"body": func(c *yaml.Node) {
			v.Body = &aggregate.BodyPolicy{}
			p.mapping(c, "body", map[string]func(*yaml.Node){
				"schema": func(x *yaml.Node) { p.jsonValue(x, "body.schema", &v.Body.Schema) },
				"max_bytes": func(x *yaml.Node) {
					var n int
					p.integer(x, "body.max_bytes", &n)
					v.Body.MaxBytes = int64(n)
				},
			})
		},
		"invalidates": func(c *yaml.Node) { p.strings(c, "invalidates", &v.Invalidates) },
		"query_unknown": func(c *yaml.Node) {
			var mode string
			p.str(c, "query_unknown", &mode)
			switch mode {
			case "ignore":
			case "reject":
				v.RejectUnknownQuery = true
			default:
				p.fail(c, "query_unknown", "want ignore or reject, found %q", mode)
			}
		},
		"cache": func(c *yaml.Node) {
			p.mapping(c, "cache", map[string]func(*yaml.Node){
				"ttl": func(x *yaml.Node) { p.duration(x, "cache.ttl", &v.Cache.TTL) },
				"stale_while_revalidate": func(x *yaml.Node) {
					p.duration(x, "cache.stale_while_revalidate", &v.Cache.StaleWhileRevalidate)
				},
				"stale_if_error": func(x *yaml.Node) { p.duration(x, "cache.stale_if_error", &v.Cache.StaleIfError) },
				"scope": func(x *yaml.Node) {
					var s string
					p.str(x, "cache.scope", &s)
					v.Cache.Scope = aggregate.Scope(s)
				},
			})
		},
		"calls": func(c *yaml.Node) {
			p.pairs(c, "calls", func(name string, cn *yaml.Node) {
				v.Calls = append(v.Calls, p.call(name, cn))
			})
		},
		"shape": func(c *yaml.Node) { v.Shape = p.shape(c, "shape") },
		"versions": func(c *yaml.Node) {
			v.Variants = p.variants(c, "versions")
		},
		"projections": func(c *yaml.Node) {
			p.pairs(c, "projections", func(name string, pn *yaml.Node) {
				field := join("projections", name)
				pr := projection{client: name}
				p.mapping(pn, field, map[string]func(*yaml.Node){
					"shape":    func(x *yaml.Node) { pr.shape = p.shape(x, join(field, "shape")) },
					"versions": func(x *yaml.Node) { pr.variants = p.variants(x, join(field, "versions")) },
				})
				projections = append(projections, pr)
			})
		},
	})
	if v.Name == "" && p.err == errBefore {
		p.fail(n, "name", "every view needs a name")
	}
	if len(projections) > 0 && (client != "" || len(v.Shape) > 0 || len(v.Variants) > 0 || v.ShapeFunc != "") {
		p.fail(n, "projections", "a view with projections has its shapes there: move client, shape, versions and shape_func into them")
	}
	if p.err != errBefore {
		return nil
	}
	v.Lines = p.lines
	if len(projections) == 0 {
		return []Entry{{Client: client, View: v}}
	}
	// One view per client, named after it, with the calls shared and the
	// lines of its own projection's fields where compile errors look for them.
	entries := make([]Entry, 0, len(projections))
	for _, pr := range projections {
		pv := v
		pv.Name = pr.client + "." + v.Name
		pv.Shape, pv.Variants = pr.shape, pr.variants
		pv.Lines = map[string]int{}
		prefix := "projections." + pr.client + "."
		for field, line := range v.Lines {
			if rest, ok := strings.CutPrefix(field, prefix); ok {
				pv.Lines[rest] = line
			} else if !strings.HasPrefix(field, "projections.") {
				pv.Lines[field] = line
			}
		}
		entries = append(entries, Entry{Client: pr.client, View: pv})
	}
	return entries
}

func (p *parser) shape(n *yaml.Node, field string) []aggregate.Field {
	var fields []aggregate.Field
	p.pairs(n, field, func(name string, fn *yaml.Node) {
		fields = append(fields, p.field(name, fn, join(field, name)))
	})
	return fields
}

// variants reads a list of {app_version, shape}.
func (p *parser) variants(n *yaml.Node, field string) []aggregate.Variant {
	if !p.is(n, yaml.SequenceNode, field, "a list of {app_version, shape}") {
		return nil
	}
	var out []aggregate.Variant
	for i, vn := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		p.record(f, vn.Line)
		var vr aggregate.Variant
		p.mapping(vn, f, map[string]func(*yaml.Node){
			"app_version": func(x *yaml.Node) { p.str(x, join(f, "app_version"), &vr.AppVersion) },
			"shape":       func(x *yaml.Node) { vr.Shape = p.shape(x, join(f, "shape")) },
		})
		out = append(out, vr)
	}
	return out
}

// pairs walks a mapping whose keys are names the user chooses, in order.
func (p *parser) pairs(n *yaml.Node, field string, each func(name string, v *yaml.Node)) {
	hint := ""
	if field == "shape" || strings.HasSuffix(field, ".shape") {
		hint = "; to build one key from several calls, say how: concat, first or merge"
	}
	p.reader().Pairs(n, field, hint, func(k, v *yaml.Node) { each(k.Value, v) })
}

func (p *parser) call(name string, n *yaml.Node) aggregate.Call {
	c := aggregate.Call{Name: name}
	field := join("calls", name)
	p.mapping(n, field, map[string]func(*yaml.Node){
		"upstream": func(x *yaml.Node) { p.str(x, join(field, "upstream"), &c.Upstream) },
		"method":   func(x *yaml.Node) { p.str(x, join(field, "method"), &c.Method) },
		"path":     func(x *yaml.Node) { p.str(x, join(field, "path"), &c.Path) },
		"query":    func(x *yaml.Node) { p.str(x, join(field, "query"), &c.Query) },
		"optional": func(x *yaml.Node) { p.boolean(x, join(field, "optional"), &c.Optional) },
		"timeout":  func(x *yaml.Node) { p.duration(x, join(field, "timeout"), &c.Timeout) },
		"body":     func(x *yaml.Node) { p.str(x, join(field, "body"), &c.Body) },
		"stale_if_error": func(x *yaml.Node) {
			p.duration(x, join(field, "stale_if_error"), &c.StaleIfError)
		},
		"depends_on":  func(x *yaml.Node) { p.strings(x, join(field, "depends_on"), &c.DependsOn) },
		"for_each":    func(x *yaml.Node) { p.str(x, join(field, "for_each"), &c.ForEach) },
		"max_each":    func(x *yaml.Node) { p.integer(x, join(field, "max_each"), &c.MaxEach) },
		"concurrency": func(x *yaml.Node) { p.integer(x, join(field, "concurrency"), &c.Concurrency) },
	})
	return c
}

// field reads one output key. A bare string is where the value comes from;
// a mapping names its kind with exactly one of from, list, count or const.
func (p *parser) field(name string, n *yaml.Node, field string) aggregate.Field {
	f := aggregate.Field{Name: name}
	if n.Kind == yaml.ScalarNode {
		p.str(n, field, &f.From)
		return f
	}
	var kinds []string
	p.mapping(n, field, map[string]func(*yaml.Node){
		"from": func(x *yaml.Node) { kinds = append(kinds, "from"); p.str(x, join(field, "from"), &f.From) },
		"list": func(x *yaml.Node) {
			kinds = append(kinds, "list")
			f.List = true
			p.str(x, join(field, "list"), &f.From)
		},
		"count": func(x *yaml.Node) {
			kinds = append(kinds, "count")
			f.Count = true
			p.str(x, join(field, "count"), &f.From)
		},
		"const":   func(x *yaml.Node) { kinds = append(kinds, "const"); p.jsonValue(x, join(field, "const"), &f.Const) },
		"concat":  func(x *yaml.Node) { kinds = append(kinds, "concat"); p.combine(x, join(field, "concat"), "concat", &f) },
		"first":   func(x *yaml.Node) { kinds = append(kinds, "first"); p.combine(x, join(field, "first"), "first", &f) },
		"merge":   func(x *yaml.Node) { kinds = append(kinds, "merge"); p.combine(x, join(field, "merge"), "merge", &f) },
		"param":   func(x *yaml.Node) { kinds = append(kinds, "param"); p.str(x, join(field, "param"), &f.Param) },
		"default": func(x *yaml.Node) { p.jsonValue(x, join(field, "default"), &f.Default) },
		"omit":    func(x *yaml.Node) { p.boolean(x, join(field, "omit"), &f.Omit) },
		"limit":   func(x *yaml.Node) { p.integer(x, join(field, "limit"), &f.Limit) },
		"fields": func(x *yaml.Node) {
			if !p.is(x, yaml.SequenceNode, join(field, "fields"), "a list of fields") {
				return
			}
			for _, item := range x.Content {
				f.Fields = append(f.Fields, p.subfield(item, join(field, "fields")))
			}
		},
	})
	if len(kinds) > 1 {
		p.fail(n, field, "use one of from, list, count, const, param, concat, first or merge, not %s", strings.Join(kinds, " and "))
	}
	return f
}

// combine reads the sources of a key written from several calls.
func (p *parser) combine(n *yaml.Node, field, how string, f *aggregate.Field) {
	f.Combine = how
	p.strings(n, field, &f.Sources)
}

// subfield reads an item of a fields list: a bare name picks that key; a
// one-key mapping names the output key and says where it comes from.
func (p *parser) subfield(n *yaml.Node, field string) aggregate.Field {
	switch {
	case n.Kind == yaml.ScalarNode:
		f := aggregate.Field{}
		p.str(n, field, &f.Name)
		p.record(join(field, f.Name), n.Line)
		return f
	case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Kind == yaml.ScalarNode:
		name := n.Content[0].Value
		p.record(join(field, name), n.Content[0].Line)
		return p.field(name, n.Content[1], join(field, name))
	}
	p.fail(n, field, "want a field name, or one `name: source` pair")
	return aggregate.Field{}
}

// The strict YAML reading both parsers share.
func (p *parser) is(n *yaml.Node, kind yaml.Kind, field, want string) bool {
	return p.reader().Is(n, kind, field, want)
}
func (p *parser) mapping(n *yaml.Node, field string, handlers map[string]func(*yaml.Node)) {
	p.reader().Mapping(n, field, handlers)
}
func (p *parser) str(n *yaml.Node, field string, dst *string)   { p.reader().Str(n, field, dst) }
func (p *parser) boolean(n *yaml.Node, field string, dst *bool) { p.reader().Bool(n, field, dst) }
func (p *parser) duration(n *yaml.Node, field string, dst *time.Duration) {
	p.reader().Duration(n, field, dst, false)
}

func (p *parser) reader() *yamlstrict.Reader {
	return &yamlstrict.Reader{Fail: p.fail, Files: "view files", Record: p.record}
}

var join = yamlstrict.Join
