package aggregate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// shapes covers every kind of field, plain keys and gjson paths, nesting,
// limits, counts, defaults and constants.
func shapes(t testing.TB) [][]node {
	calls := map[string]int{"a": 0, "b": 1}
	var out [][]node
	for _, fields := range [][]Field{
		{Object("user", "a", Pick("id"), Pick("name"), Rename("city", "address.city"), Pick("missing")),
			List("orders", "a.orders", 10, Pick("id"), Pick("status"), Count("item_count", "items"), List("items", "items", 2)),
			List("recs", "b.items", 5, Pick("id"), Pick("title"), Object("o", "o", Pick("x"))),
			Count("n", "b.items"), Rename("first", "a.orders.0.id"), Rename("all", "a"),
			{Name: "c", Const: json.RawMessage(`{"k":[1]}`)}, {Name: "d", From: "a.nope", Default: json.RawMessage(`"dflt"`)}},
		{List("raw", "b", 0), Rename("x", "b.#"), Object("obj", "b", Pick("items"), Rename("again", "items"), Count("items_n", "items"))},
		{Rename("v", "a.id"), Rename("w", "b.id"), List("l", "a.list", 3, Pick("k"), Rename("k2", "k")),
			Rename("first", "b.0"), Rename("firstid", "b.0.id"), Object("o0", "a", Pick("0"), Rename("one", "1"))},
	} {
		nodes, err := compileFields(fields, "shape", calls, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, nodes)
	}
	return out
}

// FuzzScannerMatchesGjson checks the scanner against the gjson-based shaper
// it replaced, on any valid JSON the upstream client would accept.
func FuzzScannerMatchesGjson(f *testing.F) {
	f.Add(`{"id":7,"name":"A","address":{"city":"X"},"orders":[{"id":"o","status":"s","items":[1,2,3]},{"id":"p"}]}`,
		`{"items":[{"id":"r","title":"t","o":{"x":1}},2,null,"s"],"id":3}`)
	f.Add(` { "id" : 1 , "id" : 2 , "n\u0061me" : "esc" , "list" : [ {"k":1} , {"k":[2]} ] } `, `[1,[2],{"3":3}]`)
	f.Add(`{"orders":{"not":"a list"},"a":"\"quoted\\\\"}`, `{"items":[]}`)
	f.Add(`[]`, `"s"`)
	f.Add(`{"a":{"b":{"c":[{"d":"}{]["}]}}}`, `{"items":[{"title":"\\\""}]}`)
	f.Add(`{"name":"`+strings.Repeat(`ab\"c\\`, 9)+`","id":1}`, `{"items":[{"id":"`+strings.Repeat("x", 40)+`\\"}]}`)
	f.Fuzz(func(t *testing.T, a, b string) {
		if !gjson.Valid(a) || !gjson.Valid(b) {
			return
		}
		for _, present := range [][]bool{{true, true}, {true, false}} {
			for _, nodes := range shapes(t) {
				got := string(appendShape(nil, nodes, []string{a, b}, present))
				want := string(refShape(nodes, []string{a, b}, present))
				if !json.Valid([]byte(got)) {
					t.Fatalf("invalid output %s", got)
				}
				if !sameJSON(got, want) {
					t.Fatalf("scanner and gjson differ for\n a=%s\n b=%s\n got %s\nwant %s", a, b, got, want)
				}
			}
		}
	})
}

// sameJSON compares two documents byte for byte, whitespace aside (gjson
// keeps a document's trailing spaces, the scanner does not).
func sameJSON(x, y string) bool {
	var a, b bytes.Buffer
	if json.Compact(&a, []byte(x)) != nil || json.Compact(&b, []byte(y)) != nil {
		return x == y
	}
	return a.String() == b.String()
}

// Malformed input never makes the scanner read out of bounds or loop.
func FuzzScannerNeverPanics(f *testing.F) {
	f.Add(`{"a":[1,{"b":"`)
	f.Add(`{"a" 1 "b"}`)
	f.Add(`[[[[`)
	f.Add(`{"x":"abcdefghij\`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, nodes := range shapes(t) {
			_ = appendShape(nil, nodes, []string{s, s}, []bool{true, true})
		}
	})
}

// skipString agrees with a plain byte loop on every input, at every length
// around the eight-byte steps.
func FuzzSkipString(f *testing.F) {
	for _, s := range []string{``, `abc"`, `abcdefgh"`, `abcdefg\"h"`, `\\"`, `a\\\"b"x`, strings.Repeat("x", 17) + `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		s := `"` + body
		want := len(s)
		for i := 1; i < len(s); i++ {
			if s[i] == '\\' {
				i++
				continue
			}
			if s[i] == '"' {
				want = i + 1
				break
			}
		}
		if got := skipString(s, 0); got != want {
			t.Fatalf("skipString(%q) = %d, want %d", s, got, want)
		}
	})
}
