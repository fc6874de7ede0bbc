package aggregate_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bffproxy/bff/aggregate"
)

// README: `nickname: {from: user.nick, default: "n/a"}  # a fallback when
// the value is missing`, and `omit: true` leaves the key out. An upstream
// that sends "nick": null has no nickname: a plain value treats that null
// as missing, as object, list and count fields do (it once copied the null
// through, ignoring both default and omit).
func TestDefaultAndOmitApplyToUpstreamNull(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"users": body(`{"nick":null,"bio":null,"prefs":null,"tags":null}`),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/u"}},
		Shape: []aggregate.Field{
			{Name: "nickname", From: "user.nick", Default: json.RawMessage(`"n/a"`)},
			{Name: "bio", From: "user.bio", Omit: true},
			// the same null, read as an object or a list: the default applies
			{Name: "prefs", From: "user.prefs", Fields: []aggregate.Field{aggregate.Pick("theme")}, Default: json.RawMessage(`{}`)},
			{Name: "tags", From: "user.tags", List: true, Default: json.RawMessage(`["none"]`)},
		},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"nickname":"n/a","prefs":{},"tags":["none"]}`; string(res.Body) != want {
		t.Errorf("got  %s\nwant %s", res.Body, want)
	}
}

// `fields` is "a list of field names to copy". With `first`, a chosen value
// that is a list of objects has the fields applied to each element, as
// concat does; it was copied whole once, upstream-only fields included.
func TestFirstWithFieldsShapesAList(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"cms":      body(`{"authors":[{"id":1,"email":"private@example.com"}]}`),
		"fallback": body(`{}`),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{{Name: "cms", Upstream: "cms", Path: "/c"}, {Name: "fallback", Upstream: "fallback", Path: "/f"}},
		Shape: []aggregate.Field{
			{Name: "authors", Combine: "first", Sources: []string{"cms.authors", "fallback.authors"}, Fields: []aggregate.Field{aggregate.Pick("id")}},
		},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.Body), "email") {
		t.Errorf("fields [id] were not applied; unlisted upstream field copied: %s", res.Body)
	}
}

// README: variants are picked by X-App-Version; "shape serves the rest (and
// requests without a readable version)". The published header pattern is
// ^[0-9]+(\.[0-9]+){0,2}$: "-0.9" is not a version (it was read as 0.9 once,
// and got the old-app variant).
func TestNegativeZeroAppVersionIsUnreadable(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{"users": body(`{}`)})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls:    []aggregate.Call{{Name: "user", Upstream: "users", Path: "/u"}},
		Shape:    []aggregate.Field{aggregate.Rename("name", "user.name")},
		Variants: []aggregate.Variant{{AppVersion: "<2.0", Shape: []aggregate.Field{aggregate.Rename("username", "user.name")}}},
	})
	for _, v := range []string{"-0.9", "1.-0", "-0"} {
		if got := p.Variant(v); got != 0 {
			t.Errorf("Variant(%q) = %d, want 0 (not a readable version)", v, got)
		}
	}
	if got := p.Variant("1.9"); got != 1 {
		t.Errorf("Variant(1.9) = %d, want 1", got)
	}
}

// Upstream JSON is checked for its structure, not its encoding: a byte
// that is not UTF-8 inside a string reaches the response as U+FFFD (as
// encoding/json writes it), so the client's parser does not refuse the
// whole body.
func TestInvalidUTF8BecomesReplacementCharacter(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{"users": body("{\"name\":\"A\xffda\",\"city\":\"Köln\"}")})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/u"}},
		Shape: []aggregate.Field{aggregate.Rename("name", "user.name"), aggregate.Rename("city", "user.city")},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"A` + "\uFFFD" + `da","city":"Köln"}`; string(res.Body) != want || !utf8.Valid(res.Body) {
		t.Errorf("got %q, want %q", res.Body, want)
	}
}
