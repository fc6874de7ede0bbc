package aggregate_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/upstream"
	"github.com/tidwall/gjson"
)

// FuzzShape feeds arbitrary valid JSON (what an upstream may send once its
// body passed validation) through the home-style shape: the output must
// always be valid JSON, and nothing may panic.
func FuzzShape(f *testing.F) {
	f.Add(`{"id":7,"name":"A","orders":[{"id":"o","items":[1,2]}]}`, `{"items":[{"id":"r","title":"t"}]}`)
	f.Add(`[]`, `null`)
	f.Add(`{"orders":{"id":1}}`, `{"items":"x"}`)
	f.Add(`{"orders":[null,1,"s",{"items":{}}]}`, `{"items":[[],{}]}`)
	f.Add(`"str"`, `12.5e3`)
	f.Fuzz(func(t *testing.T, a, b string) {
		if !gjson.Valid(a) || !gjson.Valid(b) {
			return
		}
		e := aggregate.NewEngine(map[string]aggregate.Doer{"a": body(a), "b": body(b)})
		p, err := aggregate.Compile(aggregate.View{
			Name: "v", Route: "/v",
			Calls: []aggregate.Call{
				{Name: "user", Upstream: "a", Path: "/"},
				{Name: "recs", Upstream: "b", Path: "/", Optional: true},
				{Name: "dep", Upstream: "b", Path: "/x/{user.id}", Query: "q={user.orders.#.id}", Optional: true},
			},
			Shape: []aggregate.Field{
				aggregate.Object("user", "user", aggregate.Pick("id"), aggregate.Pick("name")),
				aggregate.List("orders", "user.orders", 10, aggregate.Pick("id"), aggregate.Count("item_count", "items")),
				aggregate.List("recs", "recs.items", 5, aggregate.Pick("id"), aggregate.Pick("title")),
				aggregate.List("raw", "recs.items", 2),
				aggregate.Rename("anything", "user.orders.0"),
				aggregate.Count("n", "dep.items"),
				{Name: "maybe", From: "recs.items.0", Omit: true},
				{Name: "sub", From: "user", Fields: []aggregate.Field{{Name: "a", From: "a", Omit: true}, {Name: "b", From: "b", Omit: true}}},
			},
		}, e.Catalog(nil))
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Run(context.Background(), p, aggregate.Input{})
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(res.Body) {
			t.Fatalf("invalid output %s for %s / %s", res.Body, a, b)
		}
	})
}

var _ upstream.Kind
