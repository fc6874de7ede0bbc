package openapi

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

func TestLengths(t *testing.T) {
	for _, c := range []struct {
		pattern string
		lo, hi  int
	}{
		{`[0-9]{1,18}`, 1, 18},
		{`ord-[0-9]{1,18}-[0-9]{1,4}`, 7, 27},
		{`[^/]+`, 1, -1},
		{`a|bc|`, 0, 2},
		{`(ab)?c*`, 0, -1},
		{`x{3}(yz){2,}`, 7, -1},
		{`(?:é|ab)`, 1, 2}, // characters, not bytes
		{`^abc$`, 3, 3},
	} {
		lo, hi, ok := lengths(c.pattern)
		if !ok || lo != c.lo || hi != c.hi {
			t.Errorf("lengths(%q) = %d, %d, %v; want %d, %d", c.pattern, lo, hi, ok, c.lo, c.hi)
		}
	}
	if _, _, ok := lengths(`(`); ok {
		t.Error("an invalid pattern has lengths")
	}
}

func TestECMASafe(t *testing.T) {
	for p, want := range map[string]bool{
		`[0-9]{1,18}`: true, `ord-[0-9]+`: true, `(?:a|b)`: true, `\d+\.\d+`: true, `\(?x`: true,
		`(?i)abc`: false, `(?P<n>x)`: false, `\Ax\z`: false, `\pL`: false, `[[:alpha:]]`: false, `\x{41}`: false, `\Q.\E`: false,
	} {
		if got := ecmaSafe(p); got != want {
			t.Errorf("ecmaSafe(%q) = %v", p, got)
		}
	}
}

func TestTypesWith(t *testing.T) {
	for _, c := range []struct {
		t    types
		add  string
		want types
	}{
		{types{tString}, tNull, types{tString, tNull}},
		{types{tNull}, tObject, types{tObject, tNull}},
		{types{tInteger}, tNumber, types{tNumber}},
		{types{tNumber}, tInteger, types{tNumber}},
		{types{tInteger, tNull}, tInteger, types{tInteger, tNull}},
	} {
		if got := c.t.with(c.add); !slices.Equal(got, c.want) {
			t.Errorf("%v.with(%s) = %v, want %v", c.t, c.add, got, c.want)
		}
	}
}

func TestCamel(t *testing.T) {
	for in, want := range map[string]string{
		"web.home": "webHome", "mobile.order_detail": "mobileOrderDetail", "Web.Home": "webHome",
		"9lives": "view9lives", "": "view", "..": "view", "web.é": "web",
	} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}

// The document writer's strings decode to what was written, and its
// indentation is json.Indent's.
func FuzzWrite(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\s`, "<a&b>", "\x00\x1f\t\n\r", "\u2028\u2029", "é€😀", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "n" || s == "raw" {
			t.Skip("the other keys")
		}
		doc := obj{{s, []any{s, obj{}, []any{}, obj{{"k", types{tString, tNull}}}}}, {"n", 1}, {"raw", json.RawMessage(`{"a":[1,{}]}`)}}
		var b bytes.Buffer
		if err := write(&b, doc, 0); err != nil {
			t.Fatal(err)
		}
		var back map[string]json.RawMessage
		if err := json.Unmarshal(b.Bytes(), &back); err != nil {
			t.Fatalf("%q: %v\n%s", s, err, b.Bytes())
		}
		want := jsonRoundTrip(t, s) // invalid UTF-8 becomes U+FFFD, as encoding/json has it
		var value []any
		if err := json.Unmarshal(back[want], &value); err != nil || len(value) != 4 || value[0] != want {
			t.Fatalf("%q came back as %s", s, b.Bytes())
		}
		var indented bytes.Buffer
		if err := json.Indent(&indented, b.Bytes(), "", "  "); err != nil || !bytes.Equal(indented.Bytes(), b.Bytes()) {
			t.Fatalf("not json.Indent's layout:\n%s\nvs\n%s", b.Bytes(), indented.Bytes())
		}
	})
}

func jsonRoundTrip(t *testing.T, s string) string {
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
