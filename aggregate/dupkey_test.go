package aggregate

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

func TestDuplicateKey(t *testing.T) {
	for body, want := range map[string]string{
		`{"sku":"A-1","qty":0,"qty":1}`:            "/qty",
		`{"a":{"b":1,"b":2}}`:                      "/a/b",
		`{"a":[{"x":1},{"y":1,"y":2}]}`:            "/a/1/y",
		`[{"k":1},{"k":1}]`:                        "", // one key in each of two objects
		`{"a/b":{"~":1,"~":1}}`:                    "/a~1b/~0",
		`{"a":{"b":1},"b":{"a":1}}`:                "",
		`{"q\u0074y":1,"qty":2}`:                   "/qty", // the same key, escaped
		`{"a":[1,[2,{"z":{}}],{"z":[]}],"z":null}`: "",
		`{"a":[1,[2,{"z":{}}],{"z":[],"z":1}]}`:    "/a/2/z",
		`"just a string"`:                          "",
		`{}`:                                       "",
		`{"":1,"":2}`:                              "/",
		`{"n":1e999,"n":2}`:                        "/n",
		`{"deep":[[[[{"a":1}]]]],"deep2":{"a":{"a":{"a":1,"b":2}}}}`: "",
	} {
		ptr, dup := duplicateKey([]byte(body))
		if dup != (want != "") || ptr != want {
			t.Errorf("duplicateKey(%s) = %q, %v; want %q", body, ptr, dup, want)
		}
	}
}

func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `[{"a":[{"b":1}]}]`, `{"a":{"a":{}}}`, `1`, `{"x":"\"}"}`, `{"\u0061":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		_, dup := duplicateKey(body)
		// gjson walks every key as written; a map keeps one of each.
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return
		}
		if want := rawKeys(gjson.ParseBytes(body)) != mapKeys(v); dup != want {
			t.Fatalf("duplicateKey(%s) = %v; keys as written %d, distinct %d", body, dup, rawKeys(gjson.ParseBytes(body)), mapKeys(v))
		}
	})
}

func rawKeys(r gjson.Result) int {
	n := 0
	if r.IsObject() || r.IsArray() {
		r.ForEach(func(k, v gjson.Result) bool {
			if r.IsObject() {
				n++
			}
			n += rawKeys(v)
			return true
		})
	}
	return n
}

func mapKeys(v any) int {
	n := 0
	switch v := v.(type) {
	case map[string]any:
		n += len(v)
		for _, e := range v {
			n += mapKeys(e)
		}
	case []any:
		for _, e := range v {
			n += mapKeys(e)
		}
	}
	return n
}
