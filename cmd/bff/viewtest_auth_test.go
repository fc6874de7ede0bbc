package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// A view that sets no auth mode takes its client's default_mode (README:
// "absent: the client's default_mode"). With default_mode: required, the
// server answers a caller without a token 401, and a fixture saying so
// passes `bff test -config` with that config. The runner once ignored the
// client's auth and served the view to anyone ("status: want 401, got
// 200", and a case expecting 200 passed though the server refuses it).
func TestBffTestFollowsClientDefaultAuthMode(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"bff.yaml": `clients:
  web:
    auth:
      issuer: https://id.example.com
      audience: bff-web
      default_mode: required
      keys:
        - {kid: demo, alg: HS256, secret: 'a demo secret of at least 32 bytes!'}
views:
  dir: ` + filepath.Join(dir, "views") + "\n",
		"views/profile.yaml": profileView,
		"views/tests/profile.test.yaml": `view: web.profile
cases:
  - name: no token
    request: /web/profile/42
    upstreams:
      users:
        - {path: /users/42, body: {name: Ada, address: {city: London}}}
    expect: {status: 401, problem: unauthorized}
`,
	})
	code, out, errOut := runTest(t, "-config", filepath.Join(dir, "bff.yaml"))
	// Only this case is judged: the built-in fixtures, run too, ask
	// without tokens as well.
	if !strings.Contains(out, "ok    web.profile/no token\n") {
		t.Errorf("exit %d; want the case to pass (the server answers this request 401)\n%s%s", code, grepLines(out, "web.profile"), errOut)
	}
}

func grepLines(s, sub string) string {
	var b strings.Builder
	keep := false
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "FAIL ") || strings.HasPrefix(l, "PASS") {
			keep = strings.Contains(l, sub)
		}
		if keep {
			b.WriteString(l)
		}
	}
	return b.String()
}

// A view that needs a token loads in `bff test` as in the server: with the
// client's auth in the config, it runs (the runner signs the cases'
// tokens, no JWKS is fetched); without, it is the server's load error.
func TestBffTestLoadsAuthViewsAsTheServerDoes(t *testing.T) {
	dir := t.TempDir()
	view := strings.Replace(profileView, "    route: /profile/{id}\n", "    route: /profile/{id}\n    auth: required\n", 1)
	writeFiles(t, dir, map[string]string{
		"bff.yaml": `clients:
  web:
    auth:
      issuer: https://id.example.com
      audience: bff-web
      jwks_url: https://id.example.com/.well-known/jwks.json
`,
		"views/profile.yaml": view,
		"views/tests/profile.test.yaml": `view: web.profile
cases:
  - name: with a token
    request: {path: /web/profile/42, auth: {sub: "42"}}
    upstreams:
      users:
        - {path: /users/42, body: {name: Ada, address: {city: London}}}
    expect:
      body: {name: Ada, city: London}
`,
	})
	views := filepath.Join(dir, "views")
	if code, out, errOut := runTest(t, "-config", filepath.Join(dir, "bff.yaml"), views); code != 0 {
		t.Errorf("with the client's auth configured: exit %d\n%s%s", code, grepLines(out, "web.profile"), errOut)
	}
	code, _, errOut := runTest(t, views)
	if code != 2 || !strings.Contains(errOut, "verifies no tokens") {
		t.Errorf("without it: exit %d, %q; want 2 and the server's load error", code, errOut)
	}
}
