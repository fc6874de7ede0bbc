package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"fmt"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"slices"
	"strconv"
	"strings"
)

// ParamError is a parameter value the view does not accept.
type ParamError struct {
	View  string
	Param string
	Value string
	// Query is true for a query-string parameter.
	Query bool
	// Reason says what is wrong: "does not match its pattern", "is out of
	// range 1..50", "is required", ...
	Reason string
}

func (e *ParamError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = "does not match its pattern"
	}
	if e.Query {
		// Query values stay out of errors, which are logged: callers put
		// e-mail addresses and tokens there.
		return fmt.Sprintf("view %s: query parameter %s %s", e.View, e.Param, reason)
	}
	return fmt.Sprintf("view %s: parameter %s: value %q %s", e.View, e.Param, e.Value, reason)
}

// ParamNames lists the path parameters, then the query parameters, in the
// order Input.Params wants.
func (p *Plan) ParamNames() []string {
	names := make([]string, len(p.params))
	for i, prm := range p.params {
		names[i] = prm.name
	}
	return names
}

// Validate checks values, in ParamNames order, against their patterns.
func (p *Plan) Validate(values []string) error {
	if len(values) != len(p.params) {
		return fmt.Errorf("view %s: %d parameter values for %d parameters", p.view.Name, len(values), len(p.params))
	}
	for i := range p.params {
		prm := &p.params[i]
		if reason := prm.check(values[i]); reason != "" {
			return &ParamError{View: p.view.Name, Param: prm.name, Value: values[i], Query: prm.query, Reason: reason}
		}
	}
	return nil
}

// PathParams counts the path parameters, which come first in ParamNames.
func (p *Plan) PathParams() int { return len(p.view.Params) }

// QueryParams returns the view's query parameters as declared.
func (p *Plan) QueryParams() []QueryParam { return slices.Clone(p.view.Query) }

// RejectsUnknownQuery reports whether undeclared query parameters are a 400.
func (p *Plan) RejectsUnknownQuery() bool { return p.view.RejectUnknownQuery }

// Name returns the view's name.
func (p *Plan) Name() string { return p.view.Name }

// Route returns the view's route below its client's prefix.
func (p *Plan) Route() string { return p.view.Route }

// Method returns the view's HTTP method.
func (p *Plan) Method() string { return p.view.Method }

// Cache returns the view's cache policy, with the scope filled in.
func (p *Plan) Cache() CachePolicy { return p.view.Cache }

// Upstreams lists the upstreams the view calls, in call order, each once.
func (p *Plan) Upstreams() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range p.calls {
		if !seen[c.Upstream] {
			seen[c.Upstream] = true
			out = append(out, c.Upstream)
		}
	}
	return out
}

// Fingerprint identifies the view's definition (not where it was written):
// two plans with the same fingerprint answer alike.
func (p *Plan) Fingerprint() string { return p.fingerprint }

// Calls returns the view's calls as defined.
func (p *Plan) Calls() []Call {
	out := make([]Call, len(p.calls))
	for i, c := range p.calls {
		out[i] = c.Call
		out[i].Method = c.method
	}
	return out
}

// Skippable names the calls the engine may skip: those that read an
// earlier call's answer (a placeholder, for_each), which may hold nothing.
func (p *Plan) Skippable() []string {
	var out []string
	for _, c := range p.calls {
		if len(c.reads) > 0 {
			out = append(out, c.Name)
		}
	}
	return out
}

// Source says where the view was written ("file:line"), or "".
func (p *Plan) Source() string { return p.view.Source }

// Params returns the view's path parameters as declared.
func (p *Plan) Params() []Param { return slices.Clone(p.view.Params) }

// Shape returns the view's declarative shape, as written.
func (p *Plan) Shape() []Field { return slices.Clone(p.view.Shape) }

// ShapeFuncName names the view's Go shaping function, if it has one.
func (p *Plan) ShapeFuncName() string { return p.view.ShapeFunc }

// ClaimParams lists the token claims the view's templates read ("sub" for
// {auth.sub}), in ParamNames order after the path and query parameters.
func (p *Plan) ClaimParams() []string {
	var out []string
	for _, prm := range p.params {
		if prm.claim {
			out = append(out, strings.TrimPrefix(prm.name, "auth."))
		}
	}
	return out
}

// Auth returns the view's token policy as written.
func (p *Plan) Auth() AuthPolicy { return p.view.Auth }

// BodyError is a request body a mutation view refuses.
type BodyError struct {
	View string
	// Pointer is the JSON Pointer of the offending value ("" for the body).
	Pointer string
	Msg     string
}

func (e *BodyError) Error() string {
	return fmt.Sprintf("view %s: body %s: %s", e.View, e.Pointer, e.Msg)
}

// ValidateBody checks a mutation's body: JSON, and the view's schema.
func (p *Plan) ValidateBody(body []byte) error {
	if !json.Valid(body) {
		return &BodyError{View: p.view.Name, Msg: "is not valid JSON"}
	}
	// The schema sees the last of two equal keys; the body goes upstream
	// as sent, to parsers that may keep the first.
	if ptr, dup := duplicateKey(body); dup {
		return &BodyError{View: p.view.Name, Pointer: ptr, Msg: "appears twice in its object"}
	}
	if p.bodySchema == nil {
		return nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return &BodyError{View: p.view.Name, Msg: "is not valid JSON"}
	}
	err = p.bodySchema.Validate(doc)
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		// The deepest cause names the field; its message says what is wrong.
		for len(ve.Causes) > 0 {
			ve = ve.Causes[0]
		}
		ptr := ""
		for _, seg := range ve.InstanceLocation {
			ptr += "/" + pointerEscape(seg)
		}
		return &BodyError{View: p.view.Name, Pointer: ptr, Msg: ve.ErrorKind.LocalizedString(printer)}
	}
	if err != nil {
		return &BodyError{View: p.view.Name, Msg: err.Error()}
	}
	return nil
}

// duplicateKey finds the first key that appears twice in one object of
// body, which is valid JSON, and returns its JSON Pointer.
func duplicateKey(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*jsonFrame
	expectKey := false // the next token is an object's key
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false // the end: valid JSON was checked before
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if expectKey {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return top.pointer + "/" + pointerEscape(k), true
				}
				top.keys[k], top.key, expectKey = true, k, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			f := &jsonFrame{object: tok == json.Delim('{')}
			if top != nil {
				f.pointer = top.pointer + "/" + top.child()
			}
			if f.object {
				f.keys = map[string]bool{}
			}
			stack = append(stack, f)
			expectKey = f.object
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return "", false
			}
			top = stack[len(stack)-1]
		}
		// A value ended inside top.
		if top != nil {
			if top.object {
				expectKey = true
			} else {
				top.index++
			}
		}
	}
}

// jsonFrame is an object or array being read by duplicateKey.
type jsonFrame struct {
	object  bool
	keys    map[string]bool
	key     string // the object's current key
	index   int    // the array's current index
	pointer string
}

// child is the pointer segment of the value being read in f.
func (f *jsonFrame) child() string {
	if f.object {
		return pointerEscape(f.key)
	}
	return strconv.Itoa(f.index)
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Mutation reports whether the view changes things upstream.
func (p *Plan) Mutation() bool { return p.view.Method != http.MethodGet }

// Invalidates names the views a successful mutation drops from the cache.
func (p *Plan) Invalidates() []string { return slices.Clone(p.view.Invalidates) }

// MaxBodyBytes bounds a mutation's request body.
func (p *Plan) MaxBodyBytes() int64 {
	if p.view.Body != nil && p.view.Body.MaxBytes > 0 {
		return p.view.Body.MaxBytes
	}
	return 64 << 10
}

var printer = message.NewPrinter(language.English)

// TakesBody reports whether a mutation view accepts a request body.
func (p *Plan) TakesBody() bool { return p.view.Body != nil }

// BodyPolicy returns a mutation's body policy, or nil.
func (p *Plan) BodyPolicy() *BodyPolicy {
	if p.view.Body == nil {
		return nil
	}
	b := *p.view.Body
	return &b
}
