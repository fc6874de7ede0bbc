package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/config"
)

// readmeBlock returns the fenced block after the line holding marker, or
// the one holding it when inside is set.
func readmeBlock(t *testing.T, marker string, inside bool) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	at := strings.Index(s, marker)
	if at < 0 {
		t.Fatalf("README has no %q", marker)
	}
	start := strings.Index(s[at:], "```")
	if inside {
		start = strings.LastIndex(s[:at], "```") - at
	}
	body := s[at+start:]
	body = body[strings.IndexByte(body, '\n')+1:]
	return body[:strings.Index(body, "```")]
}

// The README's "Testing a view" fixtures, for its "Adding a view" view,
// pass under bff test, as the README says.
func TestREADMEFixturesPass(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tests"), 0o755); err != nil {
		t.Fatal(err)
	}
	view := "client: web\n" + readmeBlock(t, "## Adding a view", false)
	fixtures := readmeBlock(t, "# views/tests/profile.test.yaml", true)
	if err := os.WriteFile(filepath.Join(dir, "profile.yaml"), []byte(view), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tests", "profile.test.yaml"), []byte(fixtures), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var errs strings.Builder
	code := run(context.Background(), []string{"test", dir}, func(string) string { return "" }, &out, &errs, nil)
	if code != 0 || !strings.Contains(out.String(), "ok    web.profile/the profile") || !strings.Contains(out.String(), "ok    web.profile/orders time out") {
		t.Errorf("bff test on the README example: exit %d\n%s\n%s", code, out.String(), errs.String())
	}
}

// The README's walkthrough, step by step: a running binary with a views
// directory, one new file, and the view is served, listed by bff views and
// present in the OpenAPI document.
func TestREADMEViewsDirWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	at := strings.Index(s, "cat > /tmp/views/profile.yaml <<'YAML'")
	if at < 0 {
		t.Fatal("README lost its views directory walkthrough")
	}
	body := s[at:]
	body = body[strings.IndexByte(body, '\n')+1:]
	view := body[:strings.Index(body, "\nYAML\n")+1]

	dir := t.TempDir()
	env := map[string]string{"BFF_ADDR": "127.0.0.1:0", "BFF_ADMIN_ADDR": "off", "BFF_VIEWS_DIR": dir}
	conf := "views:\n  poll: 20ms\n"
	l, logs, _ := start(t, env, conf)                                                             // 1. the running binary
	if err := os.WriteFile(filepath.Join(dir, "profile.yaml"), []byte(view), 0o600); err != nil { // 2. one file
		t.Fatal(err)
	}
	base := "http://" + l.Public
	deadline := time.Now().Add(10 * time.Second) // 3. served after the reload
	for {
		code, body := request(t, http.MethodGet, base+"/web/profile/7")
		if code == http.StatusOK && strings.Contains(body, `"city":`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new view was never served: %d %s\n%s", code, body, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var out strings.Builder // 4. listed
	if code := run(context.Background(), []string{"views"}, func(k string) string { return env[k] }, &out, io.Discard, nil); code != 0 ||
		!strings.Contains(out.String(), "GET /web/profile/{id}\tweb.profile") {
		t.Errorf("bff views: exit %d\n%s", code, out.String())
	}
	if code, doc := request(t, http.MethodGet, base+"/web/openapi.json"); code != http.StatusOK || !strings.Contains(doc, `"/web/profile/{id}"`) { // 5. documented
		t.Errorf("/web/openapi.json: %d, has the view: %v", code, strings.Contains(doc, "/web/profile/{id}"))
	}
}

// The running binary's OpenAPI document takes field types from the views
// directory's fixtures, not only from the built-in ones.
func TestOpenAPITypesFromViewsDirFixtures(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tests"), 0o755); err != nil {
		t.Fatal(err)
	}
	view := "client: web\nviews:\n  - name: web.card\n    route: /card/{id}\n    params: {id: '[0-9]+'}\n" +
		"    calls:\n      user: {upstream: users, path: '/users/{id}'}\n    shape:\n      name: user.name\n"
	fixture := "view: web.card\ncases:\n  - name: c\n    request: /web/card/1\n    upstreams:\n      users:\n" +
		"        - {path: /users/1, body: {name: Ada}}\n    expect: {body: {name: Ada}}\n"
	if err := os.WriteFile(filepath.Join(dir, "card.yaml"), []byte(view), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tests", "card.test.yaml"), []byte(fixture), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BFF_ADDR": "127.0.0.1:0", "BFF_ADMIN_ADDR": "off", "BFF_VIEWS_DIR": dir}
	l, _, _ := start(t, env, "")
	code, doc := request(t, http.MethodGet, "http://"+l.Public+"/web/openapi.json")
	var d struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct{ Type any }
			}
		}
	}
	if err := json.Unmarshal([]byte(doc), &d); code != http.StatusOK || err != nil {
		t.Fatalf("%d %v", code, err)
	}
	if got := d.Components.Schemas["WebCard"].Properties["name"].Type; got != "string" {
		t.Errorf("web.card's name has type %v; want string, from the fixture", got)
	}
}

// The README's whole config file, with the defaults, is a valid config.
func TestREADMEWholeConfigLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bff.yaml")
	if err := os.WriteFile(path, []byte(readmeBlock(t, "The whole file, with the defaults:", false)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err == nil {
		err = c.ApplyEnv(func(string) string { return "" })
	}
	if err != nil {
		t.Fatalf("the README's config: %v", err)
	}
	if c.Cache.Redis.Prefix != "bff" || c.Cache.Redis.SharedRateLimits() {
		t.Errorf("cache.redis read as %+v", c.Cache.Redis)
	}
}
