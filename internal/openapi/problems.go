package openapi

import (
	"strconv"

	"net/http"

	"github.com/bffproxy/bff/bff"
)

// problemTypes are the problem types the public listener gives, in the
// README's order. The admin listener's are not part of a client's API.
var problemTypes = []string{
	bff.ProblemInvalidParameter,
	bff.ProblemNotFound,
	bff.ProblemMethodNotAllowed,
	bff.ProblemURITooLong,
	bff.ProblemUpstreamError,
	bff.ProblemUpstreamUnavailable,
	bff.ProblemOverloaded,
	bff.ProblemUpstreamTimeout,
	bff.ProblemInternal,
}

// problemSchema describes bff.Problem. The type URNs are examples, not an
// enum: RFC 9457 clients must accept types they do not know, and a closed
// list would make generated validators reject a new one.
func problemSchema() *schema {
	str := func(desc string) *schema { return &schema{Type: types{tString}, Description: desc} }
	typ := str("A URN naming the kind of problem; one of those listed in `examples`, or a type added later.")
	typ.Format = "uri"
	for _, t := range problemTypes {
		typ.Examples = append(typ.Examples, rawString(t))
	}
	instance := str("The request's path.")
	instance.Format = "uri-reference"
	return &schema{
		Type: types{tObject},
		Description: "RFC 9457 problem details, with the view and upstream involved and the request's ID. " +
			"Never an upstream's own error body.",
		Properties: obj{
			{"type", typ},
			{"title", str("The status code's reason phrase.")},
			{"status", &schema{Type: types{tInteger}, Minimum: ptr(400), Maximum: ptr(599), Description: "The HTTP status code."}},
			{"detail", str("What went wrong, for people.")},
			{"instance", instance},
			{"view", str("The view that failed, when a view was found.")},
			{"upstream", str("The upstream whose call failed, for upstream problems.")},
			{"request_id", str("The request's ID: the caller's X-Request-Id if it sent a plain one, else a generated one. Also in the access log.")},
		},
		Required: []string{"type", "title", "status"},
	}
}

// problem is one problem response: its status, name in components, when
// it happens and the types it carries.
type problem struct {
	status int
	name   string
	when   string
	types  []string
	detail []string // an example detail per type
}

var problems = []problem{
	{http.StatusNotModified, "NotModified", "", nil, nil},
	{http.StatusBadRequest, "InvalidParameter", "A path or query parameter does not match its pattern, type or bounds. No upstream was called.",
		[]string{bff.ProblemInvalidParameter}, []string{`path parameter "id" does not have the expected format`}},
	{http.StatusBadRequest, "InvalidBody", "The body is not JSON, has a key twice in one object, or breaks the view's schema; or a parameter is wrong. No upstream was called.",
		[]string{bff.ProblemInvalidBody, bff.ProblemInvalidParameter}, []string{`the body's /qty: must be >= 1`, `path parameter "id" does not have the expected format`}},
	{http.StatusRequestEntityTooLarge, "BodyTooLarge", "The body is longer than the view takes. No upstream was called.",
		[]string{bff.ProblemBodyTooLarge}, []string{"the body is longer than 65536 bytes"}},
	{http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The body is not sent as application/json. No upstream was called.",
		[]string{bff.ProblemUnsupportedMediaType}, []string{"send the body as application/json"}},
	{http.StatusUnauthorized, "Unauthorized", "The view needs a bearer token and none was sent, or the one sent is not valid (WWW-Authenticate says which).",
		[]string{bff.ProblemUnauthorized}, []string{"this view needs a bearer token"}},
	{http.StatusForbidden, "Forbidden", "The token lacks a scope the view needs.",
		[]string{bff.ProblemForbidden}, []string{"the token lacks a scope this view needs"}},
	{http.StatusTooManyRequests, "TooManyRequests", "The caller is over the client's or the view's rate limit. Retry after the Retry-After seconds; RateLimit and RateLimit-Policy say more.",
		[]string{bff.ProblemTooManyRequests}, []string{"more than 600 requests in 1m0s; try again in 12s"}},
	{http.StatusNotFound, "NotFound", "No route for this path, or a required upstream has no such resource.",
		[]string{bff.ProblemNotFound}, []string{`upstream "users" has no such resource`}},
	{http.StatusRequestURITooLong, "URITooLong", "The request URI is longer than the server accepts.",
		[]string{bff.ProblemURITooLong}, []string{"the request URI is longer than 4096 bytes"}},
	{http.StatusInternalServerError, "Internal", "A bug: a call or shaping function panicked. The server keeps serving.",
		[]string{bff.ProblemInternal}, []string{"the view failed unexpectedly"}},
	{http.StatusBadGateway, "UpstreamError", "A required call failed: 5xx after retries, a transport error, or a malformed or oversized body.",
		[]string{bff.ProblemUpstreamError}, []string{`upstream "users" failed`}},
	{http.StatusServiceUnavailable, "Unavailable", "A required upstream's circuit breaker is open or it has too many calls in flight, " +
		"or the server is shedding load. Retry after the Retry-After seconds.",
		[]string{bff.ProblemUpstreamUnavailable, bff.ProblemOverloaded},
		[]string{`upstream "users" is unavailable (circuit breaker open)`, "too many requests in progress; try again shortly"}},
	{http.StatusGatewayTimeout, "Timeout", "A required call, or the whole view, ran out of time.",
		[]string{bff.ProblemUpstreamTimeout}, []string{`upstream "users" did not answer in time`}},
}

func problemResponses() map[string]obj {
	out := map[string]obj{}
	for _, p := range problems {
		if p.status == http.StatusNotModified {
			out[p.name] = obj{
				{"description", "Not modified: If-None-Match names the current ETag. No body."},
				{"headers", obj{
					{"Cache-Control", header("Cache-Control", true)},
					{"ETag", header("ETag", true)},
					{"X-Cache", header("X-Cache", true)},
				}},
			}
			continue
		}
		headers := obj{{"Cache-Control", header("Cache-Control", true)}}
		if p.status == http.StatusServiceUnavailable || p.status == http.StatusTooManyRequests {
			headers.set("Retry-After", header("Retry-After", true))
		}
		headers.set("X-Request-Id", header("X-Request-Id", false))
		var examples obj
		for i, t := range p.types {
			examples.set(t[len("urn:bff:problem:"):], obj{{"value", obj{
				{"type", t},
				{"title", http.StatusText(p.status)},
				{"status", p.status},
				{"detail", p.detail[i]},
				{"request_id", "5f1c09a2b3e4-1k"},
			}}})
		}
		desc := p.when + " Problem type"
		if len(p.types) > 1 {
			desc += "s"
		}
		for i, t := range p.types {
			if i > 0 {
				desc += ","
			}
			desc += " `" + t + "`"
		}
		out[p.name] = obj{
			{"description", desc + "."},
			{"headers", headers},
			{"content", obj{{"application/problem+json", obj{
				{"schema", ref("schemas", "Problem")},
				{"examples", examples},
			}}}},
		}
	}
	return out
}

func requestHeaders() map[string]obj {
	header := func(name, desc string, s *schema) obj {
		return obj{{"name", name}, {"in", "header"}, {"required", false}, {"description", desc}, {"schema", s}}
	}
	return map[string]obj{
		"Accept-Language": header("Accept-Language", "Forwarded to upstreams and part of the cache key. "+
			"A value no client sends (over 64 bytes, odd bytes) is dropped.", &schema{Type: types{tString}, MaxLength: ptr(64)}),
		"If-None-Match": header("If-None-Match", "An ETag from an earlier response: 304 if it is still current.",
			&schema{Type: types{tString}}),
		"X-Request-Id": header("X-Request-Id", "The caller's request ID, forwarded to upstreams and logged; "+
			"another value is replaced by a generated one.", requestIDSchema()),
		"Idempotency-Key": header("Idempotency-Key", "Makes the mutation safe to repeat: it is forwarded, and the upstream "+
			"calls are retried only when it is sent. Another value (over "+strconv.Itoa(bff.MaxIdempotencyKey)+" bytes, not printable ASCII) is a 400.",
			&schema{Type: types{tString}, MinLength: ptr(1), MaxLength: ptr(bff.MaxIdempotencyKey), Pattern: "^[ -~]+$"}),
	}
}

func requestIDSchema() *schema {
	return &schema{Type: types{tString}, Pattern: "^[A-Za-z0-9._-]{1,64}$"}
}

// header is a response header, written in place rather than referred to:
// TypeScript generators read "required" only there, and most headers here
// are present only sometimes.
func header(name string, required bool) obj {
	str := &schema{Type: types{tString}}
	seconds := &schema{Type: types{tInteger}, Minimum: ptr(0)}
	var desc string
	s := str
	switch name {
	case "Age":
		desc, s = "Seconds the response spent in the cache; on cache hits and stale copies.", seconds
	case bff.PartialHeader:
		desc = "Present only when optional parts are missing from a 200, one list item per part: " +
			"`part;reason=R`, with `;status=N` when the upstream answered with an error status and `;age=N` (seconds) for `reason=stale`, " +
			"e.g. `recommendations;reason=timeout, reviews;reason=error;status=500`. " +
			"Reasons: `timeout`, `error`, `breaker-open`, `overloaded`, `dependency` (a call it needed failed), `canceled`, " +
			"`stale` (its last good answer stands in). `stale;reason=R` alone means a stale copy of the whole response stands in " +
			"for a fresh one that failed for reason R. A partial response has `Cache-Control: no-store`."
	case "Cache-Control":
		desc = "From the view's cache policy: `public, max-age=N`, `private, max-age=N` (per-caller views), " +
			"or `no-store` (uncached views, partial responses, errors)."
	case "ETag":
		desc = "A weak tag of the body (`W/\"…\"`), the same on every replica; send it back in If-None-Match."
	case "Retry-After":
		desc, s = "Seconds to wait before retrying.", seconds
	case "Server-Timing":
		desc = "On a cache miss, one entry per upstream call: `user;dur=1.2;desc=\"users\"`."
	case "Vary":
		desc = "`Accept-Encoding, Accept-Language`, and `Authorization` for per-caller views."
	case "X-Cache":
		desc = "How the response was served: from the cache (`HIT`), made now (`MISS`), or a copy past its TTL (`STALE`)."
		s = &schema{Type: types{tString}, Enum: []string{"HIT", "MISS", "STALE"}}
	case "X-Request-Id":
		desc, s = "The request's ID, on errors and partial responses.", requestIDSchema()
	}
	return obj{{"description", desc}, {"required", required}, {"schema", s}}
}

func rawString(s string) []byte {
	var b []byte
	b = append(b, '"')
	b = append(b, s...) // URNs need no escaping
	return append(b, '"')
}
