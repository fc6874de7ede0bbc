package upstream

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

var jsonCases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e10`, `-12.34E-5`, `true`, `false`, `null`, ` {"a" : [1, 2, {"b": null}] } `,
	`{"s":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"}`, `["` + strings.Repeat("abcdefgh", 20) + `"]`, "\t\n\r[ ]\n",
	`{"a":1,}`, `[1,]`, `{"a" 1}`, `{a:1}`, `[01]`, `[1.]`, `[.5]`, `[1e]`, `[+1]`, `[-]`, `[tru]`, `[nul]`, `"abc`,
	`"a` + "\x01" + `b"`, `"\x"`, `"\u12G4"`, `[1]]`, `[[1]`, `{"a":1}{`, ``, ` `, `{"a":}`, `{,}`, `[,1]`, `{"a":1 "b":2}`,
	strings.Repeat("[", 600) + strings.Repeat("]", 600),
	strings.Repeat("[", 512) + strings.Repeat("]", 512),
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range jsonCases {
		want := json.Valid([]byte(c))
		if strings.HasPrefix(c, strings.Repeat("[", 600)) {
			want = false // deeper than maxJSONDepth: refused on purpose
		}
		if got := validJSON([]byte(c)); got != want {
			t.Errorf("validJSON(%.60q) = %v, want %v", c, got, want)
		}
	}
}

// FuzzValidJSON: the validator agrees with encoding/json on everything not
// nested deeper than the limit.
func FuzzValidJSON(f *testing.F) {
	for _, c := range jsonCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := validJSON([]byte(s)), json.Valid([]byte(s))
		if strings.Count(s, "[")+strings.Count(s, "{") > maxJSONDepth && !got {
			return // may be too deep
		}
		if got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", s, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	doc := []byte(`{"items":[` + strings.Repeat(`{"id":"prod-000123","title":"Premium Walnut Speaker","price_cents":4999,"rating":4.5,"description":"`+strings.Repeat("d", 150)+`","tags":["new","eco"]},`, 19) + `{}]}`)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if !validJSON(doc) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkValidJSONGjson(b *testing.B) {
	doc := []byte(`{"items":[` + strings.Repeat(`{"id":"prod-000123","title":"Premium Walnut Speaker","price_cents":4999,"rating":4.5,"description":"`+strings.Repeat("d", 150)+`","tags":["new","eco"]},`, 19) + `{}]}`)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if !gjson.ValidBytes(doc) {
			b.Fatal("invalid")
		}
	}
}
