package viewfile_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/aggregate/viewfile"
)

const example = `views:
  - name: web.profile
    route: /profile/{id}
    params:
      id: '[0-9]+'
    timeout: 1500ms
    cache: {ttl: 1m, scope: user, stale_while_revalidate: 10s, stale_if_error: 1h}
    calls:
      user: {upstream: users, path: '/users/{id}'}
      orders:
        upstream: orders
        path: /orders
        query: user_id={id}
        optional: true
        timeout: 300ms
        depends_on: [user]
    shape:
      user:
        from: user
        fields: [name, city: address.city, tags: {list: tags, limit: 2}]
      order_count: {count: orders.orders}
      version: {const: {major: 2}}
      nickname: {from: user.nick, default: "n/a"}
`

func TestParseExample(t *testing.T) {
	views, err := viewfile.Parse("profile.yaml", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	views[0].Lines = nil // checked in TestCompileErrorsNameTheFile
	want := aggregate.View{
		Name: "web.profile", Route: "/profile/{id}", Source: "profile.yaml:2",
		Params:  []aggregate.Param{{Name: "id", Pattern: "[0-9]+"}},
		Timeout: 1500 * time.Millisecond,
		Cache: aggregate.CachePolicy{TTL: time.Minute, Scope: aggregate.ScopeUser,
			StaleWhileRevalidate: 10 * time.Second, StaleIfError: time.Hour},
		Calls: []aggregate.Call{
			{Name: "user", Upstream: "users", Path: "/users/{id}"},
			{Name: "orders", Upstream: "orders", Path: "/orders", Query: "user_id={id}", Optional: true,
				Timeout: 300 * time.Millisecond, DependsOn: []string{"user"}},
		},
		Shape: []aggregate.Field{
			aggregate.Object("user", "user", aggregate.Pick("name"), aggregate.Rename("city", "address.city"),
				aggregate.List("tags", "tags", 2)),
			aggregate.Count("order_count", "orders.orders"),
			{Name: "version", Const: json.RawMessage(`{"major":2}`)},
			{Name: "nickname", From: "user.nick", Default: json.RawMessage(`"n/a"`)},
		},
	}
	if len(views) != 1 {
		t.Fatalf("%d views", len(views))
	}
	got, _ := json.Marshal(views[0])
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("got  %s\nwant %s", got, exp)
	}
}

// Every structural mistake names the file, line, view and field, says what
// is wrong and what would be right.
func TestParseErrors(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"syntax", "views:\n  - name: [unclosed\n", "v.yaml:"},
		{"top-level typo", "veiws: []\n", `v.yaml:1: unknown key "veiws" (known: client, views)`},
		{"views not a list", "views: {a: 1}\n", "v.yaml:1: views: want a list of views, found a mapping"},
		{"unknown view key", "views:\n  - name: v\n    rout: /x\n", `v.yaml:3: view "v": unknown key "rout" (known: auth, body, cache, calls, client, invalidates, method, name, params, projections, query, query_unknown, route, shape, shape_func, timeout, versions)`},
		{"no name", "views:\n  - route: /x\n", "v.yaml:2: name: every view needs a name"},
		{"bad duration", "views:\n  - name: v\n    timeout: soon\n", `v.yaml:3: view "v": timeout: want a duration such as 500ms or 2s, found "soon"`},
		{"negative duration", "views:\n  - name: v\n    cache: {ttl: -1s}\n", `v.yaml:3: view "v": cache.ttl: want a duration such as 500ms or 2s, found "-1s"`},
		{"call typo", "views:\n  - name: v\n    calls:\n      u: {upstream: x, pth: /}\n", `v.yaml:4: view "v": calls.u: unknown key "pth" (known: body, concurrency, depends_on, for_each, max_each, method, optional, path, query, stale_if_error, timeout, upstream)`},
		{"optional not bool", "views:\n  - name: v\n    calls:\n      u: {upstream: x, optional: yes please}\n", `v.yaml:4: view "v": calls.u.optional: want true or false, found "yes please"`},
		{"call twice", "views:\n  - name: v\n    calls:\n      u: {upstream: x}\n      u: {upstream: y}\n", `v.yaml:5: view "v": calls: "u" is given twice`},
		{"two kinds", "views:\n  - name: v\n    shape:\n      a: {from: x, count: y}\n", `v.yaml:4: view "v": shape.a: use one of from, list, count, const, param, concat, first or merge, not from and count`},
		{"bad limit", "views:\n  - name: v\n    shape:\n      a: {list: x, limit: lots}\n", `v.yaml:4: view "v": shape.a.limit: want a whole number >= 0, found "lots"`},
		{"bad fields item", "views:\n  - name: v\n    shape:\n      a: {from: x, fields: [[1]]}\n", `v.yaml:4: view "v": shape.a.fields: want a field name, or one ` + "`name: source`" + ` pair`},
		{"alias", "views:\n  - &v {name: v}\n", `v.yaml:2: view "v": anchors and aliases are not supported in view files`},
		{"params list", "views:\n  - name: v\n    params: [id]\n", `v.yaml:3: view "v": params: want a mapping of names, found a list`},
		{"two documents", "views: []\n---\nviews: []\n", "v.yaml:2: one document per file"},
		{"null pattern", "views:\n  - name: v\n    params: {id: ~}\n", `v.yaml:3: view "v": params.id: want a string, found null`},
		{"null query", "views:\n  - name: v\n    calls: {u: {upstream: x, query: null}}\n", `v.yaml:3: view "v": calls.u.query: want a string, found null`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := viewfile.Parse("v.yaml", []byte(tc.file))
			var fe *viewfile.Error
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || (tc.name != "syntax" && !errors.As(err, &fe)) {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestEmptyFileHasNoViews(t *testing.T) {
	for _, s := range []string{"", "# nothing yet\n", "views: []\n"} {
		if v, err := viewfile.Parse("e.yaml", []byte(s)); err != nil || len(v) != 0 {
			t.Errorf("%q: %v %v", s, v, err)
		}
	}
}

// What a view means is checked by Compile; its errors start with where the
// view was written.
func TestCompileErrorsNameTheFile(t *testing.T) {
	views, err := viewfile.Parse("views/p.yaml", []byte("views:\n  - name: p\n    route: /p\n    calls:\n      u: {upstream: nope, path: /}\n"+
		"    shape:\n      a: u.a\n      b: {from: u, fields: [x, y: {count: z, limit: 2}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = aggregate.Compile(views[0], aggregate.Catalog{Upstream: func(string) bool { return false }})
	if err == nil || err.Error() != `views/p.yaml:5: view "p": calls.u: upstream "nope" is not configured (add it under upstreams: in the config, with its url)` {
		t.Errorf("err = %v", err)
	}
	_, err = aggregate.Compile(views[0], aggregate.Catalog{})
	if err == nil || err.Error() != `views/p.yaml:8: view "p": shape.b.fields.y: limit applies to lists only` {
		t.Errorf("err = %v", err)
	}

	views, err = viewfile.Parse("views/s.yaml", []byte("views:\n  - name: s\n    route: /s\n    cache: {stale_if_error: 1m}\n"+
		"    calls:\n      u: {upstream: u, path: /}\n    shape:\n      a: u.a\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = aggregate.Compile(views[0], aggregate.Catalog{})
	if err == nil || err.Error() != `views/s.yaml:4: view "s": cache: stale_while_revalidate and stale_if_error need a ttl: an uncached view has no copy to serve` {
		t.Errorf("err = %v", err)
	}
}

// FuzzParse: any file gives views or an error, never a panic or a hang.
func FuzzParse(f *testing.F) {
	f.Add(example)
	f.Add("views:\n  - name: v\n    shape: {a: {from: x, fields: [a, b: {count: c}]}}\n")
	f.Add("views: [{name: a}, {name: b, calls: {x: {}}}]")
	f.Add("a: &a [*a, *a]")
	f.Add("views:\n  - name: q\n    route: /q\n    query: {n: {type: int, min: -3, max: 9, default: 0}}\n    query_unknown: reject\n")
	f.Fuzz(func(t *testing.T, s string) {
		views, err := viewfile.Parse("f.yaml", []byte(s))
		if err == nil {
			for _, v := range views {
				_, _ = aggregate.Compile(v, aggregate.Catalog{Upstream: func(string) bool { return true }})
			}
		}
	})
}

// The README's example view must stay a valid view.
func TestREADMEExampleParses(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "## Adding a view")
	if !ok {
		t.Fatal("README has no 'Adding a view' section")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in 'Adding a view'")
	}
	views, err := viewfile.Parse("README.md", []byte(block))
	if err != nil || len(views) != 1 {
		t.Fatalf("%d views, %v", len(views), err)
	}
	known := func(name string) bool { return name == "users" || name == "orders" }
	if _, err := aggregate.Compile(views[0], aggregate.Catalog{Upstream: known}); err != nil {
		t.Fatal(err)
	}
}

func TestEntriesNameTheirClient(t *testing.T) {
	entries, err := viewfile.ParseEntries("d.yaml", []byte("client: web\nviews:\n  - {name: a, route: /a}\n  - {name: b, route: /b, client: mobile}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Client != "web" || entries[1].Client != "mobile" {
		t.Errorf("entries %+v", entries)
	}
}

func TestQueryParameters(t *testing.T) {
	const file = `views:
  - name: feed
    route: /feed/{id}
    params: {id: '[0-9]+'}
    query:
      limit: {type: int, min: 1, max: 50, default: 10}
      sort: {pattern: 'new|top', default: new}
      tag: {}
    query_unknown: reject
    calls:
      f: {upstream: feed, path: '/feed/{id}', query: 'limit={limit}&sort={sort}&tag={tag}'}
    shape:
      f: f
`
	views, err := viewfile.Parse("feed.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	v := views[0]
	one, fifty := int64(1), int64(50)
	ten, new := "10", "new"
	want := []aggregate.QueryParam{
		{Name: "limit", Type: "int", Min: &one, Max: &fifty, Default: &ten},
		{Name: "sort", Pattern: "new|top", Default: &new},
		{Name: "tag"},
	}
	got, _ := json.Marshal(v.Query)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) || !v.RejectUnknownQuery {
		t.Errorf("query = %s (reject unknown %v)\nwant %s (true)", got, v.RejectUnknownQuery, exp)
	}
	if _, err := aggregate.Compile(v, aggregate.Catalog{}); err != nil {
		t.Errorf("compile: %v", err)
	}

	// Each mistake, with the message a view author sees.
	for _, tc := range []struct{ query, want string }{
		{"limit: {type: int, min: 1, max: 50, default: 0}", `feed.yaml:6: view "feed": query.limit.default: "0" is out of range 1..50`},
		{"limit: {type: int, min: 5, max: 1, default: 3}", `feed.yaml:6: view "feed": query.limit.max: 1 is below min 5`},
		{"limit: {type: int, pattern: '[0-9]+', default: 3}", `feed.yaml:6: view "feed": query.limit.pattern: an int parameter has no pattern; bound it with min and max`},
		{"limit: {type: float, default: 3}", `feed.yaml:6: view "feed": query.limit.type: "float" must be string or int`},
		{"limit: {min: 1, default: a}", `feed.yaml:6: view "feed": query.limit.min: min and max bound int parameters; this one is a string (type: int?)`},
		{"id: {default: a}", `feed.yaml:6: view "feed": query.id: "id" is already a parameter of the view`},
		{"limit: {type: int, defualt: 3}", `feed.yaml:6: view "feed": query.limit: unknown key "defualt" (known: default, max, min, pattern, type)`},
	} {
		src := strings.Replace(file, "limit: {type: int, min: 1, max: 50, default: 10}", tc.query, 1)
		views, err := viewfile.Parse("feed.yaml", []byte(src))
		if err == nil {
			_, err = aggregate.Compile(views[0], aggregate.Catalog{})
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.query, err, tc.want)
		}
	}
	_, err = viewfile.Parse("feed.yaml", []byte(strings.Replace(file, "query_unknown: reject", "query_unknown: drop", 1)))
	if err == nil || err.Error() != `feed.yaml:9: view "feed": query_unknown: want ignore or reject, found "drop"` {
		t.Errorf("query_unknown: drop: %v", err)
	}
}

func TestProjectionAndVersionErrors(t *testing.T) {
	const head = "views:\n  - name: p\n    route: /p\n    calls:\n      u: {upstream: u, path: /u}\n"
	for _, tc := range []struct{ body, want string }{
		{"    versions:\n      - app_version: '>=2.x'\n        shape: {a: u.a}\n    shape: {a: u.a}\n",
			`p.yaml:7: view "p": versions[0].app_version: ">=2.x": "2.x" is not a version such as 2.1 or 2.1.3`},
		{"    versions:\n      - app_version: '~2.0'\n        shape: {a: u.a}\n    shape: {a: u.a}\n",
			`p.yaml:7: view "p": versions[0].app_version: "~2.0": want >=, >, <=, < or = before a version such as 2.1`},
		{"    versions:\n      - app_version: '<2'\n    shape: {a: u.a}\n",
			`p.yaml:7: view "p": versions[0]: has no shape`},
		{"    shape: {a: u.a}\n    projections:\n      web: {shape: {a: u.a}}\n",
			`p.yaml:2: view "p": projections: a view with projections has its shapes there: move client, shape, versions and shape_func into them`},
		{"    projections:\n      mobile:\n        shape: {a: u.a}\n        versions:\n          - app_version: '<1'\n            shape: {b: x.b}\n",
			`p.yaml:11: view "mobile.p": versions[0].shape.b: from "x.b": no call named "x" (calls: u)`},
	} {
		entries, err := viewfile.ParseEntries("p.yaml", []byte(head+tc.body))
		if err == nil {
			for _, e := range entries {
				if _, err = aggregate.Compile(e.View, aggregate.Catalog{}); err != nil {
					break
				}
			}
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s\n got %v\nwant %s", tc.body, err, tc.want)
		}
	}
}

func TestCombineKeys(t *testing.T) {
	const file = `views:
  - name: feed
    route: /feed
    calls:
      news: {upstream: news, path: /news}
      promos: {upstream: promos, path: /promos}
    shape:
      items: {concat: [news.items, promos.items], limit: 20, fields: [id, title]}
      title: {first: [promos.title, news.title], default: "Feed"}
      settings: {merge: [news.settings, promos.settings]}
`
	views, err := viewfile.Parse("feed.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aggregate.Compile(views[0], aggregate.Catalog{}); err != nil {
		t.Fatal(err)
	}
	f := views[0].Shape
	if f[0].Combine != "concat" || strings.Join(f[0].Sources, ",") != "news.items,promos.items" || f[0].Limit != 20 ||
		f[1].Combine != "first" || string(f[1].Default) != `"Feed"` || f[2].Combine != "merge" {
		t.Errorf("shape = %+v", f)
	}

	// Two calls writing one key without saying how is a load-time error.
	dup := strings.Replace(file, "      title: {first: [promos.title, news.title], default: \"Feed\"}\n",
		"      title: promos.title\n      title: news.title\n", 1)
	_, err = viewfile.Parse("feed.yaml", []byte(dup))
	want := `feed.yaml:10: view "feed": shape: "title" is given twice; to build one key from several calls, say how: concat, first or merge`
	if err == nil || err.Error() != want {
		t.Errorf("two calls writing title:\n got %v\nwant %s", err, want)
	}
}

// Each validation error a view author can meet, with the exact message:
// file, line, view, field, what is wrong and what would be right.
func TestValidationMessages(t *testing.T) {
	const base = `views:
  - name: v
    route: /v/{id}
    params: {id: '[0-9]+'}
    calls:
      user: {upstream: users, path: '/users/{id}'}
      orders: {upstream: orders, path: /orders, query: 'user_id={user.id}'}
    shape:
      name: user.name
`
	catalog := aggregate.Catalog{Upstream: func(name string) bool { return name == "users" || name == "orders" }}
	for _, tc := range []struct{ from, to, want string }{
		{"upstream: users,", "upstream: userz,", `v.yaml:6: view "v": calls.user: upstream "userz" is not configured (add it under upstreams: in the config, with its url)`},
		{"query: 'user_id={user.id}'", "query: 'user_id={usr.id}'", `v.yaml:7: view "v": calls.orders: query: {usr.id}: no parameter or call named "usr" (parameters: id; calls: user, orders)`},
		{"name: user.name", "name: usr.name", `v.yaml:9: view "v": shape.name: from "usr.name": no call named "usr" (calls: user, orders)`},
		{"path: '/users/{id}'}", "path: '/users/{orders.uid}'}", `v.yaml:5: view "v": calls: dependency cycle: orders -> user -> orders`},
		{"path: '/users/{id}'}", "path: '/users/{uid}'}", `v.yaml:6: view "v": calls.user: path: {uid}: no parameter or call named "uid" (parameters: id; calls: user, orders)`},
		{"params: {id: '[0-9]+'}", "params: {id: '[0-9{6}'}", "v.yaml:4: view \"v\": params.id.pattern: pattern \"[0-9{6}\": error parsing regexp: missing closing ]: `[0-9{6}`"},
		{"route: /v/{id}", "route: /v/{id}/{tab}", `v.yaml:4: view "v": params: route parameter "tab" is not declared (add it under params: tab: '<regexp>', or tab: {} for any one segment)`},
		{"path: '/users/{id}'}", "path: '/users/../admin/{id}'}", `v.yaml:6: view "v": calls.user: path: "/users/../admin/{id}": dot segments (. or ..) could leave the upstream's path prefix; name the path without them`},
		{"path: /orders,", "pth: /orders,", `v.yaml:7: view "v": calls.orders: unknown key "pth" (known: body, concurrency, depends_on, for_each, max_each, method, optional, path, query, stale_if_error, timeout, upstream)`},
	} {
		src := strings.Replace(base, tc.from, tc.to, 1)
		views, err := viewfile.Parse("v.yaml", []byte(src))
		if err == nil {
			_, err = aggregate.Compile(views[0], catalog)
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s -> %s:\n got %v\nwant %s", tc.from, tc.to, err, tc.want)
		}
	}
}
