package viewtest_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/bff/mobile"
	"github.com/bffproxy/bff/bff/web"
	"github.com/bffproxy/bff/internal/viewtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func builtinSets(t *testing.T) []bff.RouteSet {
	t.Helper()
	var sets []bff.RouteSet
	for _, load := range []func() (bff.RouteSet, error){web.Routes, mobile.Routes} {
		rs, err := load()
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, rs)
	}
	return sets
}

func builtinFiles(t *testing.T) []*viewtest.File {
	t.Helper()
	var files []*viewtest.File
	for _, src := range []struct {
		fsys  fs.FS
		shown string
	}{{web.Tests(), "bff/web"}, {mobile.Tests(), "bff/mobile"}} {
		fs, err := viewtest.Load(src.fsys, "tests", src.shown)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}
	return files
}

// TestBuiltinFixtures runs the shipped fixtures: `go test` checks every
// built-in view the way `bff test` does.
func TestBuiltinFixtures(t *testing.T) {
	results := viewtest.Run(context.Background(), viewtest.Config{RouteSets: builtinSets(t)}, builtinFiles(t))
	for _, r := range results {
		t.Run(r.Name(), func(t *testing.T) {
			if !r.Passed() {
				t.Errorf("%s:\n%s", r.Source, strings.Join(r.Failures, "\n"))
			}
		})
	}
}

// TestBuiltinFixturesCover: every built-in view has fixtures, among them a
// partial response and a failing required call.
func TestBuiltinFixturesCover(t *testing.T) {
	type cover struct{ cases, partial, failing int }
	got := map[string]*cover{}
	for _, rs := range builtinSets(t) {
		for _, v := range rs.Views {
			got[v.Name] = &cover{}
		}
	}
	for _, f := range builtinFiles(t) {
		c, ok := got[f.View]
		if !ok {
			t.Errorf("%s: fixtures for %s, which is not a built-in view", f.Name, f.View)
			continue
		}
		for _, tc := range f.Cases {
			c.cases++
			if tc.Expect.Partial != nil {
				c.partial++
			}
			if tc.Expect.Status >= 500 && tc.Expect.Problem != "" {
				c.failing++
			}
		}
	}
	for name, c := range got {
		if c.cases == 0 || c.partial == 0 || c.failing == 0 {
			t.Errorf("%s: %d cases, %d partial, %d failing a required call; want some of each", name, c.cases, c.partial, c.failing)
		}
	}
}

// copyTests copies a client's embedded fixtures into a directory, to be
// changed there.
func copyTests(t *testing.T, fsys fs.FS) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, fsys); err != nil {
		t.Fatal(err)
	}
	return dir
}

func edit(t *testing.T, file, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestChangedFixtureFails is the acceptance test: the shipped fixtures
// pass (above); changed in a copy, the cases fail with a diff that names
// the JSON path and both values, and the rest still pass.
func TestChangedFixtureFails(t *testing.T) {
	dir := copyTests(t, web.Tests())
	// The third order of user 7 costs 157595 in the demo: expect 100.
	edit(t, filepath.Join(dir, "tests/expect/home_7.json"), `"total_cents": 157595,`, `"total_cents": 100,`)
	// Swap two keys of the expected user.
	edit(t, filepath.Join(dir, "tests/home.test.yaml"),
		"user: {id: 42, name: Ada Lovelace, email: ada@example.com, avatar_url: https://cdn.example.com/avatars/42.jpg}\n        orders:\n          - {id: ord-42-2, status: shipped, total_cents: 4598",
		"user: {name: Ada Lovelace, id: 42, email: ada@example.com, avatar_url: https://cdn.example.com/avatars/42.jpg}\n        orders:\n          - {id: ord-42-2, status: shipped, total_cents: 4599")
	// Expect a different reason.
	edit(t, filepath.Join(dir, "tests/order.test.yaml"), "partial: products;reason=error;status=500", "partial: products;reason=timeout")

	files, err := viewtest.Load(os.DirFS(dir), "tests", dir)
	if err != nil {
		t.Fatal(err)
	}
	results := viewtest.Run(context.Background(), viewtest.Config{RouteSets: builtinSets(t)}, files)
	want := map[string][]string{
		"web.home/user 7": {"$.orders[2].total_cents: want 100, got 157595"},
		"web.home/fields in definition order": {
			"$.user: keys in order [id name email avatar_url], want [name id email avatar_url]",
			"$.orders[0].total_cents: want 4599, got 4598",
		},
		"web.order/catalog answers 500": {`Bff-Partial: want "products;reason=timeout", got "products;reason=error;status=500"`},
	}
	var b strings.Builder
	failed := viewtest.Report(&b, results)
	if failed != len(want) {
		t.Errorf("%d cases failed, want %d:\n%s", failed, len(want), b.String())
	}
	for _, r := range results {
		if got, w := strings.Join(r.Failures, "\n"), strings.Join(want[r.Name()], "\n"); got != w {
			t.Errorf("%s: failures\n%s\nwant\n%s", r.Name(), got, w)
		}
	}
	// What a person reads.
	for _, line := range []string{
		"ok    web.home/recommendations time out\n",
		"FAIL  web.home/user 7  (" + dir + "/tests/home.test.yaml:60)\n      $.orders[2].total_cents: want 100, got 157595\n",
		"FAIL  3 of 18 cases\n",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("report lacks %q:\n%s", line, b.String())
		}
	}
}
