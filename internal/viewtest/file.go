package viewtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bffproxy/bff/internal/yamlstrict"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bffproxy/bff/bff"
	"go.yaml.in/yaml/v3"
)

// Error is a mistake in a fixture file.
type Error struct {
	File  string
	Line  int
	Case  string // empty when the mistake is outside any case
	Field string // dotted path of the field, e.g. expect.status
	Msg   string
}

func (e *Error) Error() string {
	return yamlstrict.Message(e.File, e.Line, "case", e.Case, e.Field, e.Msg)
}

// File is one fixture file: cases for one view.
type File struct {
	Name string // as shown in messages, e.g. bff/web/tests/home.test.yaml
	View string
	Line int // of the view key
	// ViewTimeout, if set, replaces the view's timeout in every case.
	ViewTimeout time.Duration
	// Upstreams are answers every case gets, by upstream name, unless the
	// case answers the same request itself.
	Upstreams map[string][]*Answer
	Cases     []*Case
	upLines   map[string]int
}

// Case is one request to the view, the upstreams' answers and what the
// client must receive.
type Case struct {
	Name        string
	Line        int
	Request     Request
	ViewTimeout time.Duration // replaces the file's
	Upstreams   map[string][]*Answer
	Expect      Expect
	upLines     map[string]int
}

// Request is the client's request.
type Request struct {
	Method string // GET unless set
	Path   string // with the client's prefix: /web/home/7
	Header http.Header
	// Body is a mutation's JSON body, sent as application/json.
	Body []byte
	// Auth, if set, makes the runner sign a token for the request.
	Auth *Token
}

// Token is the caller a case's request speaks for: the runner signs a token
// with these claims and a key of its own, which the view's client trusts.
type Token struct {
	Subject string
	Scope   string
}

// Answer is what a fixture upstream sends for one request.
type Answer struct {
	Line int
	// Method, Path and Query are the request this answers; a nil Query
	// matches only a request without one. RequestHeader, if set, must be
	// among the request's headers.
	Method        string
	Path          string
	Query         url.Values
	RequestHeader http.Header

	Status int // 200 unless set
	Header http.Header
	Body   []byte
	// BodyFile is where Body came from, relative to the fixture file.
	BodyFile string
	// Delay holds the answer back; Timeout holds it until the caller gives
	// up; Reset closes the connection without an answer.
	Delay   time.Duration
	Timeout bool
	Reset   bool
}

// request is how a message names the request an answer is for.
func (a *Answer) request() string {
	s := a.Method + " " + a.Path
	if len(a.Query) > 0 {
		s += "?" + a.Query.Encode()
	}
	return s
}

// key identifies the request an answer is for: two answers for one key
// are a mistake, and a case's answer replaces the file's of the same key.
func (a *Answer) key() string {
	var b strings.Builder
	b.WriteString(a.request())
	names := make([]string, 0, len(a.RequestHeader))
	for k := range a.RequestHeader {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "\x00%s: %s", k, strings.Join(a.RequestHeader[k], ", "))
	}
	return b.String()
}

// Expect is what the client must receive.
type Expect struct {
	// Status is the response's status; zero means 200, or any status when
	// Problem is set.
	Status int
	// Problem is the problem type of an error response, as a full URN.
	Problem string
	// Partial is the Bff-Partial header; nil means it must be absent.
	Partial *string
	// Header lists other headers to check, in file order; a nil value
	// means the header must be absent.
	Header []HeaderWant
	// BodyFile is where the body came from, relative to the fixture file.
	BodyFile string
	body     *value // nil: not compared
	bodyLine int
}

// HeaderWant is one expected header.
type HeaderWant struct {
	Name  string
	Value *string
}

// problemPrefix is what a short problem name (upstream-error) stands for.
const problemPrefix = "urn:bff:problem:"

// Parse reads one fixture file. Bodies given as body_file are read by
// Load; Parse leaves them empty.
//
//	view: web.home
//	cases:
//	  - name: user 7
//	    request: /web/home/7
//	    upstreams:
//	      users:
//	        - path: /users/7
//	          body: {id: 7, name: Ada}
//	    expect:
//	      body: {user: {id: 7, name: Ada}}
func Parse(file string, data []byte) (*File, error) {
	p := &parser{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Line: 1, Msg: "empty file: want view: and cases:"}
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
		return nil, &Error{File: file, Line: line, Msg: "one document per file: put every case under the one cases: list"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Msg: "empty file: want view: and cases:"}
	}
	f := &File{Name: file}
	root := doc.Content[0]
	p.mapping(root, "", map[string]func(*yaml.Node){
		"view":         func(n *yaml.Node) { f.Line = n.Line; p.str(n, "view", &f.View) },
		"view_timeout": func(n *yaml.Node) { p.duration(n, "view_timeout", &f.ViewTimeout) },
		"upstreams":    func(n *yaml.Node) { f.Upstreams, f.upLines = p.upstreams(n, "upstreams") },
		"cases": func(n *yaml.Node) {
			if !p.is(n, yaml.SequenceNode, "cases", "a list of cases") {
				return
			}
			names := map[string]int{}
			for _, cn := range n.Content {
				c := p.testCase(cn)
				if c == nil {
					continue
				}
				if prev, dup := names[c.Name]; dup {
					p.failAt(c.Line, c.Name, "name", "this name is also the case at line %d; names must differ", prev)
				}
				names[c.Name] = c.Line
				f.Cases = append(f.Cases, c)
			}
		},
	})
	if p.err != nil {
		return nil, p.err
	}
	switch {
	case f.View == "":
		return nil, &Error{File: file, Line: root.Line, Field: "view", Msg: "name the view the cases are for: view: web.home"}
	case len(f.Cases) == 0:
		return nil, &Error{File: file, Line: root.Line, Field: "cases", Msg: "want at least one case"}
	}
	return f, nil
}

// Load reads dir/*.test.yaml (and *.test.yml) from fsys, with the body
// files they name. Messages show file names below shown, which says where
// fsys is (a directory, or bff/web/tests for the embedded files).
func Load(fsys fs.FS, dir, shown string) ([]*File, error) {
	var names []string
	for _, pattern := range []string{"*.test.yaml", "*.test.yml"} {
		m, err := fs.Glob(fsys, path.Join(dir, pattern))
		if err != nil {
			return nil, err
		}
		names = append(names, m...)
	}
	sort.Strings(names)
	var files []*File
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("view tests: %w", err)
		}
		f, err := Parse(path.Join(shown, name), data)
		if err != nil {
			return nil, err
		}
		if err := f.readBodies(fsys, path.Dir(name), shown); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// readBodies reads the body files, relative to the fixture file's dir
// and never outside fsys, whose root is shown as root.
func (f *File) readBodies(fsys fs.FS, dir, root string) error {
	read := func(c *Case, line int, field, rel string) ([]byte, error) {
		caseName := ""
		if c != nil {
			caseName = c.Name
		}
		name := path.Join(dir, rel)
		if !fs.ValidPath(name) || path.IsAbs(rel) {
			if root == "" {
				root = "."
			}
			return nil, &Error{File: f.Name, Line: line, Case: caseName, Field: field, Msg: fmt.Sprintf("%s is outside %s", rel, root)}
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is said once, below
			}
			return nil, &Error{File: f.Name, Line: line, Case: caseName, Field: field, Msg: fmt.Sprintf("%s: %v", rel, err)}
		}
		return data, nil
	}
	answers := func(c *Case, field string, ups map[string][]*Answer) error {
		for _, up := range sortedKeys(ups) {
			for _, a := range ups[up] {
				if a.BodyFile == "" {
					continue
				}
				data, err := read(c, a.Line, join(field, up)+".body_file", a.BodyFile)
				if err != nil {
					return err
				}
				a.Body = data
			}
		}
		return nil
	}
	if err := answers(nil, "upstreams", f.Upstreams); err != nil {
		return err
	}
	for _, c := range f.Cases {
		if err := answers(c, "upstreams", c.Upstreams); err != nil {
			return err
		}
		if c.Expect.BodyFile == "" {
			continue
		}
		data, err := read(c, c.Expect.bodyLine, "expect.body_file", c.Expect.BodyFile)
		if err != nil {
			return err
		}
		v, err := parseJSON(data)
		if err != nil {
			return &Error{File: f.Name, Line: c.Expect.bodyLine, Case: c.Name, Field: "expect.body_file",
				Msg: fmt.Sprintf("%s is not JSON: %v", c.Expect.BodyFile, err)}
		}
		c.Expect.body = v
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// parser keeps the first error; later checks still run but do not replace it.
type parser struct {
	file    string
	current string // the case being read
	err     error
}

func (p *parser) fail(n *yaml.Node, field, format string, args ...any) {
	p.failAt(n.Line, p.current, field, format, args...)
}

func (p *parser) failAt(line int, testCase, field, format string, args ...any) {
	if p.err == nil {
		p.err = &Error{File: p.file, Line: line, Case: testCase, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
}

// pairs walks a mapping whose keys are names the user chooses, in order.
func (p *parser) pairs(n *yaml.Node, field string, each func(k, v *yaml.Node)) {
	p.reader().Pairs(n, field, "", each)
}

func (p *parser) method(n *yaml.Node, field string, dst *string) {
	p.str(n, field, dst)
	if *dst == "" || strings.ToUpper(*dst) != *dst || strings.ContainsAny(*dst, " \t/") {
		p.fail(n, field, "want a method such as GET, found %q", *dst)
	}
}

func (p *parser) status(n *yaml.Node, field string, dst *int) {
	if !p.is(n, yaml.ScalarNode, field, "an HTTP status such as 200") {
		return
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 100 || v > 599 {
		p.fail(n, field, "want an HTTP status from 100 to 599, found %q", n.Value)
		return
	}
	*dst = v
}

// headers reads name: value pairs; with nulls set, a null value (the
// header must be absent) is kept as a nil value.
func (p *parser) headers(n *yaml.Node, field string, nulls bool, each func(name string, value *string)) {
	p.pairs(n, field, func(k, v *yaml.Node) {
		name := http.CanonicalHeaderKey(k.Value)
		f := join(field, k.Value)
		if strings.ContainsAny(name, " \t\r\n:") {
			p.fail(k, f, "not a header name")
			return
		}
		if nulls && v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			each(name, nil)
			return
		}
		var s string
		p.str(v, f, &s)
		if strings.ContainsAny(s, "\r\n") {
			p.fail(v, f, "a header value is one line")
			return
		}
		each(name, &s)
	})
}

func (p *parser) body(n *yaml.Node, field string) *value {
	v, err := fromYAML(n, 0)
	if err != nil {
		p.fail(n, field, "%v", err)
		return nil
	}
	return v
}

func (p *parser) testCase(n *yaml.Node) *Case {
	c := &Case{Line: n.Line}
	// Name first, so errors in the other keys can name the case.
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode {
				p.current = n.Content[i+1].Value
			}
		}
	}
	defer func() { p.current = "" }()
	errBefore := p.err
	var hasRequest, hasExpect bool
	p.mapping(n, "", map[string]func(*yaml.Node){
		"name":         func(x *yaml.Node) { p.str(x, "name", &c.Name) },
		"view_timeout": func(x *yaml.Node) { p.duration(x, "view_timeout", &c.ViewTimeout) },
		"request":      func(x *yaml.Node) { hasRequest = true; p.request(x, &c.Request) },
		"upstreams":    func(x *yaml.Node) { c.Upstreams, c.upLines = p.upstreams(x, "upstreams") },
		"expect":       func(x *yaml.Node) { hasExpect = true; p.expect(x, &c.Expect) },
	})
	if p.err != errBefore {
		return nil
	}
	switch {
	case c.Name == "":
		p.fail(n, "name", "every case needs a name")
	case !hasRequest:
		p.fail(n, "request", "every case needs a request, e.g. request: /web/home/7")
	case !hasExpect:
		p.fail(n, "expect", "every case needs an expect: the status, body or headers the client must receive")
	}
	if p.err != errBefore {
		return nil
	}
	return c
}

func (p *parser) request(n *yaml.Node, r *Request) {
	r.Method = http.MethodGet
	if n.Kind == yaml.ScalarNode {
		p.str(n, "request", &r.Path)
	} else {
		p.mapping(n, "request", map[string]func(*yaml.Node){
			"method": func(x *yaml.Node) { p.method(x, "request.method", &r.Method) },
			"path":   func(x *yaml.Node) { p.str(x, "request.path", &r.Path) },
			"headers": func(x *yaml.Node) {
				r.Header = http.Header{}
				p.headers(x, "request.headers", false, func(name string, v *string) { r.Header.Add(name, *v) })
			},
			"body": func(x *yaml.Node) {
				if v := p.body(x, "request.body"); v != nil {
					r.Body = v.encode(nil)
				}
			},
			"auth": func(x *yaml.Node) {
				r.Auth = &Token{}
				p.mapping(x, "request.auth", map[string]func(*yaml.Node){
					"sub":   func(y *yaml.Node) { p.str(y, "request.auth.sub", &r.Auth.Subject) },
					"scope": func(y *yaml.Node) { p.str(y, "request.auth.scope", &r.Auth.Scope) },
				})
				if p.err == nil && r.Auth.Subject == "" {
					p.fail(x, "request.auth", "want sub: the caller the token speaks for")
				}
			},
		})
	}
	if p.err == nil && !strings.HasPrefix(r.Path, "/") {
		p.fail(n, "request", "want the path the client requests, with its prefix: /web/home/7")
	}
}

// upstreams reads answers by upstream name; lines are where each name is.
func (p *parser) upstreams(n *yaml.Node, field string) (map[string][]*Answer, map[string]int) {
	ups := map[string][]*Answer{}
	lines := map[string]int{}
	p.pairs(n, field, func(k, v *yaml.Node) {
		f := join(field, k.Value)
		lines[k.Value] = k.Line
		ups[k.Value] = nil // named, even with no answers: the view must call it
		if !p.is(v, yaml.SequenceNode, f, "a list of answers, one per request") {
			return
		}
		seen := map[string]int{}
		for _, an := range v.Content {
			a := p.answer(an, f)
			if a == nil {
				continue
			}
			if prev, dup := seen[a.key()]; dup {
				p.fail(an, f, "%s is also answered at line %d; one answer per request", a.request(), prev)
			}
			seen[a.key()] = a.Line
			ups[k.Value] = append(ups[k.Value], a)
		}
	})
	return ups, lines
}

func (p *parser) answer(n *yaml.Node, field string) *Answer {
	a := &Answer{Line: n.Line, Method: http.MethodGet}
	errBefore := p.err
	var responds []string // keys that only an answer sends
	var hasBody bool
	p.mapping(n, field, map[string]func(*yaml.Node){
		"method": func(x *yaml.Node) { p.method(x, join(field, "method"), &a.Method) },
		"path":   func(x *yaml.Node) { p.str(x, join(field, "path"), &a.Path) },
		"query": func(x *yaml.Node) {
			var q string
			p.str(x, join(field, "query"), &q)
			v, err := url.ParseQuery(q)
			if err != nil {
				p.fail(x, join(field, "query"), "want an encoded query string such as user_id=7: %v", err)
				return
			}
			if len(v) > 0 {
				a.Query = v
			}
		},
		"request_headers": func(x *yaml.Node) {
			a.RequestHeader = http.Header{}
			p.headers(x, join(field, "request_headers"), false, func(name string, v *string) { a.RequestHeader.Add(name, *v) })
		},
		"status": func(x *yaml.Node) {
			responds = append(responds, "status")
			p.status(x, join(field, "status"), &a.Status)
		},
		"headers": func(x *yaml.Node) {
			responds = append(responds, "headers")
			a.Header = http.Header{}
			p.headers(x, join(field, "headers"), false, func(name string, v *string) { a.Header.Add(name, *v) })
		},
		"body": func(x *yaml.Node) {
			responds, hasBody = append(responds, "body"), true
			if v := p.body(x, join(field, "body")); v != nil {
				a.Body = v.encode(nil)
			}
		},
		"body_file": func(x *yaml.Node) {
			responds = append(responds, "body_file")
			p.str(x, join(field, "body_file"), &a.BodyFile)
		},
		"delay":   func(x *yaml.Node) { p.duration(x, join(field, "delay"), &a.Delay) },
		"timeout": func(x *yaml.Node) { p.boolean(x, join(field, "timeout"), &a.Timeout) },
		"reset":   func(x *yaml.Node) { p.boolean(x, join(field, "reset"), &a.Reset) },
	})
	if p.err != errBefore {
		return nil
	}
	switch {
	case a.Path == "":
		p.fail(n, field, "every answer needs the path it answers: path: /users/7")
	case !strings.HasPrefix(a.Path, "/") || strings.ContainsAny(a.Path, "?#"):
		p.fail(n, join(field, "path"), "want a path such as /orders, with any query in query: (user_id=7)")
	case hasBody && a.BodyFile != "":
		p.fail(n, field, "use body or body_file, not both")
	case a.Timeout && a.Reset:
		p.fail(n, field, "use timeout or reset, not both")
	case (a.Timeout || a.Reset) && len(responds) > 0:
		what := "timeout"
		if a.Reset {
			what = "reset"
		}
		p.fail(n, field, "a %s sends no answer, so %s would never be sent", what, strings.Join(responds, " and "))
	}
	if p.err != errBefore {
		return nil
	}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	return a
}

func (p *parser) expect(n *yaml.Node, e *Expect) {
	var hasBody bool
	p.mapping(n, "expect", map[string]func(*yaml.Node){
		"status": func(x *yaml.Node) { p.status(x, "expect.status", &e.Status) },
		"body": func(x *yaml.Node) {
			hasBody = true
			e.body = p.body(x, "expect.body")
		},
		"body_file": func(x *yaml.Node) {
			e.bodyLine = x.Line
			p.str(x, "expect.body_file", &e.BodyFile)
		},
		"partial": func(x *yaml.Node) {
			var s string
			p.str(x, "expect.partial", &s)
			e.Partial = &s
		},
		"problem": func(x *yaml.Node) {
			p.str(x, "expect.problem", &e.Problem)
			if e.Problem != "" && !strings.HasPrefix(e.Problem, "urn:") {
				e.Problem = problemPrefix + e.Problem
			}
		},
		"headers": func(x *yaml.Node) {
			p.headers(x, "expect.headers", true, func(name string, v *string) {
				if name == bff.PartialHeader {
					p.fail(x, "expect.headers", "write the %s header as partial:", bff.PartialHeader)
				}
				e.Header = append(e.Header, HeaderWant{Name: name, Value: v})
			})
		},
	})
	if p.err == nil && hasBody && e.BodyFile != "" {
		p.fail(n, "expect", "use body or body_file, not both")
	}
}

// Examples collects the expected 200 bodies of the files' cases, by view:
// what the views answer, e.g. to refine the types of an OpenAPI document.
func Examples(files []*File) map[string][]json.RawMessage {
	out := map[string][]json.RawMessage{}
	for _, f := range files {
		for _, c := range f.Cases {
			e := c.Expect
			if e.body != nil && (e.Status == 0 || e.Status == http.StatusOK) && e.Problem == "" {
				out[f.View] = append(out[f.View], json.RawMessage(e.body.encode(nil)))
			}
		}
	}
	return out
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
	p.reader().Duration(n, field, dst, true)
}

func (p *parser) reader() *yamlstrict.Reader {
	return &yamlstrict.Reader{Fail: p.fail, Files: "fixture files"}
}

var join = yamlstrict.Join
