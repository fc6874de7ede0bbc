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

// Views that read the caller's token and mutations can be tested too: a
// case names the caller (the runner signs a token its view trusts) and
// sends a body.
func TestAuthAndMutationCases(t *testing.T) {
	views, err := viewfile.Parse("e.yaml", []byte(`
views:
  - name: t.me
    route: /me
    auth: {mode: required, scopes: [profile]}
    calls:
      user: {upstream: users, path: '/users/{auth.sub}'}
    shape:
      name: user.name
  - name: t.add
    route: /cart/items
    method: POST
    body:
      schema: {type: object, required: [sku], properties: {sku: {type: string}}}
    calls:
      add: {upstream: carts, method: POST, path: /cart/items, body: request}
    shape:
      ok: add.ok
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := viewtest.Config{
		RouteSets: []bff.RouteSet{{Client: "t", Views: views}},
		Upstream:  func(string) upstream.Config { return upstream.Config{Timeout: 2 * time.Second} },
	}
	me, err := viewtest.Parse("me.test.yaml", []byte(`
view: t.me
upstreams:
  users:
    - {path: /users/7, body: {name: Ada}}
cases:
  - name: the caller's own profile
    request: {path: /t/me, auth: {sub: "7", scope: profile}}
    expect: {body: {name: Ada}}
  - name: no token
    request: /t/me
    expect: {status: 401, problem: unauthorized}
  - name: a token without the scope
    request: {path: /t/me, auth: {sub: "7"}}
    expect: {status: 403, problem: forbidden}
`))
	if err != nil {
		t.Fatal(err)
	}
	add, err := viewtest.Parse("add.test.yaml", []byte(`
view: t.add
cases:
  - name: added
    request: {method: POST, path: /t/cart/items, body: {sku: A-1}}
    upstreams:
      carts:
        - {method: POST, path: /cart/items, body: {ok: true}}
    expect: {body: {ok: true}}
  - name: a body the schema refuses
    request: {method: POST, path: /t/cart/items, body: {sku: 1}}
    expect: {status: 400, problem: invalid-body}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range viewtest.Run(context.Background(), cfg, []*viewtest.File{me, add}) {
		if len(r.Failures) > 0 {
			t.Errorf("%s/%s: %s", r.View, r.Case, strings.Join(r.Failures, "\n"))
		}
	}
}
