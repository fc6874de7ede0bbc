package viewtest

import (
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/bffproxy/bff/bff/mobile"
	"github.com/bffproxy/bff/bff/web"
)

// FuzzParse feeds arbitrary files to the fixture loader: it returns an
// error or fixtures, never panics or hangs, and every body it makes from
// YAML is valid JSON.
func FuzzParse(f *testing.F) {
	for _, fsys := range []fs.FS{web.Tests(), mobile.Tests()} {
		names, _ := fs.Glob(fsys, "tests/*.test.yaml")
		for _, name := range names {
			data, err := fs.ReadFile(fsys, name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("view: v\ncases:\n  - {name: c, request: /v/1, expect: {body: {a: [1, {b: null}]}}}\n"))
	f.Add([]byte("view: v\nupstreams: {u: [{path: /x, body: &a {x: *a}}]}\ncases: []\n"))
	f.Add([]byte("view: v\nupstreams: {u: [{path: /x, query: 'a=%zz', timeout: true}]}\n"))
	f.Add([]byte("- [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f.test.yaml", data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		check := func(b []byte) {
			if b != nil && !json.Valid(b) {
				t.Fatalf("body is not JSON: %s", b)
			}
		}
		for _, list := range file.Upstreams {
			for _, a := range list {
				check(a.Body)
			}
		}
		for _, c := range file.Cases {
			for _, list := range c.Upstreams {
				for _, a := range list {
					check(a.Body)
				}
			}
			if c.Expect.body != nil {
				check(c.Expect.body.encode(nil))
			}
		}
	})
}

// FuzzParseJSON: the ordered reader agrees with encoding/json on what is
// JSON (within the depth bound), and what it writes reads back the same.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,"x\u00e9",true,null]}`, `[]`, `{"a":1,"a":2}`, `"\ud800"`, `1 2`, `{"a":}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseJSON(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted %q, which is not JSON", data)
		}
		out := v.encode(nil)
		again, err := parseJSON(out)
		if err != nil {
			t.Fatalf("wrote %q, which does not read back: %v", out, err)
		}
		if out2 := again.encode(nil); string(out2) != string(out) {
			t.Fatalf("%q: wrote %s, then %s", data, out, out2)
		}
	})
}
