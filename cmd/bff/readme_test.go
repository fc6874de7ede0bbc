package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
