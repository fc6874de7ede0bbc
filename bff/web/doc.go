// Package web is the web SPA's route set, mounted at /web: rich views with
// more fields and longer lists than mobile. Each view is a value in this
// package; adding one is appending it to Routes. It does not route, cache or
// call upstreams itself: package bff and the aggregate engine do.
package web
