// Package bff is the HTTP front shared by every client: the chi router, the
// middleware chain (request ID, panic recovery, access log, request limits),
// RFC 9457 problem responses, and the handler that serves a view from the
// cache or runs it through the aggregate engine, with ETag/304, gzip,
// Cache-Control, Vary, Server-Timing and the partial-response header.
//
// Each client's route set (bff/web, bff/mobile) is plain data handed to New;
// this package mounts it under /{client}. It does not define views.
package bff
