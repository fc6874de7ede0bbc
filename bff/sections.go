package bff

import (
	"time"

	"github.com/bffproxy/bff/cache"
)

// sectionStore keeps the last good answers of optional calls in the
// response cache, so one memory bound covers both. Their keys begin with
// the request's path, then \x00\x01, and they are tagged with their view:
// a purge of either reaches them, and a purged answer never stands in.
type sectionStore struct {
	cache *cache.Cache
	now   func() time.Time
}

func (s *sectionStore) Get(key string, maxAge time.Duration) ([]byte, time.Duration, bool) {
	e, ok := s.cache.Get(key)
	if !ok {
		return nil, 0, false
	}
	age := s.now().Sub(e.StoredAt)
	if age > maxAge {
		return nil, 0, false
	}
	return e.Body, age, true
}

func (s *sectionStore) Set(key, view string, epoch uint64, body []byte, keep time.Duration) {
	s.cache.Set(key, &cache.Entry{Body: body, StoredAt: s.now(), Tag: view, Epoch: epoch}, keep)
}
