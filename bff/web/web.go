package web

import (
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

// Routes returns the web client's views.
func Routes() bff.RouteSet {
	return bff.RouteSet{Client: "web", Views: []aggregate.View{home(), order()}}
}

// home is WORKLOAD.md's web home view: the user, their ten newest orders and
// ten recommendations, fetched in parallel.
func home() aggregate.View {
	return aggregate.View{
		Name:   "web.home",
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
			aggregate.Object("user", "user",
				aggregate.Pick("id"), aggregate.Pick("name"), aggregate.Pick("email"), aggregate.Pick("avatar_url")),
			aggregate.List("orders", "orders.orders", 10,
				aggregate.Pick("id"), aggregate.Pick("status"), aggregate.Pick("total_cents"), aggregate.Pick("created_at"),
				aggregate.Count("item_count", "items")),
			aggregate.List("recommendations", "recommendations.items", 10,
				aggregate.Pick("id"), aggregate.Pick("title"), aggregate.Pick("price_cents"), aggregate.Pick("image_url"), aggregate.Pick("rating")),
		},
	}
}

// order is an order's detail page: the order, then the catalog entries of
// its items in one batch call that waits for the order's SKUs.
func order() aggregate.View {
	return aggregate.View{
		Name:   "web.order",
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
				aggregate.Pick("id"), aggregate.Pick("status"), aggregate.Pick("total_cents"), aggregate.Pick("currency"),
				aggregate.Pick("created_at"),
				aggregate.Object("shipping", "shipping", aggregate.Pick("carrier"), aggregate.Pick("tracking"), aggregate.Pick("eta")),
				aggregate.List("items", "items", 0,
					aggregate.Pick("sku"), aggregate.Pick("name"), aggregate.Pick("qty"), aggregate.Pick("price_cents")),
				aggregate.Count("item_count", "items")),
			aggregate.List("products", "products.products", 0,
				aggregate.Pick("sku"), aggregate.Pick("title"), aggregate.Pick("brand"), aggregate.Pick("image_url"),
				aggregate.Pick("rating"), aggregate.Pick("in_stock")),
		},
	}
}
