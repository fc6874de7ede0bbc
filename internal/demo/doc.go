// Package demo serves the built-in demo upstreams that the BFF starts
// in-process on loopback when no real upstream URL is configured: users,
// orders, recs (recommendations) and catalog.
//
// It owns the demo endpoints, their deterministic data and the loopback
// servers that run them:
//
//	users    GET /users/{id}
//	orders   GET /orders?user_id={id}, GET /orders/{order_id}
//	recs     GET /recommendations?user_id={id}
//	catalog  GET /products?skus=SKU-000001,SKU-000002, GET /products/{sku}
//	all      GET /healthz
//
// The shapes follow the "home" workload (shared/WORKLOAD.md). Data is derived
// from the id alone with a small splitmix64 generator, so the same id gives
// the same bytes in every process and run. Valid user ids are 1..1000000 in
// canonical decimal form (no sign, no leading zero); SKUs are "SKU-" followed
// by six digits, 000001..999999. Unknown or malformed ids answer 404 with
// {"error":"not found"}; methods other than GET and HEAD answer 405.
//
// Order item SKUs and recommendation ids are catalog SKUs, and their titles,
// prices and ratings are the catalog's, so a view can join the upstreams.
//
// Bodies for user ids up to 4096 are cached by each handler after the first
// request (about 15 KB per id over users, orders and recs, so at most about
// 65 MB when every cached id has been asked for); other ids are generated on
// every request.
//
// It does not simulate latency, failures or caching headers (use
// shared/bench/upstreams for that), does not listen on anything but
// 127.0.0.1, does not log, and is not a model of a real service's API: it
// exists so that the BFF runs, and can be tried, without other processes.
package demo
