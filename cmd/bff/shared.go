package main

import (
	"fmt"
	"log/slog"

	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/config"
	"github.com/bffproxy/bff/internal/shared"
	"github.com/bffproxy/bff/internal/telemetry"
)

// sharedTier connects to Redis when the config names it: the link (for
// rate limits and status) and the second cache tier. With the memory tier
// off (max_bytes 0), responses are cached in Redis alone. Both are nil
// without Redis; close releases what was made.
func sharedTier(cfg config.Redis, memory *cache.Cache, metrics *telemetry.Metrics, log *slog.Logger) (rdb *shared.Redis, tier *cache.Shared, close func(), err error) {
	if cfg.URL == "" {
		return nil, nil, func() {}, nil
	}
	rec, err := metrics.Redis()
	if err != nil {
		return nil, nil, nil, err
	}
	rdb, err = shared.New(shared.Config{URL: cfg.URL, Prefix: cfg.Prefix, Timeout: cfg.Timeout, Logger: log, Observer: rec})
	if err != nil {
		return nil, nil, nil, err
	}
	tier, err = cache.NewShared(cache.SharedConfig{
		Redis: rdb, Memory: memory, Lock: cfg.Lock, LockWait: cfg.LockWait, LockTTL: cfg.LockTTL,
		MaxValueBytes: cfg.MaxValueBytes, PurgeRetention: cfg.PurgeRetention, Logger: log,
	})
	if err != nil {
		_ = rdb.Close()
		return nil, nil, nil, fmt.Errorf("redis: %w", err)
	}
	if err := metrics.WatchShared(tier); err != nil {
		tier.Close()
		_ = rdb.Close()
		return nil, nil, nil, err
	}
	log.Info("redis: shared cache tier and rate limits on", "prefix", rdb.Prefix(), "lock", cfg.Lock, "memory_tier", memory.Enabled())
	return rdb, tier, func() { tier.Close(); _ = rdb.Close() }, nil
}

// sharedLimits is where rate limits count: Redis unless turned off.
func sharedLimits(cfg config.Redis, rdb *shared.Redis) *shared.Redis {
	if !cfg.SharedRateLimits() {
		return nil
	}
	return rdb
}
