package bff

import "time"

// Metrics receives what the front measures about requests. Its methods run
// on every request and must be cheap and safe for concurrent use.
type Metrics interface {
	// View returns the recorder of one view. It is called when views are
	// loaded, not per request. Client and view are "" for requests no view
	// served (unknown paths, /healthz).
	View(client, view string) ViewMetrics
}

// ViewMetrics records one view's requests.
type ViewMetrics interface {
	Request(status int, d time.Duration, cache CacheResult, partial bool)
	// Shed counts a request turned away, before any upstream work, because
	// too many were in progress.
	Shed()
	// MissingField counts a response field its upstream did not send
	// ("orders[].total_cents"): a sign the upstream changed.
	MissingField(field string)
}

// CacheResult is how the response cache took part in a request.
type CacheResult uint8

const (
	// CacheNone: no cache lookup (an error before it, or no view).
	CacheNone CacheResult = iota
	// CacheHit: served from the cache.
	CacheHit
	// CacheMiss: the view ran for this request.
	CacheMiss
	// CacheCoalesced: the request waited for an identical one's execution.
	CacheCoalesced
	// CacheStale: a copy past its TTL was served (stale-while-revalidate,
	// or standing in for an answer that could not be made).
	CacheStale
	// CacheShared: missed in memory, served from the shared tier (Redis),
	// filled by another replica or before a restart.
	CacheShared
)

func (c CacheResult) String() string {
	switch c {
	case CacheHit:
		return "HIT"
	case CacheMiss:
		return "MISS"
	case CacheCoalesced:
		return "COALESCED"
	case CacheStale:
		return "STALE"
	case CacheShared:
		return "SHARED"
	}
	return ""
}

type noMetrics struct{}

func (noMetrics) View(string, string) ViewMetrics               { return noMetrics{} }
func (noMetrics) Request(int, time.Duration, CacheResult, bool) {}
func (noMetrics) Shed()                                         {}
func (noMetrics) MissingField(string)                           {}
