package viewtest_test

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/bffproxy/bff/internal/viewtest"
)

// TestParseErrors: each mistake names the file, the line, the case and the
// field, and says what would be right.
func TestParseErrors(t *testing.T) {
	const head = "view: web.home\ncases:\n"
	for _, tc := range []struct{ name, file, want string }{
		{"typo in expect", head + "  - name: user 7\n    request: /web/home/7\n    expect:\n      stauts: 200\n",
			`t.test.yaml:6: case "user 7": expect: unknown key "stauts" (known: body, body_file, headers, partial, problem, status)`},
		{"typo at the top", "veiw: web.home\n",
			`t.test.yaml:1: unknown key "veiw" (known: cases, upstreams, view, view_timeout)`},
		{"typo in an answer", head + "  - name: c\n    request: /web/home/7\n    upstreams:\n      users:\n        - {path: /users/7, stauts: 503}\n    expect: {}\n",
			`t.test.yaml:7: case "c": upstreams.users: unknown key "stauts" (known: body, body_file, delay, headers, method, path, query, request_headers, reset, status, timeout)`},
		{"typo in the request", head + "  - name: c\n    request: {path: /web/home/7, header: {}}\n    expect: {}\n",
			`t.test.yaml:4: case "c": request: unknown key "header" (known: auth, body, headers, method, path)`},
		{"empty", "", `t.test.yaml:1: empty file: want view: and cases:`},
		{"no view", "cases: []\n", `t.test.yaml:1: view: name the view the cases are for: view: web.home`},
		{"no cases", "view: web.home\n", `t.test.yaml:1: cases: want at least one case`},
		{"two documents", head + "  - {name: c, request: /web/home/7, expect: {}}\n---\nview: x\n",
			`t.test.yaml:4: one document per file: put every case under the one cases: list`},
		{"syntax", "view: [\n", `t.test.yaml:2: did not find expected node content`}, // where the file ends, the list still open
		{"case without name", head + "  - request: /web/home/7\n    expect: {}\n",
			`t.test.yaml:3: name: every case needs a name`},
		{"case without request", head + "  - name: c\n    expect: {}\n",
			`t.test.yaml:3: case "c": request: every case needs a request, e.g. request: /web/home/7`},
		{"case without expect", head + "  - name: c\n    request: /web/home/7\n",
			`t.test.yaml:3: case "c": expect: every case needs an expect: the status, body or headers the client must receive`},
		{"request without prefix", head + "  - {name: c, request: home/7, expect: {}}\n",
			`t.test.yaml:3: case "c": request: want the path the client requests, with its prefix: /web/home/7`},
		{"two cases of a name", head + "  - {name: c, request: /web/home/7, expect: {}}\n  - {name: c, request: /web/home/8, expect: {}}\n",
			`t.test.yaml:4: case "c": name: this name is also the case at line 3; names must differ`},
		{"bad status", head + "  - {name: c, request: /web/home/7, expect: {status: 42}}\n",
			`t.test.yaml:3: case "c": expect.status: want an HTTP status from 100 to 599, found "42"`},
		{"bad duration", "view_timeout: soon\n" + head + "  - {name: c, request: /web/home/7, expect: {}}\n",
			`t.test.yaml:1: view_timeout: want a duration above zero such as 500ms or 2s, found "soon"`},
		{"body and body_file", head + "  - {name: c, request: /web/home/7, expect: {body: {}, body_file: x.json}}\n",
			`t.test.yaml:3: case "c": expect: use body or body_file, not both`},
		{"answer without path", "view: v\nupstreams:\n  users:\n    - {status: 503}\ncases: []\n",
			`t.test.yaml:4: upstreams.users: every answer needs the path it answers: path: /users/7`},
		{"query in the path", "view: v\nupstreams:\n  users:\n    - {path: '/orders?user_id=7'}\ncases: []\n",
			`t.test.yaml:4: upstreams.users.path: want a path such as /orders, with any query in query: (user_id=7)`},
		{"bad query", "view: v\nupstreams:\n  users:\n    - {path: /orders, query: 'a=%zz'}\ncases: []\n",
			`t.test.yaml:4: upstreams.users.query: want an encoded query string such as user_id=7: invalid URL escape "%zz"`},
		{"timeout with a status", "view: v\nupstreams:\n  users:\n    - {path: /users/7, timeout: true, status: 503}\ncases: []\n",
			`t.test.yaml:4: upstreams.users: a timeout sends no answer, so status would never be sent`},
		{"timeout and reset", "view: v\nupstreams:\n  users:\n    - {path: /users/7, timeout: true, reset: true}\ncases: []\n",
			`t.test.yaml:4: upstreams.users: use timeout or reset, not both`},
		{"timeout not a bool", "view: v\nupstreams:\n  users:\n    - {path: /users/7, timeout: 2s}\ncases: []\n",
			`t.test.yaml:4: upstreams.users.timeout: want true or false, found "2s"`},
		{"two answers for a request", "view: v\nupstreams:\n  users:\n    - {path: /users/7}\n    - {path: /users/7}\ncases: []\n",
			`t.test.yaml:5: upstreams.users: GET /users/7 is also answered at line 4; one answer per request`},
		{"answers not a list", "view: v\nupstreams:\n  users: {path: /users/7}\ncases: []\n",
			`t.test.yaml:3: upstreams.users: want a list of answers, one per request, found a mapping`},
		{"anchor", "view: v\nupstreams:\n  users:\n    - &a {path: /users/7}\ncases: []\n",
			`t.test.yaml:4: upstreams.users: anchors and aliases are not supported in fixture files`},
		{"anchor in a body", "view: v\nupstreams:\n  users:\n    - {path: /users/7, body: {a: &x 1, b: *x}}\ncases: []\n",
			`t.test.yaml:4: upstreams.users.body: anchors and aliases are not supported in fixture files`},
		{"not a JSON number", "view: v\nupstreams:\n  users:\n    - {path: /users/7, body: {a: .inf}}\ncases: []\n",
			`t.test.yaml:4: upstreams.users.body: .inf is not a JSON number`},
		{"header with a newline", head + "  - name: c\n    request: {path: /web/home/7, headers: {X-A: \"a\\nb\"}}\n    expect: {}\n",
			`t.test.yaml:4: case "c": request.headers.X-A: a header value is one line`},
		{"bad method", head + "  - {name: c, request: {path: /web/home/7, method: get}, expect: {}}\n",
			`t.test.yaml:3: case "c": request.method: want a method such as GET, found "get"`},
		{"partial as a header", head + "  - {name: c, request: /web/home/7, expect: {headers: {bff-partial: x}}}\n",
			`t.test.yaml:3: case "c": expect.headers: write the Bff-Partial header as partial:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := viewtest.Parse("t.test.yaml", []byte(tc.file))
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	f, err := viewtest.Parse("t.test.yaml", []byte(`
view: web.home
view_timeout: 300ms
upstreams:
  users:
    - path: /users/7
      query: b=2&a=1
      status: 201
      headers: {x-trace: t1}
      body: {z: 1, a: [true, null, 2026-05-30, 0x1F, "x<y"], id: 12345678901234567890}
cases:
  - name: c
    request: {path: /web/home/7, method: HEAD, headers: {accept-language: de}}
    view_timeout: 100ms
    expect:
      problem: upstream-error
      partial: ""
      headers: {X-Cache: null}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := f.Upstreams["users"][0]
	if got, want := string(a.Body), `{"z":1,"a":[true,null,"2026-05-30",31,"x<y"],"id":12345678901234567890}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if a.Status != 201 || a.Header.Get("X-Trace") != "t1" || a.Query.Encode() != "a=1&b=2" || a.Line != 6 {
		t.Errorf("answer %+v", a)
	}
	c := f.Cases[0]
	if c.Request.Method != "HEAD" || c.Request.Header.Get("Accept-Language") != "de" || c.ViewTimeout.String() != "100ms" || f.ViewTimeout.String() != "300ms" {
		t.Errorf("case %+v", c)
	}
	e := c.Expect
	if e.Problem != "urn:bff:problem:upstream-error" || e.Partial == nil || *e.Partial != "" || len(e.Header) != 1 || e.Header[0].Value != nil {
		t.Errorf("expect %+v", e)
	}
}

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"tests/a.test.yaml":    {Data: []byte("view: v\nupstreams:\n  users:\n    - {path: /u, body_file: data/u.json}\ncases:\n  - {name: c, request: /w/u, expect: {body_file: data/want.json}}\n")},
		"tests/b.test.yml":     {Data: []byte("view: w\ncases:\n  - {name: c, request: /w/u, expect: {}}\n")},
		"tests/views.yaml":     {Data: []byte("not: a fixture\n")},
		"tests/data/u.json":    {Data: []byte("{broken")},
		"tests/data/want.json": {Data: []byte(`{"b": 1, "a": 2}`)},
	}
	files, err := viewtest.Load(fsys, "tests", "dir")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Name != "dir/tests/a.test.yaml" || files[1].Name != "dir/tests/b.test.yml" {
		t.Fatalf("files %v", files)
	}
	if got := string(files[0].Upstreams["users"][0].Body); got != "{broken" {
		t.Errorf("body_file is sent as it is: got %q", got)
	}

	for _, tc := range []struct{ name, file, want string }{
		{"missing body file", "view: v\ncases:\n  - name: c\n    request: /w/u\n    expect: {body_file: nope.json}\n",
			`dir/tests/x.test.yaml:5: case "c": expect.body_file: nope.json: file does not exist`},
		{"body file outside", "view: v\ncases:\n  - name: c\n    request: /w/u\n    expect: {body_file: ../../etc/passwd}\n",
			`dir/tests/x.test.yaml:5: case "c": expect.body_file: ../../etc/passwd is outside dir`},
		{"expected body not JSON", "view: v\ncases:\n  - name: c\n    request: /w/u\n    expect: {body_file: data/u.json}\n",
			`dir/tests/x.test.yaml:5: case "c": expect.body_file: data/u.json is not JSON: invalid character 'b'`},
		{"missing answer file", "view: v\nupstreams:\n  users:\n    - {path: /u, body_file: nope.json}\ncases:\n  - {name: c, request: /w/u, expect: {}}\n",
			`dir/tests/x.test.yaml:4: upstreams.users.body_file: nope.json: file does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"tests/x.test.yaml": {Data: []byte(tc.file)}, "tests/data/u.json": {Data: []byte("{broken")}}
			_, err := viewtest.Load(fsys, "tests", "dir")
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestLoadDir reads from a directory as bff test does.
func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tests"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tests", "p.test.yaml"), []byte("view: v\ncases:\n  - name: c\n    request: /w/u\n    expect: {stauts: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := viewtest.Load(os.DirFS(dir), "tests", dir)
	want := dir + `/tests/p.test.yaml:5: case "c": expect: unknown key "stauts" (known: body, body_file, headers, partial, problem, status)`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}
