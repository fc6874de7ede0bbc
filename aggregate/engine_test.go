package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/upstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// doerFunc adapts a function to aggregate.Doer.
type doerFunc func(ctx context.Context, r *upstream.Request) (*upstream.Response, error)

func (f doerFunc) Do(ctx context.Context, r *upstream.Request) (*upstream.Response, error) {
	return f(ctx, r)
}

func body(s string) doerFunc {
	return func(context.Context, *upstream.Request) (*upstream.Response, error) {
		return &upstream.Response{Status: 200, Body: []byte(s), Attempts: 1}, nil
	}
}

func failing(kind upstream.Kind, status int) doerFunc {
	return func(_ context.Context, r *upstream.Request) (*upstream.Response, error) {
		return nil, &upstream.Error{Upstream: "x", Op: r.Path, Kind: kind, Status: status, Attempts: 1, Err: errors.New(kind.String())}
	}
}

func compile(t testing.TB, e *aggregate.Engine, v aggregate.View) *aggregate.Plan {
	t.Helper()
	p, err := aggregate.Compile(v, e.Catalog(nil))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompileRejectsBadViews(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{"users": body(`{}`), "orders": body(`{}`)})
	good := func() aggregate.View {
		return aggregate.View{
			Name: "v", Route: "/u/{id}", Params: []aggregate.Param{{Name: "id", Pattern: `[0-9]+`}},
			Calls: []aggregate.Call{{Name: "user", Upstream: "users", Path: "/users/{id}"}},
			Shape: []aggregate.Field{aggregate.Pick("user")},
		}
	}
	if _, err := aggregate.Compile(good(), e.Catalog(nil)); err != nil {
		t.Fatalf("good view: %v", err)
	}
	cases := []struct {
		name   string
		change func(v *aggregate.View)
		want   string
	}{
		{"unknown upstream", func(v *aggregate.View) { v.Calls[0].Upstream = "nope" }, `upstream "nope" is not configured`},
		{"undeclared route param", func(v *aggregate.View) { v.Params = nil }, `route parameter "id" is not declared`},
		{"param not in route", func(v *aggregate.View) { v.Params = append(v.Params, aggregate.Param{Name: "x"}) }, `"x" is not a parameter of route`},
		{"bad pattern", func(v *aggregate.View) { v.Params[0].Pattern = "([" }, "params.id.pattern"},
		{"unknown reference", func(v *aggregate.View) { v.Calls[0].Path = "/users/{uid}" }, `no parameter or call named "uid"`},
		{"duplicate call", func(v *aggregate.View) { v.Calls = append(v.Calls, v.Calls[0]) }, `"user" is defined twice`},
		{"empty default in a path", func(v *aggregate.View) {
			v.Query = []aggregate.QueryParam{{Name: "q", Default: new("")}}
			v.Calls[0].Path = "/users/{q}/x"
		}, `query.q.default: "" would leave an empty segment in the path of call "user"`},
		{"scopes without a token", func(v *aggregate.View) { v.Auth = aggregate.AuthPolicy{Mode: "optional", Scopes: []string{"staff"}} }, "auth.scopes: a scope needs a token"},
		{"scopes with auth none", func(v *aggregate.View) { v.Auth = aggregate.AuthPolicy{Mode: "none", Scopes: []string{"staff"}} }, "auth.scopes: a scope needs a token"},
		{"claims of a public cached view", func(v *aggregate.View) {
			v.Auth.Mode, v.Cache.TTL, v.Calls[0].Path = "required", time.Minute, "/users/{auth.sub}"
		}, `cache.scope must be "user"`},
		{"claims of a view said to be public", func(v *aggregate.View) {
			v.Auth.Mode, v.Cache.Scope, v.Calls[0].Path = "required", aggregate.ScopePublic, "/users/{auth.sub}"
		}, `cache.scope must be "user"`},
		{"cycle", func(v *aggregate.View) {
			v.Calls = []aggregate.Call{
				{Name: "a", Upstream: "users", Path: "/a/{b.id}"},
				{Name: "b", Upstream: "orders", Path: "/b/{a.id}"},
			}
			v.Shape = []aggregate.Field{aggregate.Pick("a")}
		}, "dependency cycle"},
		{"dot segment", func(v *aggregate.View) { v.Calls[0].Path = "/users/../admin/{id}" }, "dot segments"},
		{"query in path", func(v *aggregate.View) { v.Calls[0].Path = "/users/{id}?x=1" }, "put the query in query"},
		{"encoded dot segment", func(v *aggregate.View) { v.Calls[0].Path = "/api/.%2e/admin/{id}" }, "dot segments"},
		{"relative path", func(v *aggregate.View) { v.Calls[0].Path = "users/{id}" }, "must start with '/'"},
		{"unclosed placeholder", func(v *aggregate.View) { v.Calls[0].Path = "/users/{id" }, "unclosed"},
		{"shape from unknown call", func(v *aggregate.View) { v.Shape = []aggregate.Field{aggregate.Rename("x", "orders.x")} }, `no call named "orders"`},
		{"key written twice", func(v *aggregate.View) { v.Shape = append(v.Shape, aggregate.Rename("user", "user.id")) }, "written twice"},
		{"limit on a value", func(v *aggregate.View) { v.Shape[0].Limit = 3 }, "limit applies to lists only"},
		{"bad const", func(v *aggregate.View) {
			v.Shape = append(v.Shape, aggregate.Field{Name: "c", Const: json.RawMessage("{")})
		}, "const is not valid JSON"},
		{"unknown shape func", func(v *aggregate.View) { v.Shape = nil; v.ShapeFunc = "nope" }, `no Go shaping function named "nope"`},
		{"no calls", func(v *aggregate.View) { v.Calls = nil }, "at least one call"},
		{"bad scope", func(v *aggregate.View) { v.Cache.Scope = "team" }, "cache.scope"},
		{"depends on unknown", func(v *aggregate.View) { v.Calls[0].DependsOn = []string{"ghost"} }, `no call named "ghost"`},
		{"each without for_each", func(v *aggregate.View) { v.Calls[0].Path = "/users/{each}" }, "{each}: only a call with for_each has an element"},
		{"for_each without each", func(v *aggregate.View) {
			v.Calls = append(v.Calls, aggregate.Call{Name: "o", Upstream: "orders", Path: "/o", ForEach: "user.ids"})
		}, "put {each} in path or query"},
		{"for_each not a list", func(v *aggregate.View) {
			v.Calls = append(v.Calls, aggregate.Call{Name: "o", Upstream: "orders", Path: "/o/{each}", ForEach: "id"})
		}, "for_each: \"id\" must name a list in an earlier call"},
		{"max_each without for_each", func(v *aggregate.View) { v.Calls[0].MaxEach = 3 }, "apply to a call with for_each"},
		{"stale section of a required call", func(v *aggregate.View) { v.Calls[0].StaleIfError = time.Minute },
			"calls.user.stale_if_error: applies to optional calls only"},
		{"stale section in a per-user view", func(v *aggregate.View) {
			v.Calls[0].StaleIfError, v.Calls[0].Optional, v.Cache.Scope = time.Minute, true, aggregate.ScopeUser
		}, "one caller's answer must not stand in for another's"},
		{"stale copy without ttl", func(v *aggregate.View) { v.Cache.StaleWhileRevalidate = time.Second }, "need a ttl"},
		{"POST call in a GET view", func(v *aggregate.View) { v.Calls[0].Method = "POST" }, "only a mutation view"},
		{"body on a GET view", func(v *aggregate.View) { v.Body = &aggregate.BodyPolicy{} }, "a GET view takes no body"},
		{"cached mutation", func(v *aggregate.View) { v.Method, v.Cache.TTL = "POST", time.Minute }, "a mutation's answer is not cached"},
		{"bad schema", func(v *aggregate.View) {
			v.Method, v.Body = "POST", &aggregate.BodyPolicy{Schema: json.RawMessage(`{"type":"nonsense"}`)}
		}, "body.schema"},
		{"remote schema ref", func(v *aggregate.View) {
			v.Method, v.Body = "POST", &aggregate.BodyPolicy{Schema: json.RawMessage(`{"$ref":"https://example.com/s.json"}`)}
		}, "only references inside the view's schema are followed"},
		{"odd body", func(v *aggregate.View) { v.Method, v.Calls[0].Method, v.Calls[0].Body = "POST", "POST", "cookie" }, `body "cookie"`},
		{"odd method", func(v *aggregate.View) { v.Method = "TRACE" }, `"TRACE": want GET, POST, PUT, PATCH or DELETE`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := good()
			tc.change(&v)
			_, err := aggregate.Compile(v, e.Catalog(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `view "v"`) {
				t.Errorf("err = %v, want it to name the view and say %q", err, tc.want)
			}
		})
	}
}

func TestShapePicksRenamesLimitsCounts(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"a": body(`{"id": 7, "name": "Ada", "extra": {"deep": [1, 2]}, "tags": ["x","y","z"],
			"list": [{"k": 1, "v": "one", "sub": [1,2,3]}, {"k": 2}, "not an object", {"k": 4, "v": null}]}`),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{{Name: "a", Upstream: "a", Path: "/a"}},
		Shape: []aggregate.Field{
			aggregate.Object("who", "a", aggregate.Pick("id"), aggregate.Rename("display", "name"), aggregate.Pick("missing")),
			aggregate.Rename("deep", "a.extra.deep"),
			aggregate.Count("tag_count", "a.tags"),
			aggregate.List("items", "a.list", 3, aggregate.Pick("k"), aggregate.Pick("v"), aggregate.Count("n", "sub")),
			aggregate.List("tags", "a.tags", 2),
			{Name: "version", Const: json.RawMessage(` 2 `)},
			{Name: "nothing", From: "a.nope", Default: json.RawMessage(`"n/a"`)},
			aggregate.List("none", "a.nope", 0),
			aggregate.Count("zero", "a.nope"),
		},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"who":{"id":7,"display":"Ada","missing":null},"deep":[1, 2],"tag_count":3,` +
		`"items":[{"k":1,"v":"one","n":3},{"k":2,"v":null,"n":0},null],"tags":["x","y"],"version":2,` +
		`"nothing":"n/a","none":[],"zero":0}`
	if string(res.Body) != want {
		t.Errorf("body\n got %s\nwant %s", res.Body, want)
	}
	if !json.Valid(res.Body) {
		t.Error("invalid JSON")
	}
}

func TestDependentCallWaitsAndUsesResult(t *testing.T) {
	var mu sync.Mutex
	var order []string
	record := func(name string, d doerFunc) doerFunc {
		return func(ctx context.Context, r *upstream.Request) (*upstream.Response, error) {
			mu.Lock()
			order = append(order, name+" "+r.Path+"?"+r.RawQuery)
			mu.Unlock()
			return d(ctx, r)
		}
	}
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"orders":  record("orders", body(`{"id":"o1","items":[{"sku":"A 1"},{"sku":"B/2"},{"sku":"A 1"}]}`)),
		"catalog": record("catalog", body(`{"products":[{"sku":"A 1"},{"sku":"B/2"}]}`)),
		"users":   record("users", body(`{"id":1}`)),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/o/{id}", Params: []aggregate.Param{{Name: "id"}},
		Calls: []aggregate.Call{
			{Name: "products", Upstream: "catalog", Path: "/products", Query: "skus={order.items.#.sku}"},
			{Name: "order", Upstream: "orders", Path: "/orders/{id}"},
			{Name: "first", Upstream: "users", Path: "/products/{order.items.0.sku}"},
		},
		Shape: []aggregate.Field{aggregate.Rename("n", "products.products.#")},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{Params: []string{"o1"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != `{"n":2}` {
		t.Errorf("body %s", res.Body)
	}
	if len(order) != 3 || order[0] != "orders /orders/o1?" {
		t.Fatalf("calls %v: the order must come first", order)
	}
	got := strings.Join(order[1:], " | ")
	if !strings.Contains(got, "catalog /products?skus=A+1%2CB%2F2") || !strings.Contains(got, "users /products/A%201?") {
		t.Errorf("dependent calls were %q", got)
	}
}

func TestDependentCallWithNothingToAskIsSkipped(t *testing.T) {
	called := false
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"orders": body(`{"items":[]}`),
		"catalog": doerFunc(func(context.Context, *upstream.Request) (*upstream.Response, error) {
			called = true
			return nil, errors.New("must not be called")
		}),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{
			{Name: "order", Upstream: "orders", Path: "/o"},
			{Name: "products", Upstream: "catalog", Path: "/p", Query: "skus={order.items.#.sku}", Optional: true},
		},
		Shape: []aggregate.Field{aggregate.List("products", "products.products", 0)},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil || called || len(res.Missing) != 0 || string(res.Body) != `{"products":[]}` {
		t.Errorf("err %v called %v missing %v body %s", err, called, res.Missing, res.Body)
	}
}

// An optional call's failure must not cancel a required sibling.
func TestOptionalFailureDoesNotCancelSiblings(t *testing.T) {
	failed := make(chan struct{})
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"slow": doerFunc(func(ctx context.Context, _ *upstream.Request) (*upstream.Response, error) {
			<-failed // the optional call has already failed
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			return &upstream.Response{Status: 200, Body: []byte(`{"ok":true}`)}, nil
		}),
		"bad": doerFunc(func(context.Context, *upstream.Request) (*upstream.Response, error) {
			defer close(failed)
			return nil, &upstream.Error{Upstream: "bad", Kind: upstream.KindTimeout, Err: context.DeadlineExceeded}
		}),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{
			{Name: "main", Upstream: "slow", Path: "/"},
			{Name: "extra", Upstream: "bad", Path: "/", Optional: true},
		},
		Shape: []aggregate.Field{aggregate.Rename("ok", "main.ok"), aggregate.Rename("extra", "extra.x")},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatalf("the view failed: %v", err)
	}
	if string(res.Body) != `{"ok":true,"extra":null}` {
		t.Errorf("body %s", res.Body)
	}
	if len(res.Missing) != 1 || res.Missing[0] != (aggregate.Missing{Call: "extra", Reason: "timeout"}) {
		t.Errorf("missing %+v", res.Missing)
	}
}

// The last call runs on Run's own goroutine: a required failure cancels the
// others wherever it stands.
func TestRequiredFailureCancelsSiblingsAndNamesTheCall(t *testing.T) {
	for _, failFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("failFirst=%v", failFirst), func(t *testing.T) {
			canceled := make(chan struct{})
			e := aggregate.NewEngine(map[string]aggregate.Doer{
				"wait": doerFunc(func(ctx context.Context, _ *upstream.Request) (*upstream.Response, error) {
					<-ctx.Done()
					close(canceled)
					return nil, &upstream.Error{Upstream: "wait", Kind: upstream.KindCanceled, Err: ctx.Err()}
				}),
				"bad": failing(upstream.KindStatus, 500),
			})
			calls := []aggregate.Call{
				{Name: "a", Upstream: "wait", Path: "/"},
				{Name: "b", Upstream: "bad", Path: "/"},
			}
			if failFirst {
				calls[0], calls[1] = calls[1], calls[0]
			}
			p := compile(t, e, aggregate.View{
				Name: "v", Route: "/v", Calls: calls,
				Shape: []aggregate.Field{aggregate.Pick("a")},
			})
			res, err := e.Run(context.Background(), p, aggregate.Input{})
			var ce *aggregate.CallError
			if !errors.As(err, &ce) || ce.Call != "b" || ce.Upstream != "bad" {
				t.Fatalf("err = %v", err)
			}
			// The failed run still reports its calls, for the access log.
			outcomes := map[string]string{}
			for _, c := range res.Calls {
				outcomes[c.Name] = c.Outcome
			}
			if outcomes["b"] != "error" || outcomes["a"] != "canceled" || res.Body != nil {
				t.Errorf("reports of the failed run: %v, body %q; want b error, a canceled, no body", outcomes, res.Body)
			}
			<-canceled
		})
	}
}

// A call may depend on the last one, which runs on Run's own goroutine.
func TestCallDependsOnLastCall(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"orders": body(`{"id":"o1","user":7}`),
		"users": doerFunc(func(_ context.Context, r *upstream.Request) (*upstream.Response, error) {
			return &upstream.Response{Status: 200, Body: []byte(`{"path":"` + r.Path + `"}`)}, nil
		}),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{
			{Name: "user", Upstream: "users", Path: "/users/{order.user}"},
			{Name: "order", Upstream: "orders", Path: "/orders/1"},
		},
		Shape: []aggregate.Field{aggregate.Rename("p", "user.path"), aggregate.Rename("o", "order.id")},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != `{"p":"/users/7","o":"o1"}` {
		t.Errorf("body %s", res.Body)
	}
}

func TestViewDeadlineBoundsCalls(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"hang": doerFunc(func(ctx context.Context, _ *upstream.Request) (*upstream.Response, error) {
			<-ctx.Done()
			return nil, &upstream.Error{Upstream: "hang", Kind: upstream.KindTimeout, Err: ctx.Err()}
		}),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v", Timeout: 40 * time.Millisecond,
		Calls: []aggregate.Call{{Name: "a", Upstream: "hang", Path: "/", Timeout: time.Hour}},
		Shape: []aggregate.Field{aggregate.Pick("a")},
	})
	_, err := e.Run(context.Background(), p, aggregate.Input{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
}

func TestPanicsBecomeErrors(t *testing.T) {
	boom := doerFunc(func(context.Context, *upstream.Request) (*upstream.Response, error) { panic("boom") })
	e := aggregate.NewEngine(map[string]aggregate.Doer{"ok": body(`{"a":1}`), "boom": boom})
	for _, optional := range []bool{false, true} {
		p := compile(t, e, aggregate.View{
			Name: "v", Route: "/v",
			Calls: []aggregate.Call{
				{Name: "a", Upstream: "ok", Path: "/"},
				{Name: "b", Upstream: "boom", Path: "/", Optional: optional},
			},
			Shape: []aggregate.Field{aggregate.Pick("a")},
		})
		_, err := e.Run(context.Background(), p, aggregate.Input{})
		var pe *aggregate.PanicError
		if !errors.As(err, &pe) || len(pe.Stack) == 0 {
			t.Errorf("optional=%v: err = %v, want a PanicError", optional, err)
		}
	}
	shapers := map[string]aggregate.ShapeFunc{"bad": func(*aggregate.Sources) ([]byte, error) { panic("shaper") }}
	p, err := aggregate.Compile(aggregate.View{
		Name: "v", Route: "/v", ShapeFunc: "bad",
		Calls: []aggregate.Call{{Name: "a", Upstream: "ok", Path: "/"}},
	}, e.Catalog(shapers))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), p, aggregate.Input{}); !errors.As(err, new(*aggregate.PanicError)) {
		t.Errorf("shape func panic: err = %v", err)
	}
}

func TestShapeFuncSeesResultsAndParams(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{"ok": body(`{"name":"Ada"}`), "bad": failing(upstream.KindBreakerOpen, 0)})
	shapers := map[string]aggregate.ShapeFunc{"greet": func(s *aggregate.Sources) ([]byte, error) {
		u, _ := s.Get("user")
		_, haveExtra := s.Get("extra")
		return json.Marshal(map[string]any{"hello": u.Get("name").String(), "id": s.Param("id"), "extra": haveExtra})
	}}
	p, err := aggregate.Compile(aggregate.View{
		Name: "v", Route: "/v/{id}", Params: []aggregate.Param{{Name: "id"}}, ShapeFunc: "greet",
		Calls: []aggregate.Call{{Name: "user", Upstream: "ok", Path: "/"}, {Name: "extra", Upstream: "bad", Path: "/", Optional: true}},
	}, e.Catalog(shapers))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background(), p, aggregate.Input{Params: []string{"42"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != `{"extra":false,"hello":"Ada","id":"42"}` {
		t.Errorf("body %s", res.Body)
	}
	if len(res.Missing) != 1 || res.Missing[0].Reason != "breaker-open" {
		t.Errorf("missing %+v", res.Missing)
	}
}

func TestValidateChecksWholeValue(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{"u": body(`{}`)})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/u/{id}", Params: []aggregate.Param{{Name: "id", Pattern: `[0-9]+`}},
		Calls: []aggregate.Call{{Name: "u", Upstream: "u", Path: "/u/{id}"}},
		Shape: []aggregate.Field{aggregate.Pick("u")},
	})
	for _, v := range []string{"", "a", "7a", "a7", "7\n", "../7"} {
		if err := p.Validate([]string{v}); !errors.As(err, new(*aggregate.ParamError)) {
			t.Errorf("%q accepted", v)
		}
	}
	if err := p.Validate([]string{"123"}); err != nil {
		t.Errorf("123: %v", err)
	}
}

// The single pass over an object must agree with gjson.Get: the first of
// duplicate keys wins, escaped keys match, and nested values are skipped.
func TestShapeSinglePassAgreesWithGet(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"a": body(`{"obj":{"skip":{"id":"nested"},"id":1,"id":2,"n\u0061me":"esc","list":[{"x":1}],"z":true}}`),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{{Name: "a", Upstream: "a", Path: "/"}},
		Shape: []aggregate.Field{aggregate.Object("o", "a.obj",
			aggregate.Pick("z"), aggregate.Pick("id"), aggregate.Pick("name"), aggregate.Rename("first", "list.0.x"),
			aggregate.Pick("absent"))},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"o":{"z":true,"id":1,"name":"esc","first":1,"absent":null}}`; string(res.Body) != want {
		t.Errorf("got %s, want %s", res.Body, want)
	}
}

// Two fields may read the same key: a list of an array and its count.
func TestTwoFieldsReadOneKey(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{"a": body(`{"o":{"id":9,"items":[{"s":1},{"s":2}]}}`)})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{{Name: "a", Upstream: "a", Path: "/"}},
		Shape: []aggregate.Field{aggregate.Object("o", "a.o",
			aggregate.List("items", "items", 0, aggregate.Pick("s")), aggregate.Count("n", "items"),
			aggregate.Pick("id"), aggregate.Rename("order_id", "id"))},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"o":{"items":[{"s":1},{"s":2}],"n":2,"id":9,"order_id":9}}`; string(res.Body) != want {
		t.Errorf("got %s, want %s", res.Body, want)
	}
}

// A value a call needs but the earlier answer lacks fails a required call
// and marks an optional one missing; an empty list only skips it.
func TestMissingReference(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{"o": body(`{"id":1}`), "c": body(`{"ok":true}`)})
	for _, optional := range []bool{false, true} {
		p := compile(t, e, aggregate.View{
			Name: "v", Route: "/v",
			Calls: []aggregate.Call{
				{Name: "order", Upstream: "o", Path: "/"},
				{Name: "products", Upstream: "c", Path: "/p", Query: "skus={order.items.#.sku}", Optional: optional},
			},
			Shape: []aggregate.Field{aggregate.Rename("id", "order.id")},
		})
		res, err := e.Run(context.Background(), p, aggregate.Input{})
		if !optional {
			var re *aggregate.ReferenceError
			if !errors.As(err, &re) || !errors.As(err, new(*aggregate.CallError)) {
				t.Errorf("required: err = %v, want a CallError wrapping a ReferenceError", err)
			}
			continue
		}
		if err != nil || len(res.Missing) != 1 || res.Missing[0].Reason != "dependency" {
			t.Errorf("optional: err %v missing %+v", err, res)
		}
	}
}

// A field marked Omit disappears when its value is missing, wherever it
// stands among the others; the JSON stays valid.
func TestOmitMissingFields(t *testing.T) {
	e := aggregate.NewEngine(map[string]aggregate.Doer{"a": body(`{"x":1,"o":{"y":2}}`), "bad": failing(upstream.KindTimeout, 0)})
	omit := func(f aggregate.Field) aggregate.Field { f.Omit = true; return f }
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{{Name: "a", Upstream: "a", Path: "/"}, {Name: "b", Upstream: "bad", Path: "/", Optional: true}},
		Shape: []aggregate.Field{
			omit(aggregate.Rename("gone1", "b.z")),
			aggregate.Rename("x", "a.x"),
			omit(aggregate.List("gone2", "b.items", 0)),
			aggregate.Object("o", "a.o", omit(aggregate.Pick("nope")), aggregate.Pick("y"), omit(aggregate.Pick("nope2"))),
			omit(aggregate.Rename("kept", "a.x")),
			omit(aggregate.Count("gone3", "a.x")),
		},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"x":1,"o":{"y":2},"kept":1}`; string(res.Body) != want {
		t.Errorf("got %s, want %s", res.Body, want)
	}
	if _, err := aggregate.Compile(aggregate.View{Name: "v", Route: "/v", Calls: []aggregate.Call{{Name: "a", Upstream: "a", Path: "/"}},
		Shape: []aggregate.Field{{Name: "k", From: "a.x", Omit: true, Default: json.RawMessage(`1`)}}}, e.Catalog(nil)); err == nil ||
		!strings.Contains(err.Error(), "omit leaves a missing value out") {
		t.Errorf("omit with a default: %v", err)
	}
}

// A fan-out whose other placeholder has nothing to ask for is skipped as a
// whole, never sent to the upstream's root.
func TestFanOutWithEmptyReferenceIsSkipped(t *testing.T) {
	var calls atomic.Int64
	e := aggregate.NewEngine(map[string]aggregate.Doer{
		"o": body(`{"store":"","items":[{"sku":"a"},{"sku":"b"}]}`),
		"c": doerFunc(func(context.Context, *upstream.Request) (*upstream.Response, error) {
			calls.Add(1)
			return &upstream.Response{Status: 200, Body: []byte(`{}`)}, nil
		}),
	})
	p := compile(t, e, aggregate.View{
		Name: "v", Route: "/v",
		Calls: []aggregate.Call{
			{Name: "order", Upstream: "o", Path: "/"},
			{Name: "items", Upstream: "c", Path: "/stores/{order.store}/products/{each}", ForEach: "order.items.#.sku", Optional: true},
		},
		Shape: []aggregate.Field{aggregate.List("items", "items", 0)},
	})
	res, err := e.Run(context.Background(), p, aggregate.Input{})
	if err != nil || string(res.Body) != `{"items":[]}` || calls.Load() != 0 || len(res.Missing) != 0 {
		t.Errorf("err %v body %s calls %d missing %v", err, res.Body, calls.Load(), res.Missing)
	}
}
