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
