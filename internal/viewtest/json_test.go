package viewtest

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func mustJSON(t *testing.T, s string) *value {
	t.Helper()
	v, err := parseJSON([]byte(s))
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct{ want, got, diff string }{
		{`{"a":1}`, `{"a":1}`, ""},
		{`{"a":1.50,"id":12345678901234567890}`, `{"a":1.5,"id":12345678901234567890}`, ""},
		{`{"id":12345678901234567890}`, `{"id":12345678901234567891}`, "$.id: want 12345678901234567890, got 12345678901234567891"},
		{`{"orders":[{"total_cents":1},{"total_cents":2},{"total_cents":100}]}`, `{"orders":[{"total_cents":1},{"total_cents":2},{"total_cents":200}]}`,
			"$.orders[2].total_cents: want 100, got 200"},
		{`{"user":{"name":"a","id":1}}`, `{"user":{"id":1,"name":"a"}}`, "$.user: keys in order [id name], want [name id]"},
		{`{"a":1,"b":2}`, `{"b":2,"c":3}`, "$.a: missing, want 1\n$.c: unexpected, got 3"},
		// Keys that only one side has do not make an order difference.
		{`{"a":1,"b":2}`, `{"a":1,"x":0,"b":2}`, "$.x: unexpected, got 0"},
		{`{"a":[]}`, `{"a":null}`, "$.a: want [], got null"},
		{`{"a":"x"}`, `{"a":"y"}`, `$.a: want "x", got "y"`},
		{`{"a":true}`, `{"a":false}`, "$.a: want true, got false"},
		{`[1,2]`, `[1]`, "$: want 2 elements, got 1\n$[1]: missing, want 2"},
		{`{"odd key":1,"é":2}`, `{"odd key":2,"é":3}`, `$["odd key"]: want 1, got 2` + "\n" + `$["é"]: want 2, got 3`},
		{`{"a":"` + strings.Repeat("x", 100) + `"}`, `{"a":"y"}`, `$.a: want "` + strings.Repeat("x", 56) + `…, got "y"`},
		{`{"a":1}`, `{"a":1,"a":2}`, `$: key "a" appears twice`},
	} {
		var d differ
		d.diff("$", mustJSON(t, tc.want), mustJSON(t, tc.got))
		if got := strings.Join(d.lines, "\n"); got != tc.diff {
			t.Errorf("diff(%s, %s):\n%s\nwant\n%s", tc.want, tc.got, got, tc.diff)
		}
	}
}

// TestDiffLimit: a long list of differences is cut, and the rest counted.
func TestDiffLimit(t *testing.T) {
	var d differ
	d.diff("$", mustJSON(t, `[]`), mustJSON(t, "["+strings.Repeat("1,", 29)+"1]"))
	if len(d.lines) != maxLines || d.more != 11 {
		t.Errorf("%d lines, %d more", len(d.lines), d.more)
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, s := range []string{``, `{`, `{"a":1}{}`, `[1,]`, strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2)} {
		if _, err := parseJSON([]byte(s)); err == nil {
			t.Errorf("parseJSON(%.20q): no error", s)
		}
	}
}

func TestFromYAML(t *testing.T) {
	for _, tc := range []struct{ yaml, json string }{
		{"{b: 1, a: 2}", `{"b":1,"a":2}`},
		{"[1.0, -2e3, 0x10, +5, 1_000, 0o17]", `[1.0,-2e3,16,5,1000,15]`},
		{"{at: 2026-05-30T08:35:00Z, on: 2026-05-30}", `{"at":"2026-05-30T08:35:00Z","on":"2026-05-30"}`},
		{"{t: yes, f: False, n: ~}", `{"t":"yes","f":false,"n":null}`},
		{"{1: a, true: b}", `{"1":"a","true":"b"}`},
		{`"tab\there \u0001 <&>"`, `"tab\there \u0001 <&>"`},
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(tc.yaml), &n); err != nil {
			t.Fatal(err)
		}
		v, err := fromYAML(n.Content[0], 0)
		if err != nil {
			t.Errorf("%s: %v", tc.yaml, err)
			continue
		}
		if got := string(v.encode(nil)); got != tc.json {
			t.Errorf("%s: got %s, want %s", tc.yaml, got, tc.json)
		}
		if !json.Valid(v.encode(nil)) {
			t.Errorf("%s: not valid JSON", tc.yaml)
		}
	}
	for _, bad := range []string{"{a: .nan}", "{a: -.inf}", "{[a]: 1}", "!foo x"} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(bad), &n); err != nil {
			t.Fatal(err)
		}
		if _, err := fromYAML(n.Content[0], 0); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
