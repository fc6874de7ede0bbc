// Package aggregate runs views. A View is data: the upstream calls one client
// screen needs, their dependencies, which of them may fail, the cache policy
// and the shape of the response. Compile checks a View once and turns it
// into a Plan; Engine.Run executes a Plan for one request: independent calls
// at once under an errgroup, a dependent call as soon as what it needs is
// there, each inside what is left of the view's deadline; then it shapes the
// upstream JSON into the client's JSON by copying the picked values' bytes,
// without decoding whole documents.
//
// It does not speak HTTP to clients, choose status codes, cache, or know
// which client a view belongs to; it reaches upstreams through the small
// Doer interface.
package aggregate
