// Package cache owns the response cache: encoded response bytes with the
// headers that go with them, in a byte-bounded ristretto cache with a TTL per
// entry, weak ETags, a lazily built gzip variant, and a Group that coalesces
// identical concurrent misses into one execution.
//
// It does not build keys from requests or decide what is cacheable; the HTTP
// front does. Correctness never depends on a hit: ristretto may drop a Set.
package cache
