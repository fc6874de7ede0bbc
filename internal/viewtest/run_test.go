package viewtest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate/viewfile"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/viewtest"
	"github.com/bffproxy/bff/upstream"
)

// A view with a required and an optional call, for the runner's tests.
const testViews = `
views:
  - name: t.home
    route: /home/{id}
    params: {id: '[0-9]+'}
    calls:
      user: {upstream: users, path: '/users/{id}'}
      recs: {upstream: recs, path: /recommendations, query: 'user_id={id}', optional: true}
    shape:
      user: {from: user, fields: [id, name]}
      recs: {list: recs.items, fields: [id]}
`

func testConfig(t *testing.T) viewtest.Config {
	t.Helper()
	views, err := viewfile.Parse("t.yaml", []byte(testViews))
	if err != nil {
		t.Fatal(err)
	}
	return viewtest.Config{
		RouteSets: []bff.RouteSet{{Client: "t", Views: views}},
		Upstream: func(name string) upstream.Config {
			return upstream.Config{Retry: upstream.RetryConfig{Max: 1, WaitMin: time.Millisecond, WaitMax: 2 * time.Millisecond}}
		},
	}
}

// runOne parses one fixture file and runs it.
func runOne(t *testing.T, fixture string) []viewtest.Result {
	t.Helper()
	f, err := viewtest.Parse("t.test.yaml", []byte(fixture))
	if err != nil {
		t.Fatal(err)
	}
	return viewtest.Run(context.Background(), testConfig(t), []*viewtest.File{f})
}

func failures(r viewtest.Result) string { return strings.Join(r.Failures, "\n") }

func TestRun(t *testing.T) {
	const answers = `
view: t.home
upstreams:
  users:
    - {path: /users/7, body: {name: Ada, id: 7, email: a@b.c}}
  recs:
    - {path: /recommendations, query: user_id=7, body: {items: [{id: r1}, {id: r2}]}}
cases:
`
	for _, tc := range []struct {
		name, cases, want string
	}{
		{"pass", `
  - name: c
    request: /t/home/7
    expect: {body: {user: {id: 7, name: Ada}, recs: [{id: r1}, {id: r2}]}}`, ""},
		{"value, missing and extra", `
  - name: c
    request: /t/home/7
    expect: {body: {user: {id: 8, name: Ada, nick: A}, recs: [{id: r1}]}}`,
			"$.user.id: want 8, got 7\n$.user.nick: missing, want \"A\"\n$.recs: want 1 elements, got 2\n$.recs[1]: unexpected, got {\"id\":\"r2\"}"},
		{"key order", `
  - name: c
    request: /t/home/7
    expect: {body: {recs: [{id: r1}, {id: r2}], user: {name: Ada, id: 7}}}`,
			"$: keys in order [user recs], want [recs user]\n$.user: keys in order [id name], want [name id]"},
		{"status", `
  - name: c
    request: /t/home/7
    upstreams:
      users:
        - {path: /users/7, status: 503}
    expect: {body: {}}`,
			"status: want 200, got 502 (urn:bff:problem:upstream-error: upstream \"users\" failed)"},
		{"problem", `
  - name: c
    request: /t/home/7
    upstreams:
      users:
        - {path: /users/7, reset: true}
    expect: {status: 502, problem: upstream-timeout}`,
			"problem: want urn:bff:problem:upstream-timeout, got urn:bff:problem:upstream-error (upstream \"users\" failed)"},
		{"headers", `
  - name: c
    request: /t/home/7
    expect: {headers: {Cache-Control: no-store, Content-Type: application/json, X-Cache: null, Vary: x}}`,
			"X-Cache: want none, got \"MISS\"\nVary: want \"x\", got \"Accept-Encoding, Accept-Language\""},
		{"delay", `
  - name: c
    request: /t/home/7
    upstreams:
      users:
        - {path: /users/7, delay: 1ms, body: {id: 7, name: Ada}}
    expect: {body: {user: {id: 7, name: Ada}, recs: [{id: r1}, {id: r2}]}}`, ""},
		{"view deadline", `
  - name: c
    view_timeout: 100ms
    request: /t/home/7
    upstreams:
      users:
        - {path: /users/7, delay: 10s, body: {}}
    expect: {status: 504, problem: upstream-timeout}`, ""},
		{"route", `
  - name: c
    request: /t/hom/7
    expect: {status: 200}`,
			"status: want 200, got 404 (urn:bff:problem:not-found: no route for this path)\nthe request path does not match the view's route GET /t/home/{id}"},
		{"not JSON", `
  - name: c
    request: /t/home/7
    expect: {status: 400, body: {}}`,
			"status: want 400, got 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := runOne(t, answers+tc.cases)
			if len(results) != 1 {
				t.Fatalf("%d results", len(results))
			}
			if got := failures(results[0]); got != tc.want {
				t.Errorf("failures:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestUnexpectedRequest: a request no fixture foresaw fails the case and is
// named, with the answers that come nearest; its 404 then fails the call.
func TestUnexpectedRequest(t *testing.T) {
	results := runOne(t, `
view: t.home
upstreams:
  users:
    - {path: /users/7, body: {id: 7, name: Ada}}
cases:
  - name: other query
    request: /t/home/7
    upstreams:
      recs:
        - {path: /recommendations, query: user_id=8, body: {items: []}}
    expect: {partial: "recs;reason=error;status=404"}
  - name: other header
    request: {path: /t/home/7, headers: {Accept-Language: fr}}
    upstreams:
      recs:
        - {path: /recommendations, query: user_id=7, request_headers: {Accept-Language: de}, body: {items: []}}
    expect: {partial: "recs;reason=error;status=404"}
  - name: other path
    request: /t/home/7
    upstreams:
      recs:
        - {path: /recs, query: user_id=7, body: {items: []}}
        - {path: /recommendations/7, body: {items: []}}
    expect: {partial: "recs;reason=error;status=404"}
  - name: no answers
    request: /t/home/7
    expect: {partial: "recs;reason=error;status=404"}
`)
	want := []string{
		"unexpected upstream request: recs GET /recommendations?user_id=7 (line 11 answers GET /recommendations?user_id=8)",
		`unexpected upstream request: recs GET /recommendations?user_id=7 (line 17 wants header Accept-Language: "de", the request has "fr")`,
		"unexpected upstream request: recs GET /recommendations?user_id=7 (answers given for recs: GET /recs?user_id=7, GET /recommendations/7)",
		"unexpected upstream request: recs GET /recommendations?user_id=7 (no answers given for recs)",
	}
	for i, r := range results {
		if got := failures(r); got != want[i] {
			t.Errorf("%s: failures\n%s\nwant\n%s", r.Name(), got, want[i])
		}
	}
}

// TestTimeoutIsPartial: a timeout fixture on an optional call ends with the
// view's deadline and the response says which part is missing.
func TestTimeoutIsPartial(t *testing.T) {
	results := runOne(t, `
view: t.home
view_timeout: 1s
upstreams:
  users:
    - {path: /users/7, body: {id: 7, name: Ada}}
  recs:
    - {path: /recommendations, query: user_id=7, timeout: true}
cases:
  - name: expected
    request: /t/home/7
    expect:
      partial: recs;reason=timeout
      body: {user: {id: 7, name: Ada}, recs: []}
  - name: not expected
    request: /t/home/7
    expect:
      body: {user: {id: 7, name: Ada}, recs: []}
`)
	if got := failures(results[0]); got != "" {
		t.Errorf("expected: failures %s", got)
	}
	if got, want := failures(results[1]), `Bff-Partial: want none, got "recs;reason=timeout"`; got != want {
		t.Errorf("not expected: failures %q, want %q", got, want)
	}
}

// TestFileMistakesAtRun are mistakes only the views reveal.
func TestFileMistakesAtRun(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"unknown view", "view: t.nope\ncases:\n  - {name: c, request: /t/home/7, expect: {}}\n",
			`t.test.yaml:1: no view named "t.nope"`},
		{"upstream not called", "view: t.home\nupstreams:\n  users: []\n  orders: []\ncases:\n  - {name: c, request: /t/home/7, expect: {}}\n",
			`t.test.yaml:4: upstreams.orders: view t.home does not call upstream "orders" (it calls users, recs)`},
		{"upstream not called by case", "view: t.home\ncases:\n  - name: c\n    request: /t/home/7\n    upstreams:\n      catalog: []\n    expect: {}\n",
			`t.test.yaml:6: upstreams.catalog: view t.home does not call upstream "catalog" (it calls users, recs)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failures(runOne(t, tc.file)[0]); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestRunCanceled(t *testing.T) {
	f, err := viewtest.Parse("t.test.yaml", []byte("view: t.home\ncases:\n  - {name: c, request: /t/home/7, expect: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := viewtest.Run(ctx, testConfig(t), []*viewtest.File{f})
	if got := failures(r[0]); got != "not run: context canceled" {
		t.Errorf("failures %q", got)
	}
}

func TestReport(t *testing.T) {
	var b strings.Builder
	n := viewtest.Report(&b, []viewtest.Result{
		{View: "web.home", Case: "user 7"},
		{View: "web.home", Case: "user 8", Source: "home.test.yaml:9", Failures: []string{"$.user.id: want 8, got 7", "status: want 200, got 502"}},
	})
	want := "ok    web.home/user 7\n" +
		"FAIL  web.home/user 8  (home.test.yaml:9)\n" +
		"      $.user.id: want 8, got 7\n" +
		"      status: want 200, got 502\n" +
		"FAIL  1 of 2 cases\n"
	if n != 1 || b.String() != want {
		t.Errorf("Report = %d\n%s\nwant\n%s", n, b.String(), want)
	}
	b.Reset()
	if n := viewtest.Report(&b, []viewtest.Result{{View: "v", Case: "c"}}); n != 0 || b.String() != "ok    v/c\nPASS  1 cases\n" {
		t.Errorf("Report = %d %q", n, b.String())
	}
}
