package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bff.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadFileAndEnvironment(t *testing.T) {
	path := write(t, `
addr: 0.0.0.0:9000
cache:
  max_bytes: 1024
upstreams:
  users:
    url: http://users.file:1
    timeout: 750ms
    forward_authorization: true
    retry: {max: 0, wait_min: 5ms}
    breaker: {consecutive_failures: 3, open_timeout: 2s}
  orders:
    url: http://orders.file:1
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{
		"BFF_UPSTREAM_ORDERS_URL": "http://orders.env:2",
		"BFF_UPSTREAM_RECS_URL":   "http://recs.env:3",
		"BFF_CACHE_MAX_BYTES":     "0",
		"BFF_REDIS_URL":           "redis://redis.env:6379/2",
	})
	err = c.ApplyEnv(getenv)
	if err == nil {
		err = c.AddUpstreams([]string{"users", "orders", "recs", "catalog"}, getenv)
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9000" {
		t.Errorf("addr %q", c.Addr)
	}
	if c.Cache.Redis.URL != "redis://redis.env:6379/2" {
		t.Errorf("redis url %q: BFF_REDIS_URL must set it", c.Cache.Redis.URL)
	}
	if got := c.CacheMaxBytes(99); got != 0 {
		t.Errorf("cache max bytes %d: the environment must win over the file", got)
	}
	want := map[string]string{"users": "http://users.file:1", "orders": "http://orders.env:2", "recs": "http://recs.env:3", "catalog": ""}
	for name, url := range want {
		if c.Upstreams[name] == nil || c.Upstreams[name].URL != url {
			t.Errorf("%s url = %+v, want %q", name, c.Upstreams[name], url)
		}
	}
	u := c.Upstreams["users"].ClientConfig("users")
	if u.Timeout != 750*time.Millisecond || !u.ForwardAuthorization || u.Retry.Max != 0 || u.Retry.WaitMin != 5*time.Millisecond ||
		u.Breaker.ConsecutiveFailures != 3 || u.Breaker.OpenTimeout != 2*time.Second {
		t.Errorf("users client config = %+v", u)
	}
	if o := c.Upstreams["orders"].ClientConfig("orders"); o.Retry.Max != DefaultRetries {
		t.Errorf("an unset retry.max must default to %d, got %d", DefaultRetries, o.Retry.Max)
	}
}

func TestNoFileGivesDefaults(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnv(env(nil)); err != nil {
		t.Fatal(err)
	}
	if err := c.AddUpstreams([]string{"users"}, env(nil)); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.CacheMaxBytes(123) != 123 || !c.AccessLog() {
		t.Errorf("defaults: %+v", c)
	}
}

func TestBadConfigIsAnError(t *testing.T) {
	cases := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"typo", "upstreams:\n  users:\n    urll: x\n", nil, "urll"},
		{"unknown top-level key", "adress: x\n", nil, "adress"},
		{"bad duration", "upstreams:\n  users:\n    timeout: soon\n", nil, "soon"},
		{"negative retries", "upstreams:\n  users:\n    retry: {max: -1}\n", nil, "retry.max"},
		{"bad name", "upstreams:\n  Users!: {url: http://x}\n", nil, "Users!"},
		{"bad log format", "log: {format: xml}\n", nil, "log.format"},
		{"bad cache env", "", map[string]string{"BFF_CACHE_MAX_BYTES": "lots"}, "BFF_CACHE_MAX_BYTES"},
		{"bad access log env", "", map[string]string{"BFF_ACCESS_LOG": "maybe"}, "BFF_ACCESS_LOG"},
		{"bad redis url", "", map[string]string{"BFF_REDIS_URL": "http://u:s3cret@host:6379"}, "cache.redis.url (or BFF_REDIS_URL) is not valid"},
		{"redis lock without a url", "cache:\n  redis: {lock: true}\n", nil, "cache.redis.lock needs Redis"},
		{"negative redis timeout", "cache:\n  redis: {url: redis://r:6379, timeout: -1s}\n", nil, "must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = write(t, tc.file)
			}
			c, err := Load(path)
			if err == nil {
				err = c.ApplyEnv(env(tc.env))
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestEnvURLName(t *testing.T) {
	if got := EnvURL("user-profiles"); got != "BFF_UPSTREAM_USER_PROFILES_URL" {
		t.Errorf("EnvURL = %q", got)
	}
}
