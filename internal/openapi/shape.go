package openapi

import (
	"fmt"
	"strings"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

// shaper turns one view's declarative shape into a schema, following what
// the engine writes (aggregate's shape.go): a missing value is null, [] for
// a list, 0 for a count, the field's default, or no key at all with omit.
type shaper struct {
	calls     map[string]aggregate.Call
	skippable map[string]bool // calls the engine may skip (Route.Skippable)
}

// source is where a value comes from: a call and a path into its JSON, in
// the view format's notation ("orders.orders.#.id").
type source struct {
	call aggregate.Call
	path string
}

// String says where the value comes from, as a sentence.
func (s source) String() string {
	if s.call.Upstream == "" {
		return "From `" + s.path + "`."
	}
	return "From " + s.call.Upstream + ": `" + s.path + "`."
}

// count describes a count of the array at s.
func (s source) count() string {
	if s.call.Upstream == "" {
		return "The number of elements of `" + s.path + "`."
	}
	return "The number of elements of `" + s.path + "` (from " + s.call.Upstream + ")."
}

func (s source) under(path string) source { return source{call: s.call, path: s.path + "." + path} }

// responseSchema is the schema of a view's 200 body. examples are decoded
// example bodies.
func responseSchema(r bff.Route, examples []any) *schema {
	if r.ShapeFunc != "" || len(r.Shape) == 0 {
		s := &schema{Type: types{tObject}, Description: fmt.Sprintf(
			"Built by the Go shaping function %q: its structure is not declared in the view, so this schema does not describe it.", r.ShapeFunc)}
		if r.ShapeFunc == "" {
			s.Description = "The view declares no shape."
		}
		return s
	}
	sh := shaper{calls: map[string]aggregate.Call{}, skippable: map[string]bool{}}
	for _, c := range r.Calls {
		sh.calls[c.Name] = c
	}
	for _, name := range r.Skippable {
		sh.skippable[name] = true
	}
	s := sh.object(r.Shape, source{}, true, examples)
	s.Description = "The response of view " + r.View + "."
	return s
}

// object is the schema of an object built from fields. top says the fields
// are the response's own, whose sources start with a call name.
func (sh shaper) object(fields []aggregate.Field, src source, top bool, examples []any) *schema {
	s := &schema{Type: types{tObject}}
	for _, f := range fields {
		var values []any
		for _, e := range examples {
			if m, ok := e.(map[string]any); ok {
				if v, ok := m[f.Name]; ok {
					values = append(values, v)
				}
			}
		}
		s.Properties.set(f.Name, sh.field(f, src, top, values))
		if !f.Omit {
			s.Required = append(s.Required, f.Name)
		}
	}
	return s
}

// field is the schema of one field; values are what the examples hold there.
func (sh shaper) field(f aggregate.Field, parent source, top bool, values []any) *schema {
	from := f.From
	if from == "" {
		from = f.Name
	}
	src := parent.under(from)
	var call aggregate.Call
	if top {
		name, _, _ := strings.Cut(from, ".")
		call = sh.calls[name]
		src = source{call: call, path: from}
	}
	// Only at the top level can a whole call be missing: below, the call
	// answered and the value comes from its JSON. A required call that
	// reads an earlier one is skipped when what it reads is empty.
	callMissing := top && (call.Optional || sh.skippable[call.Name])

	var s *schema
	switch {
	case len(f.Const) > 0:
		s = &schema{Const: compactRaw(f.Const), Description: "A constant."}
		if t := rawTypeOf(f.Const); t != "" {
			s.Type = types{t}
		}
		return s
	case f.Count:
		s = &schema{Type: types{tInteger}, Minimum: ptr(0), Description: src.count()}
	case f.Combine == "concat":
		// The sources' lists, one after another.
		var elements []any
		for _, v := range values {
			if a, ok := v.([]any); ok {
				elements = append(elements, a...)
			}
		}
		s = &schema{Type: types{tArray}, Description: "The lists of " + strings.Join(f.Sources, ", ") + ", one after another."}
		if len(f.Fields) > 0 {
			s.Items = sh.object(f.Fields, source{}, false, elements)
			s.Items.allow(tNull) // an element that is not an object
		} else {
			s.Items = inferred(elements)
		}
		if f.Limit > 0 {
			s.MaxItems = ptr(f.Limit)
		}
		if len(f.Default) > 0 { // written when no source is there
			s.Default = compactRaw(f.Default)
			s.allow(rawTypeOf(f.Default))
		}
		return s
	case f.Combine != "":
		// first or merge: null when no source is there.
		if len(f.Fields) > 0 {
			s = sh.object(f.Fields, source{}, false, values)
			// A source whose value is not an object is copied as it is:
			// the fields describe the value only when it is one.
			s.Type = nil
		} else {
			s = inferred(values)
		}
		s.Description = "The " + f.Combine + " of " + strings.Join(f.Sources, ", ") + "."
		if len(f.Default) == 0 && !f.Omit {
			s.allow(tNull)
		}
	case f.List:
		s = sh.list(f, src, call, top, values)
	case len(f.Fields) > 0:
		s = sh.object(f.Fields, src, false, values)
		s.Description = src.String()
		if observed(values)[tNull] {
			s.allow(tNull) // the examples show it can be absent
		}
		if callMissing && len(f.Default) == 0 && !f.Omit {
			s.allow(tNull)
		}
	default:
		s = inferred(values)
		s.Description = src.String()
		if callMissing && len(f.Default) == 0 && !f.Omit {
			s.allow(tNull)
		}
	}
	if top && call.ForEach != "" {
		s.Description += fmt.Sprintf(" One request per distinct element of `%s` (at most %d).", call.ForEach, maxEach(call))
	}
	switch {
	case f.Omit:
		s.Description += " Left out when missing."
	case len(f.Default) > 0:
		s.Default = compactRaw(f.Default)
		t := rawTypeOf(f.Default)
		s.allow(t)
		if f.Count && (t == tInteger || t == tNumber) && strings.HasPrefix(string(s.Default), "-") {
			s.Minimum = nil // the default is below any count
		}
		s.Description += " " + string(s.Default) + " when missing."
	}
	switch {
	case top && call.Optional:
		s.Description += fmt.Sprintf(" Call %q is optional: when it fails this is %s and the %s header names it.",
			call.Name, missingValue(f), bff.PartialHeader)
	case callMissing:
		s.Description += fmt.Sprintf(" Call %q is not made when what it reads from an earlier call is empty: then this is %s.",
			call.Name, missingValue(f))
	}
	return s
}

// list is the schema of a list field: an array of shaped objects, or of
// elements copied as they are.
func (sh shaper) list(f aggregate.Field, src source, call aggregate.Call, top bool, values []any) *schema {
	s := &schema{Type: types{tArray}, Description: src.String()}
	var elements []any
	for _, v := range values {
		if a, ok := v.([]any); ok {
			elements = append(elements, a...)
		}
	}
	elem := src.under("#")
	if len(f.Fields) > 0 {
		s.Items = sh.object(f.Fields, elem, false, elements)
		// An element that is not an object is written as null; an optional
		// fan-out leaves null for an element whose request failed.
		if observed(elements)[tNull] || top && call.ForEach != "" && call.Optional && src.path == call.Name {
			s.Items.allow(tNull)
		}
	} else {
		s.Items = inferred(elements)
		s.Items.Description = elem.String()
		if top && call.ForEach != "" && call.Optional && src.path == call.Name {
			s.Items.allow(tNull) // an element whose request failed
		}
	}
	limit := f.Limit
	if top && call.ForEach != "" && src.path == call.Name {
		// The fan-out's own result: one element per fetched list element.
		if limit == 0 || maxEach(call) < limit {
			limit = maxEach(call)
		}
	}
	if limit > 0 {
		s.MaxItems = ptr(limit)
		s.Description += fmt.Sprintf(" At most %d elements.", limit)
	}
	return s
}

func maxEach(c aggregate.Call) int {
	if c.MaxEach > 0 {
		return c.MaxEach
	}
	return 50 // aggregate's default
}

// missingValue is what the engine writes for a field whose value is missing.
func missingValue(f aggregate.Field) string {
	switch {
	case f.Omit:
		return "left out"
	case len(f.Default) > 0:
		return string(compactRaw(f.Default))
	case f.List:
		return "[]"
	case f.Count:
		return "0"
	}
	return "null"
}

// observed is the set of JSON types among values.
func observed(values []any) map[string]bool {
	seen := map[string]bool{}
	for _, v := range values {
		seen[jsonType(v)] = true
	}
	return seen
}

// inferred is the schema of values copied as they are: the types the
// examples show, or open when they show none but null (which says nothing
// of the value's type when present). Arrays get their elements' types too.
func inferred(values []any) *schema {
	s := &schema{}
	seen := observed(values)
	delete(seen, tNull)
	if len(seen) == 0 {
		return s
	}
	for _, t := range typeOrder {
		if seen[t] {
			s.Type = s.Type.with(t)
		}
	}
	if observed(values)[tNull] {
		s.allow(tNull)
	}
	if seen[tArray] {
		var elements []any
		for _, v := range values {
			if a, ok := v.([]any); ok {
				elements = append(elements, a...)
			}
		}
		if items := inferred(elements); !items.open() {
			s.Items = items
		}
	}
	return s
}
