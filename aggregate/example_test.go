package aggregate_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bffproxy/bff/aggregate"
)

// A view is data: the calls a screen needs and the shape it wants. The user
// and their orders are fetched in parallel; recommendations may fail
// without failing the screen.
func ExampleCompile() {
	engine := aggregate.NewEngine(map[string]aggregate.Doer{
		"users":  body(`{"id":7,"name":"Ada","email":"ada@example.com","bio":"..."}`),
		"orders": body(`{"orders":[{"id":"o2","items":[1,2]},{"id":"o1","items":[3]}]}`),
		"recs":   failing(0, 0),
	})
	plan, err := aggregate.Compile(aggregate.View{
		Name:   "web.profile",
		Route:  "/profile/{id}",
		Params: []aggregate.Param{{Name: "id", Pattern: `[0-9]+`}},
		Calls: []aggregate.Call{
			{Name: "user", Upstream: "users", Path: "/users/{id}"},
			{Name: "orders", Upstream: "orders", Path: "/orders", Query: "user_id={id}"},
			{Name: "recommendations", Upstream: "recs", Path: "/recommendations", Query: "user_id={id}", Optional: true},
		},
		Cache: aggregate.CachePolicy{TTL: 30 * time.Second},
		Shape: []aggregate.Field{
			aggregate.Object("user", "user", aggregate.Pick("id"), aggregate.Pick("name")),
			aggregate.List("orders", "orders.orders", 1, aggregate.Pick("id"), aggregate.Count("item_count", "items")),
			aggregate.List("recommendations", "recommendations.items", 5, aggregate.Pick("id")),
		},
	}, engine.Catalog(nil))
	if err != nil {
		panic(err)
	}
	params := []string{"7"} // in plan.ParamNames() order
	if err := plan.Validate(params); err != nil {
		panic(err)
	}
	res, err := engine.Run(context.Background(), plan, aggregate.Input{Params: params})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(res.Body))
	fmt.Println(res.Missing[0].Call, res.Missing[0].Reason)
	// Output:
	// {"user":{"id":7,"name":"Ada"},"orders":[{"id":"o2","item_count":2}],"recommendations":[]}
	// recommendations error
}
