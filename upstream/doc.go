// Package upstream owns the resilient HTTP client for one upstream API: a
// pooled keep-alive transport of its own, a circuit breaker (gobreaker) that
// sees every attempt, retries (go-retryablehttp) outside the breaker and
// inside the caller's deadline, a response size limit, the header allowlist
// and safe construction of upstream URLs from client values.
//
// It does not know views, clients or caching: it takes a method, an escaped
// path and a query, and returns the status and the buffered body, or an
// *Error that says what went wrong (timeout, breaker open, HTTP status, ...).
package upstream
