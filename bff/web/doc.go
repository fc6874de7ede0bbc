// Package web is the web SPA's route set, mounted at /web: rich views with
// more fields and longer lists than mobile. The views are data, in
// views.yaml beside this file (embedded in the binary); adding one is adding
// an entry there. It does not route, cache or call upstreams itself: package
// bff and the aggregate engine do.
package web
