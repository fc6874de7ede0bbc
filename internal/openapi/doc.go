// Package openapi describes one client's views as an OpenAPI 3.1 document,
// generated from the routes the front serves (bff.Front.Routes), and serves
// it over HTTP (Handler).
//
// The document says what a view declares: its path and parameter patterns,
// the structure of its response (objects, lists and their limits, counts,
// constants, defaults, optional parts), the headers, and the problem+json
// errors a view can give. Where a value is copied from an upstream the view
// does not say its type; example responses (Options.Examples) refine it,
// and without them the schema is left open rather than guessed. A type
// includes null only where an optional call, a default or an example says
// so: an upstream that stops sending a field is drift, reported elsewhere,
// not part of the contract.
//
// It does not read view files, validate requests or responses, or know
// upstreams beyond the names the views use.
package openapi
