package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bffproxy/bff/bff/web"
)

// A views directory as a frontend team keeps it: a view, and its tests in
// tests/ (the server reads every *.yaml beside the views as a view).
const profileView = `client: web
views:
  - name: web.profile
    route: /profile/{id}
    params: {id: '[0-9]+'}
    calls:
      user: {upstream: users, path: '/users/{id}'}
    shape:
      name: user.name
      city: user.address.city
`

const profileTests = `view: web.profile
cases:
  - name: ada
    request: /web/profile/42
    upstreams:
      users:
        - {path: /users/42, body: {name: Ada, address: {city: London}}}
    expect:
      body: {name: Ada, city: London}
`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runTest(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	code = run(context.Background(), append([]string{"test"}, args...), func(string) string { return "" }, &out, &errOut, nil)
	return code, out.String(), errOut.String()
}

// TestViewTests: `bff test` passes on the shipped fixtures (0), fails with
// a readable diff when a fixture is changed (1), and cannot run with a
// broken config, view or fixture file (2).
func TestViewTests(t *testing.T) {
	t.Run("shipped fixtures pass", func(t *testing.T) {
		t.Parallel()
		code, out, errOut := runTest(t)
		if code != 0 || strings.Contains(out, "FAIL") || errOut != "" {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, line := range []string{"ok    web.home/user 7\n", "ok    mobile.order/catalog times out\n", "PASS  "} {
			if !strings.Contains(out, line) {
				t.Errorf("output lacks %q:\n%s", line, out)
			}
		}
	})

	t.Run("a changed fixture fails with a diff", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.CopyFS(dir, web.Tests()); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, "tests/expect/home_7.json"))
		if err != nil {
			t.Fatal(err)
		}
		changed := strings.Replace(string(data), `"total_cents": 157595,`, `"total_cents": 100,`, 1)
		writeFiles(t, dir, map[string]string{"tests/expect/home_7.json": changed})
		code, out, _ := runTest(t, dir)
		want := "FAIL  web.home/user 7  (" + dir + "/tests/home.test.yaml:60)\n" +
			"      $.orders[2].total_cents: want 100, got 157595\n"
		if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "FAIL  1 of ") {
			t.Errorf("exit %d, want 1 with\n%s\ngot\n%s", code, want, out)
		}
	})

	t.Run("the config's views dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"views/profile.yaml":            profileView,
			"views/tests/profile.test.yaml": profileTests,
			"bff.yaml":                      "views:\n  dir: " + filepath.Join(dir, "views") + "\n",
		})
		code, out, errOut := runTest(t, "-config", filepath.Join(dir, "bff.yaml"))
		if code != 0 || !strings.Contains(out, "ok    web.profile/ada\n") {
			t.Errorf("exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("an unforeseen upstream request fails", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"profile.yaml":            profileView,
			"tests/profile.test.yaml": strings.Replace(profileTests, "/users/42,", "/users/7,", 1),
		})
		code, out, _ := runTest(t, dir)
		want := "      unexpected upstream request: users GET /users/42 (answers given for users: GET /users/7)\n"
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("exit %d, want 1 with\n%s\ngot\n%s", code, want, out)
		}
	})

	t.Run("a replaced view's built-in fixtures are skipped", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"home.yaml": strings.Replace(profileView, "web.profile", "web.home", 1),
			"profile.yaml": `client: web
views:
  - name: web.untested
    route: /untested
    calls:
      user: {upstream: users, path: /users/1}
    shape: {name: user.name}
`,
		})
		code, out, _ := runTest(t, dir)
		for _, line := range []string{
			"skip  bff/web/tests/home.test.yaml: web.home is replaced by " + dir + "/home.yaml:3\n",
			"note  web.home has no tests (" + dir + "/home.yaml:3)\n",
			"note  web.untested has no tests (" + dir + "/profile.yaml:3)\n",
		} {
			if !strings.Contains(out, line) {
				t.Errorf("output lacks %q:\n%s", line, out)
			}
		}
		if code != 0 || strings.Contains(out, "ok    web.home/") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})

	for _, tc := range []struct {
		name  string
		files map[string]string
		args  []string
		want  string // on stderr
	}{
		{"bad flag", nil, []string{"-nope"}, "flag provided but not defined: -nope"},
		{"no config file", nil, []string{"-config", "/nonexistent/bff.yaml"}, "bff test: config: open /nonexistent/bff.yaml: no such file or directory\n"},
		{"no such dir", nil, []string{"/nonexistent/views"}, "bff test: views: open /nonexistent/views: no such file or directory\n"},
		{"typo in a fixture", map[string]string{
			"profile.yaml":            profileView,
			"tests/profile.test.yaml": strings.Replace(profileTests, "expect:\n      body:", "expect:\n      bdoy:", 1),
		}, nil, `DIR/tests/profile.test.yaml:9: case "ada": expect: unknown key "bdoy" (known: body, body_file, headers, partial, problem, status)`},
		{"fixture beside the views", map[string]string{
			"profile.yaml":      profileView,
			"profile.test.yaml": profileTests,
		}, nil, "bff test: DIR/profile.test.yaml: fixture files go in DIR/tests: the server reads every *.yaml in DIR as a view file\n"},
		{"broken view", map[string]string{
			"profile.yaml": strings.Replace(profileView, "upstream: users", "upstrem: users", 1),
		}, nil, `DIR/profile.yaml:7: view "web.profile": calls.user: unknown key "upstrem"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			args := tc.args
			if tc.files != nil {
				args = []string{dir}
			}
			code, out, errOut := runTest(t, args...)
			if want := strings.ReplaceAll(tc.want, "DIR", dir); code != 2 || !strings.Contains(errOut, want) {
				t.Errorf("exit %d, want 2 with %q on stderr; got\n%s%s", code, want, errOut, out)
			}
		})
	}
}

// productView is a product page over the catalog, with a fixture that passes.
const productView = `client: web
views:
  - name: web.product
    route: /product/{sku}
    params: {sku: 'SKU-[0-9]{6}'}
    calls:
      product: {upstream: catalog, path: '/products/{sku}'}
    shape:
      title: product.title
`

const productFixture = `view: web.product
cases:
  - name: the product
    request: /web/product/SKU-000001
    upstreams:
      catalog:
        - {path: /products/SKU-000001, body: {title: Lamp}}
    expect:
      body: {title: Lamp}
`

func checkDir(t *testing.T, dir string) (int, string) {
	t.Helper()
	var errs strings.Builder
	env := func(k string) string {
		if k == "BFF_VIEWS_DIR" {
			return dir
		}
		return ""
	}
	code := run(context.Background(), []string{"check"}, env, io.Discard, &errs, nil)
	return code, errs.String()
}

// refusedByCheckAndTest wants `bff check` to refuse dir, saying want, and
// `bff test` to fail on it too: neither may pass what the server refuses.
func refusedByCheckAndTest(t *testing.T, dir, want string) {
	t.Helper()
	if code, errs := checkDir(t, dir); code == 0 || !strings.Contains(errs, want) {
		t.Fatalf("bff check: exit %d, %q; want a refusal saying %q", code, errs, want)
	}
	if code, out, errOut := runTest(t, dir); code == 0 {
		t.Errorf("bff test exit 0 on a views directory the server refuses to load:\n%s%s", out, errOut)
	}
}

// `bff test` refuses (2) a directory the server would not load, also when
// the broken view has no fixture yet: cases run one view at a time, so the
// whole set is loaded first, as `bff check` does.
func TestBffTestFailsOnViewThatDoesNotLoad(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"product.yaml":            productView,
		"tests/product.test.yaml": productFixture,
		"broken.yaml": `client: web
views:
  - name: web.broken
    route: /broken/{id}
    calls:
      user: {upstream: users, path: '/users/{idd}'}
    shape:
      name: user.name
`,
	})
	refusedByCheckAndTest(t, dir, "")
}

// A directory view on the route of a built-in one is refused by `bff test`
// as by the server, though each view alone runs its cases fine.
func TestBffTestFailsOnRouteCollision(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"product.yaml":            strings.Replace(productView, "route: /product/{sku}", "route: /orders/{sku}", 1),
		"tests/product.test.yaml": strings.Replace(productFixture, "/web/product/", "/web/orders/", 1),
	})
	refusedByCheckAndTest(t, dir, "is also view")
}

// A mutation that invalidates another view (the README's cart pattern)
// runs its cases, though each case's front holds the mutation alone.
func TestBffTestRunsMutationThatInvalidatesAnotherView(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"cart.yaml": `client: web
views:
  - name: web.cart.add
    route: /cart/items
    method: POST
    body:
      schema:
        type: object
        required: [sku]
        properties:
          sku: {type: string}
    invalidates: [web.home]
    calls:
      add: {upstream: orders, method: POST, path: /cart/items, body: request}
    shape:
      ok: {const: true}
`,
		"tests/cart.test.yaml": `view: web.cart.add
cases:
  - name: add
    request: {path: /web/cart/items, method: POST, body: {sku: a}}
    upstreams:
      orders:
        - {method: POST, path: /cart/items, body: {}}
    expect:
      body: {ok: true}
`,
	})
	if code, errs := checkDir(t, dir); code != 0 {
		t.Fatalf("bff check refused the view: %s", errs)
	}
	code, out, errOut := runTest(t, dir)
	if code != 0 {
		t.Errorf("bff test exit %d on a view bff check accepts:\n%s%s", code, out, errOut)
	}
}

// An upstream nobody serves is reported, as the README promises, with the
// file, the line of the field, the view and the field.
func TestUnknownUpstreamNamesTheField(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"product.yaml": strings.Replace(productView, "upstream: catalog", "upstream: catalogue", 1),
	})
	code, errs := checkDir(t, dir)
	if code == 0 {
		t.Fatal("bff check accepted an unknown upstream")
	}
	if !strings.Contains(errs, "product.yaml:7") || !strings.Contains(errs, "calls.product") {
		t.Errorf("bff check: %q; want the line of the upstream field (product.yaml:7) and the field (calls.product.upstream)", errs)
	}
}

// Editing a fixture reloads the views directory as editing a view does:
// the served OpenAPI documents take their types and examples from them.
func TestFixtureChangeIsNoticed(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"product.yaml":            productView,
		"tests/product.test.yaml": productFixture,
	})
	s := &viewSet{dir: dir}
	before := s.stamp()
	writeFiles(t, dir, map[string]string{
		"tests/product.test.yaml": strings.ReplaceAll(productFixture, "Lamp", "7"),
	})
	if s.stamp() == before {
		t.Error("a changed fixture leaves the views directory's stamp unchanged: the served OpenAPI keeps the old fixture types and examples")
	}
	// So does a body file a fixture names (expect.body_file).
	writeFiles(t, dir, map[string]string{"tests/product.json": `{"title":"Lamp"}`})
	before = s.stamp()
	writeFiles(t, dir, map[string]string{"tests/product.json": `{"title":"Desk"}`})
	if s.stamp() == before {
		t.Error("a changed body file leaves the views directory's stamp unchanged: the served OpenAPI keeps the old example")
	}
}

// Two slips with fixtures say what to do: passing tests/ itself, and a
// fixture file not named *.test.yaml (which would be passed over quietly).
func TestBffTestPointsAtFixtureSlips(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"product.yaml":            productView,
		"tests/product.test.yaml": productFixture,
		"tests/product.yaml":      productFixture,
	})
	code, _, errOut := runTest(t, filepath.Join(dir, "tests"))
	if want := "pass the views directory (" + dir + "), not its tests/"; code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("bff test DIR/tests: exit %d, %q; want 2 and %q", code, errOut, want)
	}
	code, out, errOut := runTest(t, dir)
	if want := "skip  " + filepath.Join(dir, "tests", "product.yaml") + ": fixture files are named *.test.yaml"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("bff test DIR: exit %d, %s%s; want 0 and %q", code, out, errOut, want)
	}
}

// The whole set is loaded with the config's clients (rate limits, CORS,
// auth) as serve loads it: a rate limit for a view the directory no longer
// has (renamed, deleted) is refused by `bff test` as by `bff check`.
func TestBffTestRefusesWhatServeRefusesWithClientConfig(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"bff.yaml": `clients:
  web:
    rate_limit: {requests: 100, window: 1m, views: {web.produkt: {requests: 5, window: 1m}}}
views:
  dir: ` + filepath.Join(dir, "views") + "\n",
		"views/product.yaml":            productView,
		"views/tests/product.test.yaml": productFixture,
	})
	cfg := filepath.Join(dir, "bff.yaml")
	var errs strings.Builder
	if code := run(context.Background(), []string{"check", "-config", cfg}, func(string) string { return "" }, io.Discard, &errs, nil); code == 0 {
		t.Fatalf("bff check accepted the config; want a refusal")
	}
	code, out, errOut := runTest(t, "-config", cfg)
	if code != 2 {
		t.Errorf("bff test: exit %d on a set the server refuses to load (%s); want 2\n%s%s", code, strings.TrimSpace(errs.String()), grepLines(out, "web.product"), errOut)
	}
}
