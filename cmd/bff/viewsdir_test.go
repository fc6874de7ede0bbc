package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const dirProfileView = "client: web\nviews:\n  - name: web.profile\n    route: /profile/{id}\n    params: {id: '[0-9]+'}\n" +
	"    calls:\n      user: {upstream: users, path: '/users/{id}'}\n    shape:\n      who: user.name\n"

// A views.dir (BFF_VIEWS_DIR) that is not a directory it can list (a file,
// a directory the process may not read) is refused, as a missing one is,
// rather than read as empty.
func TestCheckRefusesViewsDirThatIsNotADirectory(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "views")
	if err := os.WriteFile(notDir, []byte(dirProfileView), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BFF_VIEWS_DIR": notDir}
	var out, errs strings.Builder
	code := run(context.Background(), []string{"check"}, func(k string) string { return env[k] }, &out, &errs, nil)
	if code == 0 {
		t.Errorf("bff check with BFF_VIEWS_DIR=%s (a regular file) exited 0: %q; want non-zero naming the directory", notDir, out.String())
	}
}

// A reload that cannot list the views directory keeps the previous views
// serving and logs why, as for a broken file. (Tests run as root here, so
// the directory is replaced by a file rather than made unreadable.)
func TestReloadKeepsViewsWhenViewsDirCannotBeListed(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "views")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "profile.yaml"), []byte(dirProfileView), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs, logs, _ := serveInProcess(t, "views:\n  dir: "+dir+"\n  poll: 20ms\n", map[string]string{"BFF_ACCESS_LOG": "false"})
	addr := addrs.Public
	status := func() int {
		resp, err := http.Get("http://" + addr + "/web/profile/7")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status(); code != http.StatusOK {
		t.Fatalf("the directory's view before: %d", code)
	}

	if err := os.Rename(dir, filepath.Join(root, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Wait for the poll to act on the change, either way.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "views reloaded") && !strings.Contains(logs.String(), "views not reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("the change was never acted on; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := status(); code != http.StatusOK {
		t.Errorf("after the views directory became unlistable, /web/profile/7 is %d; want the previous views kept (200) and an error logged; log:\n%s",
			code, logs.String())
	}
}
