package config

import (
	"strings"
	"testing"
)

// breaker.failure_ratio is "this share of failures" (README), like
// tracing.sample_ratio, and refused outside 0..1: a ratio above 1 (an
// operator writing 50 for 50 %) can never be reached, and the breaker
// would only trip on consecutive failures, silently.
func TestBreakerFailureRatioAboveOneIsRefused(t *testing.T) {
	for _, ratio := range []string{"50", "1.5"} {
		c, err := Load(write(t, "upstreams:\n  users:\n    url: http://users.internal:8080\n    breaker: {failure_ratio: "+ratio+"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyEnv(env(nil)); err == nil {
			t.Errorf("breaker.failure_ratio %s accepted; want an error (a share is at most 1)", ratio)
		}
	}
}

// Upstream names may hold '-' and '_', and both map to '_' in
// BFF_UPSTREAM_<NAME>_URL. Two upstreams "user-profile" and "user_profile"
// would share one variable, and setting it for one would repoint the other
// too: the pair is refused.
func TestEnvURLOfOneUpstreamDoesNotRepointAnother(t *testing.T) {
	c, err := Load(write(t, `
upstreams:
  user-profile:
    url: http://profiles.internal:8080
  user_profile:
    url: http://legacy-profiles.internal:8080
`))
	if err != nil {
		t.Fatal(err)
	}
	err = c.ApplyEnv(env(map[string]string{"BFF_UPSTREAM_USER_PROFILE_URL": "http://profiles.canary:8080"}))
	if err == nil || !strings.Contains(err.Error(), "upstreams user-profile and user_profile both take their URL from BFF_UPSTREAM_USER_PROFILE_URL") {
		t.Errorf("user-profile and user_profile: %v; want them refused", err)
	}
}

// A config file is one YAML document (view files refuse more than one). A
// second document, as left by concatenating files or a templating tool,
// is refused: it was dropped without a word once, every setting in it
// ignored. A trailing '---' is nothing and is fine.
func TestSecondYAMLDocumentIsRefused(t *testing.T) {
	_, err := Load(write(t, `
addr: 127.0.0.1:8080
---
admin:
  token: operators-only
upstreams:
  users:
    url: http://users.internal:8080
`))
	if err == nil || !strings.Contains(err.Error(), "one YAML document expected") {
		t.Errorf("a second document: %v; want it refused", err)
	}
	if _, err := Load(write(t, "addr: 127.0.0.1:8080\n---\n")); err != nil {
		t.Errorf("a trailing ---: %v", err)
	}
}

// An admin token read from a mounted secret often ends in a newline that
// no client sends: it is trimmed, or every request would be refused.
func TestAdminTokenIsTrimmed(t *testing.T) {
	c, err := Load(write(t, "admin:\n  token: \"from-file \\n\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnv(env(nil)); err != nil || c.Admin.Token != "from-file" {
		t.Errorf("token %q (%v); want from-file", c.Admin.Token, err)
	}
	if err := c.ApplyEnv(env(map[string]string{"BFF_ADMIN_TOKEN": "from-env\n"})); err != nil || c.Admin.Token != "from-env" {
		t.Errorf("token %q (%v); want from-env", c.Admin.Token, err)
	}
}

// A token that is only whitespace (a secret file holding just a newline)
// is refused: trimmed to nothing it would turn the admin endpoints (purge,
// pprof, metrics) from refusing everyone to needing nothing.
func TestBlankAdminTokenDoesNotOpenTheAdminListener(t *testing.T) {
	for name, setup := range map[string]struct {
		file string
		env  map[string]string
	}{
		"env":  {file: "addr: 127.0.0.1:8080\n", env: map[string]string{"BFF_ADMIN_TOKEN": "\n"}},
		"file": {file: "admin:\n  token: \" \\n\"\n"},
	} {
		c, err := Load(write(t, setup.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyEnv(env(setup.env)); err == nil {
			t.Errorf("%s: an admin token of only whitespace was accepted (token %q); want it refused", name, c.Admin.Token)
		}
	}
}

// A negative duration or size is a mistake (a sign typo, a template that
// subtracted), refused naming the field rather than run on the default
// (shutdown_timeout: -5s once drained for 15 s).
func TestNegativeDurationsAndSizesAreRefused(t *testing.T) {
	cases := map[string]string{
		"server.read_header_timeout":           "server: {read_header_timeout: -5s}\n",
		"server.read_timeout":                  "server: {read_timeout: -5s}\n",
		"server.write_timeout":                 "server: {write_timeout: -5s}\n",
		"server.idle_timeout":                  "server: {idle_timeout: -5s}\n",
		"server.shutdown_timeout":              "server: {shutdown_timeout: -5s}\n",
		"server.max_header_bytes":              "server: {max_header_bytes: -1}\n",
		"server.max_url_bytes":                 "server: {max_url_bytes: -1}\n",
		"cache.partial_ttl":                    "cache: {partial_ttl: -1s}\n",
		"upstreams.users.timeout":              "upstreams: {users: {url: 'http://users.internal:8080', timeout: -1s}}\n",
		"upstreams.users.queue_wait":           "upstreams: {users: {url: 'http://users.internal:8080', queue_wait: -1s}}\n",
		"upstreams.users.breaker.open_timeout": "upstreams: {users: {url: 'http://users.internal:8080', breaker: {open_timeout: -1s}}}\n",
		"upstreams.users.retry.wait_min":       "upstreams: {users: {url: 'http://users.internal:8080', retry: {wait_min: -1s}}}\n",
		"upstreams.users.max_body_bytes":       "upstreams: {users: {url: 'http://users.internal:8080', max_body_bytes: -1}}\n",
	}
	for key, body := range cases {
		c, err := Load(write(t, body))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		err = c.ApplyEnv(env(nil))
		if err == nil {
			t.Errorf("%s negative: accepted (the default runs instead); want an error naming it", key)
			continue
		}
		if !strings.Contains(err.Error(), key[strings.LastIndex(key, ".")+1:]) {
			t.Errorf("%s negative: %v; want the error to name the field", key, err)
		}
	}
}

// A trusted proxy that is not a CIDR prefix is refused whether or not a
// client has a rate limit (which is when the prefixes are first used).
func TestTrustedProxyMustBeAPrefix(t *testing.T) {
	c, err := Load(write(t, "server: {trusted_proxies: [10.0.0.1]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnv(env(nil)); err == nil || !strings.Contains(err.Error(), "trusted_proxies") {
		t.Errorf("trusted_proxies [10.0.0.1]: %v; want an error naming it", err)
	}
}

// A purge_retention shorter than a few of the replicas' one-second reads
// of the purge log would read every routine poll as an outage (which
// empties memory): refused.
func TestPurgeRetentionHasAFloor(t *testing.T) {
	c, err := Load(write(t, "cache: {redis: {url: 'redis://127.0.0.1:6379/0', purge_retention: 1s}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnv(env(nil)); err == nil || !strings.Contains(err.Error(), "purge_retention") {
		t.Errorf("purge_retention 1s: %v; want an error naming it", err)
	}
}

// A negative retry_budget.ratio means something ("negative: no budget, max
// alone bounds retries"), so the refusal of negative values leaves it be.
func TestNegativeRetryBudgetRatioStillTurnsTheBudgetOff(t *testing.T) {
	c, err := Load(write(t, "upstreams:\n  users:\n    url: http://users.internal:8080\n    retry_budget: {ratio: -1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnv(env(nil)); err != nil {
		t.Fatalf("retry_budget.ratio: -1 (README: \"negative: no budget\") refused: %v", err)
	}
	if got := c.Upstreams["users"].ClientConfig("users").RetryBudget.Ratio; got >= 0 {
		t.Errorf("retry budget ratio reaching the client: %v; want the negative value that turns the budget off", got)
	}
}
