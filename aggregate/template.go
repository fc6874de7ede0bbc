package aggregate

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/bffproxy/bff/upstream"
	"github.com/tidwall/gjson"
)

// template is a compiled Path or Query: literal text and placeholders.
type template struct {
	parts []part
	size  int // literal bytes, a hint for the output buffer
}

type part struct {
	literal string
	param   int    // index into Plan.params, or -1
	call    int    // index into Plan.calls when param < 0
	path    string // gjson path into that call's result
	each    bool   // the element of a fan-out
}

type escaper func(string) (string, error)

// errDotSegment: a value that is "." or ".." would be resolved by some
// servers even when percent-encoded, so it never becomes a path segment.
var errDotSegment = errors.New("a path value may not be '.' or '..'")

// parseTemplate splits s on {...}. resolve maps a placeholder to a param or
// a call reference.
func parseTemplate(s string, resolve func(ref string) (part, error)) (template, error) {
	var t template
	for s != "" {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			t.parts = append(t.parts, part{literal: s, param: -1, call: -1})
			t.size += len(s)
			break
		}
		if strings.IndexByte(s[:open], '}') >= 0 {
			return t, fmt.Errorf("unbalanced '}' in %q", s)
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return t, fmt.Errorf("unclosed '{' in %q", s)
		}
		if open > 0 {
			t.parts = append(t.parts, part{literal: s[:open], param: -1, call: -1})
			t.size += open
		}
		ref := strings.TrimSpace(s[open+1 : open+end])
		if ref == "" {
			return t, fmt.Errorf("empty placeholder in %q", s)
		}
		p, err := resolve(ref)
		if err != nil {
			return t, err
		}
		t.parts = append(t.parts, p)
		s = s[open+end+1:]
	}
	return t, nil
}

// fill renders the template. ok is false when a referenced list is empty:
// the call has nothing to ask for and is skipped. A reference that is not in
// the earlier call's answer at all is an error.
func (t *template) fill(params []string, bodies []string, each string, esc escaper) (s string, ok bool, err error) {
	if len(t.parts) == 1 && t.parts[0].param < 0 && t.parts[0].call < 0 && !t.parts[0].each {
		return t.parts[0].literal, true, nil
	}
	var b strings.Builder
	b.Grow(t.size + 16)
	for _, p := range t.parts {
		switch {
		case p.each:
			v, err := esc(each)
			if err != nil {
				return "", false, err
			}
			b.WriteString(v)
		case p.param >= 0:
			v, err := esc(params[p.param])
			if err != nil {
				return "", false, err
			}
			b.WriteString(v)
		case p.call >= 0:
			v, state := refValue(lookup(bodies[p.call], p.path))
			switch state {
			case refAbsent:
				return "", false, &ReferenceError{Path: p.path, call: p.call}
			case refEmpty:
				return "", false, nil
			}
			if v, err = esc(v); err != nil {
				return "", false, err
			}
			b.WriteString(v)
		default:
			b.WriteString(p.literal)
		}
	}
	return b.String(), true, nil
}

// ready reports whether every reference to an earlier call has something to
// ask for: false when one finds an empty list, an error when one is absent.
func (t *template) ready(bodies []string) (bool, error) {
	for _, p := range t.parts {
		if p.call < 0 {
			continue
		}
		switch _, state := refValue(lookup(bodies[p.call], p.path)); state {
		case refAbsent:
			return false, &ReferenceError{Path: p.path, call: p.call}
		case refEmpty:
			return false, nil
		}
	}
	return true, nil
}

// ReferenceError: an earlier call's answer lacks a value this call needs.
// Call and Upstream name the call whose answer lacks it.
type ReferenceError struct {
	Path, Call, Upstream string
	call                 int // the index of Call in its plan, until named
}

func (e *ReferenceError) Error() string {
	if e.Call != "" {
		return fmt.Sprintf("the answer of call %s (upstream %s) has no value at %q", e.Call, e.Upstream, e.Path)
	}
	return fmt.Sprintf("the answer it depends on has no value at %q", e.Path)
}

type refState int

const (
	refOK refState = iota
	refEmpty
	refAbsent
)

// refValue turns a referenced result into text: scalars as they are,
// arrays of scalars joined with commas (unique, in order).
func refValue(r gjson.Result) (string, refState) {
	switch {
	case !r.Exists(), r.Type == gjson.Null, r.IsObject():
		return "", refAbsent
	case !r.IsArray():
		s := r.String()
		if s == "" {
			return "", refEmpty
		}
		return s, refOK
	}
	var b strings.Builder
	seen := make(map[string]struct{})
	r.ForEach(func(_, v gjson.Result) bool {
		if v.IsObject() || v.IsArray() || v.Type == gjson.Null {
			return true
		}
		s := v.String()
		if _, dup := seen[s]; dup || s == "" {
			return true
		}
		seen[s] = struct{}{}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
		return true
	})
	if b.Len() == 0 {
		return "", refEmpty
	}
	return b.String(), refOK
}

// refElements lists the distinct scalar elements of a referenced list (or
// the one scalar referenced), in order.
func refElements(r gjson.Result) ([]string, refState) {
	switch {
	case !r.Exists(), r.Type == gjson.Null, r.IsObject():
		return nil, refAbsent
	case !r.IsArray():
		if s := r.String(); s != "" {
			return []string{s}, refOK
		}
		return nil, refEmpty
	}
	var out []string
	seen := map[string]bool{}
	r.ForEach(func(_, v gjson.Result) bool {
		if v.IsObject() || v.IsArray() || v.Type == gjson.Null {
			return true
		}
		if s := v.String(); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
		return true
	})
	if len(out) == 0 {
		return nil, refEmpty
	}
	return out, refOK
}

func escapeQueryValue(s string) (string, error) { return url.QueryEscape(s), nil }

// escapeSegment keeps a value inside one path segment of the upstream URL.
func escapeSegment(s string) (string, error) {
	if s == "." || s == ".." {
		return "", errDotSegment
	}
	return upstream.EscapeSegment(s), nil
}
