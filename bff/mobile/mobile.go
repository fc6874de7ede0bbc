package mobile

import (
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

// Routes returns the mobile client's views.
func Routes() bff.RouteSet {
	return bff.RouteSet{Client: "mobile", Views: []aggregate.View{home(), order()}}
}

// home is WORKLOAD.md's mobile home view.
func home() aggregate.View {
	return aggregate.View{
		Name:   "mobile.home",
		Route:  "/home/{id}",
		Params: []aggregate.Param{{Name: "id", Pattern: `[0-9]{1,18}`}},
		Calls: []aggregate.Call{
			{Name: "user", Upstream: "users", Path: "/users/{id}"},
			{Name: "orders", Upstream: "orders", Path: "/orders", Query: "user_id={id}"},
			{Name: "recommendations", Upstream: "recs", Path: "/recommendations", Query: "user_id={id}", Optional: true},
		},
		Timeout: 2 * time.Second,
		Cache:   aggregate.CachePolicy{TTL: 30 * time.Second},
		Shape: []aggregate.Field{
			aggregate.Object("user", "user", aggregate.Pick("id"), aggregate.Pick("name"), aggregate.Pick("avatar_url")),
			aggregate.List("orders", "orders.orders", 3, aggregate.Pick("id"), aggregate.Pick("status"), aggregate.Pick("total_cents")),
			aggregate.List("recommendations", "recommendations.items", 5,
				aggregate.Pick("id"), aggregate.Pick("title"), aggregate.Pick("image_url")),
		},
	}
}

// order is the lean order detail: status and delivery date up front, the
// items with their product image from the catalog.
func order() aggregate.View {
	return aggregate.View{
		Name:   "mobile.order",
		Route:  "/orders/{order_id}",
		Params: []aggregate.Param{{Name: "order_id", Pattern: `ord-[0-9]{1,18}-[0-9]{1,4}`}},
		Calls: []aggregate.Call{
			{Name: "order", Upstream: "orders", Path: "/orders/{order_id}"},
			{Name: "products", Upstream: "catalog", Path: "/products", Query: "skus={order.items.#.sku}", Optional: true},
		},
		Timeout: 2 * time.Second,
		Cache:   aggregate.CachePolicy{TTL: 10 * time.Second},
		Shape: []aggregate.Field{
			aggregate.Object("order", "order",
				aggregate.Pick("id"), aggregate.Pick("status"), aggregate.Pick("total_cents"),
				aggregate.Rename("eta", "shipping.eta"), aggregate.Count("item_count", "items")),
			aggregate.List("products", "products.products", 10,
				aggregate.Pick("sku"), aggregate.Pick("title"), aggregate.Pick("image_url")),
		},
	}
}
