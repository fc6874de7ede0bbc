package aggregate_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/upstream"
)

// Keys written from several calls combine in definition order, whatever
// order the calls answer in.
func TestCombine(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"a": body(`{"items":[{"id":1,"x":0},{"id":2}],"title":null,"prefs":{"theme":"dark","lang":"en"}}`),
		"b": body(`{"items":[{"id":3}],"title":"B","prefs":{"lang":"fr","tz":"UTC"}}`),
		"c": body(`{"other":true}`),
	})
	v := aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{
			{Name: "a", Upstream: "a", Path: "/a"},
			{Name: "b", Upstream: "b", Path: "/b"},
			{Name: "c", Upstream: "c", Path: "/c"},
		},
		Shape: []aggregate.Field{
			{Name: "items", Combine: "concat", Sources: []string{"a.items", "c.items", "b.items"}, Limit: 3, Fields: []aggregate.Field{aggregate.Pick("id")}},
			{Name: "title", Combine: "first", Sources: []string{"a.title", "c.title", "b.title"}},
			{Name: "prefs", Combine: "merge", Sources: []string{"a.prefs", "b.prefs"}},
			{Name: "none", Combine: "first", Sources: []string{"c.x", "c.y"}, Default: json.RawMessage(`"n/a"`)},
			{Name: "gone", Combine: "concat", Sources: []string{"c.x", "c.y"}, Omit: true},
		},
	}
	p, err := aggregate.Compile(v, e.Catalog(nil))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"id":1},{"id":2},{"id":3}],"title":"B","prefs":{"theme":"dark","lang":"fr","tz":"UTC"},"none":"n/a"}`
	if string(res.Body) != want {
		t.Errorf("got  %s\nwant %s", res.Body, want)
	}

	for _, tc := range []struct {
		f    aggregate.Field
		want string
	}{
		{aggregate.Field{Name: "k", Combine: "zip", Sources: []string{"a.x", "b.x"}}, `combine "zip": want concat, first or merge`},
		{aggregate.Field{Name: "k", Combine: "first", Sources: []string{"a.x"}}, "first needs two or more sources"},
		{aggregate.Field{Name: "k", Combine: "merge", Sources: []string{"a.x", "b.x"}, Limit: 2}, "merge copies objects whole"},
		{aggregate.Field{Name: "k", Combine: "first", Sources: []string{"a.x", "z.x"}}, `source "z.x": no call named "z"`},
		{aggregate.Field{Name: "k", From: "a", Fields: []aggregate.Field{{Name: "j", Combine: "first", Sources: []string{"x", "y"}}}},
			"first applies at the top level of shape"},
	} {
		bad := v
		bad.Shape = []aggregate.Field{tc.f}
		if _, err := aggregate.Compile(bad, e.Catalog(nil)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.f, err, tc.want)
		}
	}
}

// Fields an upstream stopped sending are reported, not silently nulled:
// those with a default or omit, and those of failed calls, aside.
func TestMissingFieldsAreReported(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"users":  body(`{"id":7,"name":"A"}`),
		"orders": body(`{"orders":[{"id":1,"total":5},{"id":2}]}`),
		"recs":   failing(upstream.KindStatus, 503),
	})
	v := aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{
			{Name: "user", Upstream: "users", Path: "/u"},
			{Name: "orders", Upstream: "orders", Path: "/o"},
			{Name: "recs", Upstream: "recs", Path: "/r", Optional: true},
		},
		Shape: []aggregate.Field{
			aggregate.Object("user", "user", aggregate.Pick("id"), aggregate.Pick("email"),
				aggregate.Field{Name: "nick", Default: json.RawMessage(`""`)}, aggregate.Field{Name: "bio", Omit: true}),
			aggregate.List("orders", "orders.orders", 0, aggregate.Pick("id"), aggregate.Pick("total")),
			aggregate.Rename("recs", "recs.items"),
		},
	}
	p, err := aggregate.Compile(v, e.Catalog(nil))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.MissingFields, ","); got != "user.email,orders[].total" {
		t.Errorf("missing fields %q; want user.email,orders[].total", got)
	}
}

// Parameters can be written into the response: strings quoted, int query
// parameters as numbers, escapes kept valid.
func TestShapeParams(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{"a": body(`{"x":1}`)})
	ten := "10"
	v := aggregate.View{
		Name: "v", Route: "/v/{id}", Params: []aggregate.Param{{Name: "id", Pattern: `.+`}},
		Query: []aggregate.QueryParam{{Name: "limit", Type: "int", Default: &ten}},
		Calls: []aggregate.Call{{Name: "a", Upstream: "a", Path: "/a"}},
		Shape: []aggregate.Field{{Name: "id", Param: "id"}, {Name: "limit", Param: "limit"}, aggregate.Rename("x", "a.x")},
	}
	p, err := aggregate.Compile(v, e.Catalog(nil))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background(), p, aggregate.Input{Params: []string{"a\"b\\\x00é", "25"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"a\"b\\\u0000é","limit":25,"x":1}`; string(res.Body) != want || !json.Valid(res.Body) {
		t.Errorf("got %s, want %s", res.Body, want)
	}
	bad := v
	bad.Shape = []aggregate.Field{{Name: "id", Param: "nope"}}
	if _, err := aggregate.Compile(bad, e.Catalog(nil)); err == nil || !strings.Contains(err.Error(), `param "nope": the view has no such parameter`) {
		t.Errorf("unknown param: %v", err)
	}
}
