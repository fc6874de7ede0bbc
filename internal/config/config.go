package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bffproxy/bff/upstream"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"
)

// Config is the whole file. Every field may be omitted.
type Config struct {
	// Addr is the public listener. Default 127.0.0.1:8080.
	Addr    string  `yaml:"addr"`
	Server  Server  `yaml:"server"`
	Log     Log     `yaml:"log"`
	Cache   Cache   `yaml:"cache"`
	Views   Views   `yaml:"views"`
	Admin   Admin   `yaml:"admin"`
	Tracing Tracing `yaml:"tracing"`
	// Clients holds each client's edge policy (CORS), by client name.
	Clients map[string]*Client `yaml:"clients"`
	// FaultInjection honours the Bff-Fault request header, so frontend
	// teams can see their degraded states. Default: on only when every
	// upstream is a demo upstream; a production config leaves it out or
	// sets false.
	FaultInjection *bool                      `yaml:"fault_injection"`
	Upstreams      map[string]*UpstreamConfig `yaml:"upstreams"`
}

// Admin is the operators' listener: metrics, health, pprof, status page.
type Admin struct {
	// Addr is where it listens. Default 127.0.0.1:9090; "off" disables it.
	Addr string `yaml:"addr"`
	// Token, if set, must be sent as a bearer token to every admin
	// endpoint but /healthz and /readyz.
	Token string `yaml:"token"`
}

// Client is one route set's edge policy.
type Client struct {
	CORS      *CORS      `yaml:"cors"`
	RateLimit *RateLimit `yaml:"rate_limit"`
	Auth      *Auth      `yaml:"auth"`
}

// Auth is a client's token verification: see auth.Config.
type Auth struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// DefaultMode is the mode of views that set none: none, optional
	// (default) or required.
	DefaultMode    string        `yaml:"default_mode"`
	Leeway         time.Duration `yaml:"leeway"`
	JWKSURL        string        `yaml:"jwks_url"`
	JWKSRefresh    time.Duration `yaml:"jwks_refresh"`
	JWKSMinRefresh time.Duration `yaml:"jwks_min_refresh"`
	Keys           []AuthKey     `yaml:"keys"`
}

// Mode is the mode of the client's views that set none: DefaultMode, or
// optional when unset.
func (a *Auth) Mode() string { return cmp.Or(a.DefaultMode, "optional") }

// AuthKey is one verification key: an HMAC secret (inline or from an
// environment variable) or a PEM public key (inline or in a file).
type AuthKey struct {
	KID           string `yaml:"kid"`
	Alg           string `yaml:"alg"`
	Secret        string `yaml:"secret"`
	SecretEnv     string `yaml:"secret_env"`
	PublicKey     string `yaml:"public_key"`
	PublicKeyFile string `yaml:"public_key_file"`
}

// RateLimit: see bff.RateLimit.
type RateLimit struct {
	Requests int              `yaml:"requests"`
	Window   time.Duration    `yaml:"window"`
	Views    map[string]Limit `yaml:"views"`
}

// Limit is a number of requests per window.
type Limit struct {
	Requests int           `yaml:"requests"`
	Window   time.Duration `yaml:"window"`
}

// CORS: see bff.CORS.
type CORS struct {
	AllowedOrigins   []string      `yaml:"allowed_origins"`
	AllowedMethods   []string      `yaml:"allowed_methods"`
	AllowedHeaders   []string      `yaml:"allowed_headers"`
	ExposedHeaders   []string      `yaml:"exposed_headers"`
	AllowCredentials bool          `yaml:"allow_credentials"`
	MaxAge           time.Duration `yaml:"max_age"`
}

// AdminOff is the Admin.Addr that turns the admin listener off.
const AdminOff = "off"

// Tracing exports OpenTelemetry traces; off unless Endpoint is set.
type Tracing struct {
	// Endpoint is the OTLP collector: http://host:4318 (OTLP/HTTP) or
	// grpc://host:4317 (OTLP/gRPC); https and grpcs use TLS.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces recorded; 0 follows only the
	// callers' sampled traces. Default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName names the process in traces. Default "bff".
	ServiceName string `yaml:"service_name"`
}

// Views are the view files read at start and on reload, besides the
// built-in ones.
type Views struct {
	// Dir holds *.yaml view files; they add views or replace built-in ones
	// by name. Empty means built-in views only.
	Dir string `yaml:"dir"`
	// Poll is how often Dir is checked for changes. Default 1s.
	Poll time.Duration `yaml:"poll"`
}

// Server bounds the public listener.
type Server struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"` // default 5s
	ReadTimeout       time.Duration `yaml:"read_timeout"`        // a request body; default 10s
	WriteTimeout      time.Duration `yaml:"write_timeout"`       // default 30s
	IdleTimeout       time.Duration `yaml:"idle_timeout"`        // default 120s
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`    // default 32 KiB
	MaxURLBytes       int           `yaml:"max_url_bytes"`       // default 4096
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`    // default 15s
	// ShutdownDelay keeps serving, with /readyz failing, this long after a
	// stop signal before the listener closes, so load balancers stop sending
	// new requests first. Default 0.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
	// TrustedProxies are the CIDR prefixes whose X-Forwarded-For is believed
	// (rate limits key callers by address). Empty: the peer is the caller.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxInFlight bounds requests doing upstream work; past it, 503 at once.
	// Default 1024; negative means no bound.
	MaxInFlight int `yaml:"max_in_flight"`
}

// Log selects the log format and the access log.
type Log struct {
	Format    string `yaml:"format"`     // json (default) or text
	Level     string `yaml:"level"`      // debug, info (default), warn, error
	AccessLog *bool  `yaml:"access_log"` // default true
}

// SlogLevel is Level as slog's (validated: "" is info).
func (l Log) SlogLevel() slog.Level {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level))
	return level
}

// Cache sizes the response cache.
type Cache struct {
	// MaxBytes bounds the cache; 0 turns it off. Default 64 MiB.
	MaxBytes   *int64        `yaml:"max_bytes"`
	PartialTTL time.Duration `yaml:"partial_ttl"` // default 1s
	// Redis, if its URL is set, is the second tier shared by replicas,
	// and where rate-limit counters live.
	Redis Redis `yaml:"redis"`
}

// Redis is the shared tier: see cache.SharedConfig and shared.Config.
type Redis struct {
	// URL is redis://[user:password@]host:port[/db] (rediss:// for TLS).
	// BFF_REDIS_URL overrides it: the place for a password.
	URL            string        `yaml:"url"`
	Prefix         string        `yaml:"prefix"`  // default "bff"
	Timeout        time.Duration `yaml:"timeout"` // per command, default 100ms
	Lock           bool          `yaml:"lock"`
	LockWait       time.Duration `yaml:"lock_wait"` // default 1s
	LockTTL        time.Duration `yaml:"lock_ttl"`  // default 10s
	MaxValueBytes  int           `yaml:"max_value_bytes"`
	PurgeRetention time.Duration `yaml:"purge_retention"` // default 1h
	// RateLimits keeps rate-limit counters in Redis (default true); false
	// counts per replica and saves a round trip on every limited request.
	RateLimits *bool `yaml:"rate_limits"`
}

// SharedRateLimits reports whether rate limits count in Redis.
func (r Redis) SharedRateLimits() bool { return r.URL != "" && (r.RateLimits == nil || *r.RateLimits) }

// UpstreamConfig is one upstream API. An upstream without a URL is served by
// the built-in demo, if the demo knows it.
type UpstreamConfig struct {
	URL                  string        `yaml:"url"`
	Timeout              time.Duration `yaml:"timeout"`
	AttemptTimeout       time.Duration `yaml:"attempt_timeout"`
	MaxBodyBytes         int64         `yaml:"max_body_bytes"`
	MaxConns             int           `yaml:"max_conns"`
	MaxIdleConns         int           `yaml:"max_idle_conns"`
	ForwardAuthorization bool          `yaml:"forward_authorization"`
	MaxConcurrent        int           `yaml:"max_concurrent"`
	QueueWait            time.Duration `yaml:"queue_wait"`
	DeadlineHeader       string        `yaml:"deadline_header"`
	Retry                Retry         `yaml:"retry"`
	RetryBudget          RetryBudget   `yaml:"retry_budget"`
	Breaker              Breaker       `yaml:"breaker"`
}

// RetryBudget: see upstream.BudgetConfig.
type RetryBudget struct {
	Ratio        float64       `yaml:"ratio"`
	MinPerSecond float64       `yaml:"min_per_second"`
	Window       time.Duration `yaml:"window"`
}

// Retry: see upstream.RetryConfig. Max defaults to 2 here.
type Retry struct {
	Max           *int          `yaml:"max"`
	WaitMin       time.Duration `yaml:"wait_min"`
	WaitMax       time.Duration `yaml:"wait_max"`
	RetryAfterMax time.Duration `yaml:"retry_after_max"`
}

// Breaker: see upstream.BreakerConfig.
type Breaker struct {
	ConsecutiveFailures uint32        `yaml:"consecutive_failures"`
	FailureRatio        float64       `yaml:"failure_ratio"`
	MinRequests         uint32        `yaml:"min_requests"`
	Interval            time.Duration `yaml:"interval"`
	OpenTimeout         time.Duration `yaml:"open_timeout"`
	HalfOpenProbes      uint32        `yaml:"half_open_probes"`
}

// MinPurgeRetention bounds cache.redis.purge_retention from below.
const MinPurgeRetention = 10 * time.Second

// DefaultRetries is the retry count when the file sets none.
const DefaultRetries = 2

// Load reads a config file; an empty path gives the defaults.
func Load(path string) (*Config, error) {
	c := &Config{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		// A second document (files concatenated, a template's '---') would
		// be dropped without a word, and every setting in it with it.
		for {
			var more yaml.Node
			err := dec.Decode(&more)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || !emptyDocument(&more) {
				return nil, fmt.Errorf("config %s: one YAML document expected, found another after it (a '---' line?)", path)
			}
		}
	}
	if c.Upstreams == nil {
		c.Upstreams = map[string]*UpstreamConfig{}
	}
	return c, nil
}

// emptyDocument is what a trailing '---' decodes to.
func emptyDocument(n *yaml.Node) bool {
	return n.Kind == yaml.DocumentNode && len(n.Content) == 1 && n.Content[0].Tag == "!!null"
}

var upstreamNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// ApplyEnv overrides the file with BFF_* environment variables:
// BFF_ADDR, BFF_ADMIN_ADDR, BFF_ADMIN_TOKEN, BFF_TRACING_ENDPOINT, BFF_CACHE_MAX_BYTES,
// BFF_REDIS_URL, BFF_VIEWS_DIR, BFF_LOG_FORMAT, BFF_LOG_LEVEL, BFF_ACCESS_LOG and
// BFF_UPSTREAM_<NAME>_URL for every upstream in the file.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	if v := getenv("BFF_ADDR"); v != "" {
		c.Addr = v
	}
	if v := getenv("BFF_ADMIN_ADDR"); v != "" {
		c.Admin.Addr = v
	}
	if v := getenv("BFF_ADMIN_TOKEN"); v != "" {
		c.Admin.Token = v
	}
	// A secret mounted from a file often ends in a newline no client sends.
	// One that is nothing but whitespace is a mistake, not "no token".
	if t := strings.TrimSpace(c.Admin.Token); t != c.Admin.Token {
		if t == "" {
			return errors.New("config: admin.token (or BFF_ADMIN_TOKEN) is set but blank: give a token, or leave it unset")
		}
		c.Admin.Token = t
	}
	if v := getenv("BFF_TRACING_ENDPOINT"); v != "" {
		c.Tracing.Endpoint = v
	}
	if v := getenv("BFF_FAULT_INJECTION"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("BFF_FAULT_INJECTION=%q: want true or false", v)
		}
		c.FaultInjection = &b
	}
	if v := getenv("BFF_CACHE_MAX_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("BFF_CACHE_MAX_BYTES=%q: want a byte count >= 0", v)
		}
		c.Cache.MaxBytes = &n
	}
	if v := getenv("BFF_REDIS_URL"); v != "" {
		c.Cache.Redis.URL = v
	}
	if v := getenv("BFF_VIEWS_DIR"); v != "" {
		c.Views.Dir = v
	}
	if v := getenv("BFF_LOG_FORMAT"); v != "" {
		c.Log.Format = v
	}
	if v := getenv("BFF_LOG_LEVEL"); v != "" {
		c.Log.Level = v
	}
	if v := getenv("BFF_ACCESS_LOG"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("BFF_ACCESS_LOG=%q: want true or false", v)
		}
		c.Log.AccessLog = &b
	}
	for name, u := range c.Upstreams {
		if u == nil {
			u = &UpstreamConfig{}
			c.Upstreams[name] = u
		}
		if v := getenv(EnvURL(name)); v != "" {
			u.URL = v
		}
	}
	return c.validate()
}

// AddUpstreams adds the upstreams views call that the file does not name,
// each with its URL from BFF_UPSTREAM_<NAME>_URL, if set.
func (c *Config) AddUpstreams(names []string, getenv func(string) string) error {
	for _, name := range names {
		if _, ok := c.Upstreams[name]; !ok {
			c.Upstreams[name] = &UpstreamConfig{URL: getenv(EnvURL(name))}
		}
	}
	return c.validate()
}

// ApplyAddrFlags sets the listen addresses the -addr and -admin-addr flags
// give (they win over the file and environment; empty: not given), then
// checks them (see CheckAddrs).
func (c *Config) ApplyAddrFlags(addr, admin string) error {
	if addr != "" {
		c.Addr = addr
	}
	if admin != "" {
		c.Admin.Addr = admin
	}
	return c.checkAddrs()
}

// checkAddrs refuses listen addresses the listeners could not take: one
// without a port, and the admin listener on the public address. Call it
// once the flags are applied: they win over the file and environment.
func (c *Config) checkAddrs() error {
	for _, a := range []struct {
		what, addr string
		mayBeOff   bool
	}{{"addr (BFF_ADDR, -addr)", c.Addr, false}, {"admin.addr (BFF_ADMIN_ADDR, -admin-addr)", c.Admin.Addr, true}} {
		if a.mayBeOff && a.addr == AdminOff {
			continue
		}
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			return fmt.Errorf("config: %s %q: want host:port, such as 127.0.0.1:8080", a.what, a.addr)
		}
	}
	if _, port, _ := net.SplitHostPort(c.Addr); c.Admin.Addr == c.Addr && port != "0" {
		return fmt.Errorf("config: admin.addr %q is the public address: the admin listener needs its own (or \"off\")", c.Admin.Addr)
	}
	return nil
}

// EnvURL is the variable that sets an upstream's URL.
func EnvURL(name string) string {
	return "BFF_UPSTREAM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_URL"
}

func (c *Config) validate() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.Admin.Addr == "" {
		c.Admin.Addr = "127.0.0.1:9090"
	}
	if r := c.Tracing.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		return fmt.Errorf("config: tracing.sample_ratio %v: want a share between 0 and 1", *r)
	}
	// A negative value is a slip (a sign, a template that subtracted), not
	// "the default", which an unset or zero value already means.
	sv := c.Server
	if err := notNegative("", map[string]float64{
		"server.read_header_timeout": float64(sv.ReadHeaderTimeout), "server.read_timeout": float64(sv.ReadTimeout),
		"server.write_timeout": float64(sv.WriteTimeout), "server.idle_timeout": float64(sv.IdleTimeout),
		"server.shutdown_timeout": float64(sv.ShutdownTimeout), "server.shutdown_delay": float64(sv.ShutdownDelay),
		"server.max_header_bytes": float64(sv.MaxHeaderBytes), "server.max_url_bytes": float64(sv.MaxURLBytes),
		"cache.partial_ttl": float64(c.Cache.PartialTTL), "views.poll": float64(c.Views.Poll),
	}); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(c.Clients)) {
		cc := c.Clients[name]
		if cc == nil {
			continue
		}
		values := map[string]float64{}
		if cc.Auth != nil {
			values["auth.jwks_refresh"], values["auth.jwks_min_refresh"] = float64(cc.Auth.JWKSRefresh), float64(cc.Auth.JWKSMinRefresh)
		}
		if cc.CORS != nil {
			values["cors.max_age"] = float64(cc.CORS.MaxAge)
		}
		if err := notNegative("clients."+name+".", values); err != nil {
			return err
		}
	}
	for _, p := range c.Server.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			return fmt.Errorf("config: server.trusted_proxies: %q: want a CIDR prefix such as 10.0.0.0/8", p)
		}
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		return fmt.Errorf("config: log.format %q: want json or text", c.Log.Format)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Views.Poll == 0 {
		c.Views.Poll = time.Second
	}
	r := c.Cache.Redis
	if err := notNegative("cache.", map[string]float64{
		"max_bytes": float64(c.CacheMaxBytes(0)), "redis.timeout": float64(r.Timeout), "redis.lock_wait": float64(r.LockWait),
		"redis.lock_ttl": float64(r.LockTTL), "redis.max_value_bytes": float64(r.MaxValueBytes),
		"redis.purge_retention": float64(r.PurgeRetention),
	}); err != nil {
		return err
	}
	if r := c.Cache.Redis.PurgeRetention; r > 0 && r < MinPurgeRetention {
		// Replicas read the log every second and take a gap in their reads
		// longer than this for an outage, which empties their memory.
		return fmt.Errorf("config: cache.redis.purge_retention %s: want at least %s", r, MinPurgeRetention)
	}
	if u := c.Cache.Redis.URL; u != "" {
		// Checked here so that `bff check` catches it; the message must not
		// quote the URL, which may hold a password.
		if _, err := redis.ParseURL(u); err != nil {
			return fmt.Errorf("config: cache.redis.url (or BFF_REDIS_URL) is not valid: want redis://[user:password@]host:port[/db number], rediss://… or unix://…")
		}
	}
	if r := c.Cache.Redis; r.URL == "" && r.Lock {
		return fmt.Errorf("config: cache.redis.lock needs Redis: set cache.redis.url or BFF_REDIS_URL")
	}
	for _, name := range c.UpstreamNames() {
		u := c.Upstreams[name]
		if !upstreamNameRE.MatchString(name) {
			return fmt.Errorf("config: upstreams.%s: names are lower-case letters, digits, '_' or '-'", name)
		}
		retries := 0
		if u.Retry.Max != nil {
			retries = *u.Retry.Max
		}
		if err := notNegative("upstreams."+name+".", map[string]float64{
			"retry.max": float64(retries),
			"timeout":   float64(u.Timeout), "attempt_timeout": float64(u.AttemptTimeout),
			"max_body_bytes": float64(u.MaxBodyBytes), "max_conns": float64(u.MaxConns),
			"max_idle_conns": float64(u.MaxIdleConns), "queue_wait": float64(u.QueueWait),
			"retry.wait_min": float64(u.Retry.WaitMin), "retry.wait_max": float64(u.Retry.WaitMax),
			"retry.retry_after_max":       float64(u.Retry.RetryAfterMax),
			"retry_budget.min_per_second": u.RetryBudget.MinPerSecond, // a negative ratio: no budget
			"retry_budget.window":         float64(u.RetryBudget.Window),
			"breaker.interval":            float64(u.Breaker.Interval), "breaker.open_timeout": float64(u.Breaker.OpenTimeout),
		}); err != nil {
			return err
		}
		if u.Breaker.FailureRatio < 0 || u.Breaker.FailureRatio > 1 {
			return fmt.Errorf("config: upstreams.%s.breaker.failure_ratio %v: want a share between 0 and 1 (0.5 for half)", name, u.Breaker.FailureRatio)
		}
	}
	// user-profile and user_profile would read one BFF_UPSTREAM_*_URL.
	byVar := map[string]string{}
	for _, name := range c.UpstreamNames() {
		if other, dup := byVar[EnvURL(name)]; dup {
			return fmt.Errorf("config: upstreams %s and %s both take their URL from %s: rename one", other, name, EnvURL(name))
		}
		byVar[EnvURL(name)] = name
	}
	return nil
}

// notNegative refuses the first negative value, in name order.
func notNegative(prefix string, values map[string]float64) error {
	for _, n := range slices.Sorted(maps.Keys(values)) {
		if values[n] < 0 {
			return fmt.Errorf("config: %s%s must not be negative", prefix, n)
		}
	}
	return nil
}

// UpstreamNames lists the upstreams, sorted.
func (c *Config) UpstreamNames() []string {
	names := make([]string, 0, len(c.Upstreams))
	for n := range c.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CacheMaxBytes is the configured bound, or the default.
func (c *Config) CacheMaxBytes(def int64) int64 {
	if c.Cache.MaxBytes == nil {
		return def
	}
	return *c.Cache.MaxBytes
}

// AccessLog reports whether to write access logs (default true).
func (c *Config) AccessLog() bool { return c.Log.AccessLog == nil || *c.Log.AccessLog }

// ClientConfig turns an upstream's settings into upstream.Config.
func (u *UpstreamConfig) ClientConfig(name string) upstream.Config {
	retries := DefaultRetries
	if u.Retry.Max != nil {
		retries = *u.Retry.Max
	}
	return upstream.Config{
		Name:                 name,
		BaseURL:              u.URL,
		Timeout:              u.Timeout,
		AttemptTimeout:       u.AttemptTimeout,
		MaxBodyBytes:         u.MaxBodyBytes,
		MaxConns:             u.MaxConns,
		MaxIdleConns:         u.MaxIdleConns,
		ForwardAuthorization: u.ForwardAuthorization,
		MaxConcurrent:        u.MaxConcurrent,
		QueueWait:            u.QueueWait,
		DeadlineHeader:       u.DeadlineHeader,
		RetryBudget:          upstream.BudgetConfig{Ratio: u.RetryBudget.Ratio, MinPerSecond: u.RetryBudget.MinPerSecond, Window: u.RetryBudget.Window},
		Retry: upstream.RetryConfig{
			Max: retries, WaitMin: u.Retry.WaitMin, WaitMax: u.Retry.WaitMax, RetryAfterMax: u.Retry.RetryAfterMax,
		},
		Breaker: upstream.BreakerConfig{
			ConsecutiveFailures: u.Breaker.ConsecutiveFailures,
			FailureRatio:        u.Breaker.FailureRatio,
			MinRequests:         u.Breaker.MinRequests,
			Interval:            u.Breaker.Interval,
			OpenTimeout:         u.Breaker.OpenTimeout,
			HalfOpenProbes:      u.Breaker.HalfOpenProbes,
		},
	}
}
