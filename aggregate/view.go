package aggregate

import (
	"encoding/json"
	"time"
)

// View is one aggregate endpoint, as data. Frontend teams write these.
type View struct {
	// Name is unique across all clients, e.g. "web.home".
	Name string
	// Method is the client's HTTP method. Empty means GET.
	Method string
	// Route is the path below the client's prefix, in chi syntax: "/home/{id}".
	Route string
	// Params declares every path parameter of Route, with the pattern a value
	// must match in full. A value that does not match is a 400 before any
	// upstream is called.
	Params []Param
	// Query are the query-string parameters the view takes.
	Query []QueryParam
	// RejectUnknownQuery answers 400 to a query parameter the view does not
	// declare. By default such parameters are ignored: they reach neither
	// the upstreams nor the cache key.
	RejectUnknownQuery bool
	// Calls are the upstream requests, in definition order.
	Calls []Call
	// Timeout is the whole view's deadline. Zero means 3s.
	Timeout time.Duration
	// Cache is the response cache policy.
	Cache CachePolicy
	// Auth says whether the view needs a verified token, and which scopes.
	Auth AuthPolicy
	// Body is the JSON request body a mutation (POST, PUT, PATCH, DELETE)
	// accepts; nil means none.
	Body *BodyPolicy
	// Invalidates names views whose cached responses a successful mutation
	// drops (a cart view after adding to the cart).
	Invalidates []string
	// Shape is the response object, field by field, in output order.
	Shape []Field
	// Variants are other shapes of the same calls for app-version ranges,
	// picked by the X-App-Version header; the first match wins, and Shape
	// serves everything else.
	Variants []Variant
	// ShapeFunc names a Go shaping function (see ShapeFunc) used instead of
	// Shape where the declarative shape cannot say what is needed.
	ShapeFunc string
	// Source says where the view was defined ("views/home.yaml:3"), for
	// error messages. Empty for views written in Go.
	Source string
	// Lines maps fields ("calls.user", "shape.orders.fields.id") to the
	// line they were written on in Source's file, so an error can point at
	// the field rather than the view. Optional.
	Lines map[string]int
}

// Param is a path parameter.
type Param struct {
	Name string
	// Pattern is a regular expression the whole value must match. Empty
	// means one non-empty path segment.
	Pattern string
}

// Scope says who may share a cached response.
type Scope string

const (
	// ScopePublic: one cached copy per URL, shared by every caller.
	ScopePublic Scope = "public"
	// ScopeUser: cached per caller identity; never served to anyone else.
	ScopeUser Scope = "user"
)

// BodyPolicy says what request body a mutation view accepts.
type BodyPolicy struct {
	// Schema is a JSON Schema (2020-12 unless it says otherwise) the body
	// must satisfy; empty means any JSON value.
	Schema json.RawMessage
	// MaxBytes bounds the body. Zero means 64 KiB.
	MaxBytes int64
}

// AuthPolicy is a view's need for a verified bearer token.
type AuthPolicy struct {
	// Mode is "none" (tokens are not looked at), "optional" (a token, if
	// sent, must verify) or "required". Empty means the client's default.
	Mode string
	// Scopes must all be granted, else 403.
	Scopes []string
}

// QueryParam is a query-string parameter of a view. Templates use it like
// a path parameter: "{limit}".
type QueryParam struct {
	Name string
	// Type is "string" (the default) or "int".
	Type string
	// Pattern is a regular expression a string value must match whole.
	// Empty means any value of at most 256 bytes.
	Pattern string
	// Min and Max bound an int; nil means unbounded on that side.
	Min, Max *int64
	// Default is used when the parameter is absent. Without one, the
	// parameter is required.
	Default *string
}

// CachePolicy: TTL zero means the response is not cached.
type CachePolicy struct {
	TTL   time.Duration
	Scope Scope // empty means public
	// StaleWhileRevalidate serves a copy up to this long past its TTL at
	// once, while one request refreshes it in the background.
	StaleWhileRevalidate time.Duration
	// StaleIfError serves a copy up to this long past its TTL when a fresh
	// one cannot be made (an upstream failed, its breaker is open, the BFF
	// is shedding load), marked as stale.
	StaleIfError time.Duration
}

// Call is one upstream request of a view.
//
// Path and Query are templates: "{id}" is the path parameter id; "{order.items.#.sku}"
// is a value from the result of call "order" (a gjson path), which makes this
// call wait for that one. A list value is joined with commas. Values are
// escaped: in Path each stays inside one segment; in Query it is one value.
type Call struct {
	// Name is the call's name in references, the partial-response header
	// and Server-Timing: a token of letters, digits, '_' and '-'.
	Name     string
	Upstream string
	// Method defaults to GET.
	Method string
	// Path is appended to the upstream's base URL, e.g. "/users/{id}".
	Path string
	// Query is the encoded query string template, e.g. "user_id={id}&limit=10".
	Query string
	// Optional calls may fail: the response still succeeds, their part of the
	// shape is null (or [] for a list, or its Default), and the response
	// names the missing part. A required call's failure fails the view.
	Optional bool
	// Timeout bounds this call inside the view's deadline. Zero means the
	// upstream's default, still inside the view's deadline.
	Timeout time.Duration
	// Body "request" sends the client's request body (a mutation view's).
	Body string
	// StaleIfError lets the last good answer of this optional call, up to
	// this old, stand in when the call fails (see Engine.KeepSections).
	StaleIfError time.Duration
	// DependsOn lists calls that must finish first, in addition to those
	// the templates refer to.
	DependsOn []string
	// ForEach makes this call a fan-out: one request per element of the
	// list at this reference into an earlier call ("order.items.#.sku"),
	// with {each} in Path or Query standing for the element. Duplicates are
	// dropped. The call's result is a JSON array of the answers in list
	// order; an element whose request failed is null (and the response is
	// marked partial) when the call is optional, and fails the view when it
	// is required.
	ForEach string
	// MaxEach caps how many elements are fetched; later ones are left out.
	// Zero means 50.
	MaxEach int
	// Concurrency bounds the requests of a fan-out in flight at once. Zero
	// means 8.
	Concurrency int
}

// Field is one key of the response object.
//
// At the top level From is "call" or "call.path" (a gjson path into that
// call's JSON). Inside an Object or List it is a path relative to the parent
// value. Empty From means the field's Name.
type Field struct {
	Name string
	From string
	// Fields makes this an object built from those fields, or, with List, a
	// list of such objects.
	Fields []Field
	// List makes this a JSON array taken from From; each element is shaped by
	// Fields, or copied as is when Fields is empty.
	List bool
	// Limit keeps at most this many list elements. Zero means all.
	Limit int
	// Count makes the value the number of elements of the array at From.
	Count bool
	// Const is a literal JSON value; From is not read.
	Const json.RawMessage
	// Default is the JSON written when the value is missing (null, or [] for
	// a list, or 0 for a count, when unset).
	Default json.RawMessage
	// Omit leaves the key out when the value is missing (its call failed or
	// was skipped, or the upstream did not send it), instead of writing a
	// default.
	Omit bool
	// Param writes the value of a path or query parameter (top level only):
	// a string, or a number for an int query parameter.
	Param string
	// Combine writes one key from several sources (top level only), always
	// in the order of Sources, never in the order calls answered:
	// "concat" joins arrays (Fields and Limit apply to the elements), "first"
	// takes the first source present and not null, "merge" merges objects
	// key by key (key order of first appearance; a later source's value wins).
	Combine string
	Sources []string
}

// Pick copies the value of the same name.
func Pick(name string) Field { return Field{Name: name} }

// Rename copies the value at from under a new name.
func Rename(name, from string) Field { return Field{Name: name, From: from} }

// Object builds an object from fields of the value at from.
func Object(name, from string, fields ...Field) Field {
	return Field{Name: name, From: from, Fields: fields}
}

// List builds an array from the array at from: at most limit elements (0:
// all), each shaped by fields.
func List(name, from string, limit int, fields ...Field) Field {
	return Field{Name: name, From: from, List: true, Limit: limit, Fields: fields}
}

// Count is the number of elements of the array at from.
func Count(name, from string) Field { return Field{Name: name, From: from, Count: true} }
