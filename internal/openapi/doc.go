// Package openapi describes one client's views as an OpenAPI 3.1 document,
// generated from the routes the front serves (bff.Front.Routes), and serves
// it over HTTP.
//
// The document says what a view declares: its path and parameter patterns,
// the structure of its response (objects, lists and their limits, counts,
// constants, defaults, optional parts), the headers and the problem+json
// errors every view can give. Where a value is copied from an upstream the
// view does not say its type; example responses (Options.Examples) refine it,
// and without them the schema is left open rather than guessed.
//
// It does not read view files, validate requests or responses, or know
// upstreams beyond the names the views use.
package openapi
