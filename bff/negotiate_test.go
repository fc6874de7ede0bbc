package bff

import (
	"net/http"
	"strings"
	"testing"
)

// The request headers a hit reads before answering: Accept-Encoding picks
// the body's bytes, If-None-Match decides between 200 and 304, and
// Accept-Language becomes part of the cache key. Each comes straight from
// the client.

func TestChooseEncoding(t *testing.T) {
	for header, want := range map[string]string{
		"":                          "",
		"gzip":                      "gzip",
		"gzip, deflate, br":         "gzip",
		"gzip, zstd":                "zstd", // a tie goes to zstd
		"zstd;q=0.5, gzip":          "gzip",
		"gzip;q=0":                  "",
		"GZIP":                      "gzip",
		" gzip ; q=0.8 ":            "gzip",
		"*":                         "zstd",
		"*;q=0":                     "",
		"gzip;q=0, *":               "zstd",
		"zstd;q=0, *;q=0.5":         "gzip",
		"identity":                  "",
		"br":                        "",
		"gzip;q=bogus":              "gzip", // an unreadable q counts as 1
		"gzip;q=NaN":                "",
		"deflate;q=0.5, gzip;q=0.1": "gzip",
		"gzip;Q=0":                  "", // parameter names are case-insensitive
		"gzip;x=1;q=0":              "",
		"zstd ; q=0 ; x=1, gzip":    "gzip",
	} {
		if got := chooseEncoding(header); got != want {
			t.Errorf("chooseEncoding(%q) = %q, want %q", header, got, want)
		}
	}
}

func FuzzChooseEncoding(f *testing.F) {
	for _, s := range []string{"", "gzip", "zstd;q=0.5, gzip", "*;q=0", "gzip;q=0, *", "a,b;q=,", ";;;q=1e309"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := chooseEncoding(header)
		if got != "" && got != "gzip" && got != "zstd" {
			t.Fatalf("chooseEncoding(%q) = %q", header, got)
		}
		// Codings the BFF does not make change nothing.
		if again := chooseEncoding(header + ", identity, br;q=1"); again != got {
			t.Fatalf("chooseEncoding(%q) = %q, but %q with identity and br added", header, got, again)
		}
		// Whatever came before, a client that refuses both gets neither.
		if refused := chooseEncoding(header + ", gzip;q=0, zstd;q=0"); refused != "" {
			t.Fatalf("chooseEncoding(%q + refusals) = %q", header, refused)
		}
		// Refusing the coding not picked does not change the pick.
		switch got {
		case "gzip":
			if again := chooseEncoding(header + ",zstd;q=0"); again != "gzip" {
				t.Fatalf("chooseEncoding(%q) = gzip, but %q once zstd is refused", header, again)
			}
		case "zstd":
			if again := chooseEncoding(header + ",gzip;q=0"); again != "zstd" {
				t.Fatalf("chooseEncoding(%q) = zstd, but %q once gzip is refused", header, again)
			}
		}
	})
}

func TestETagMatches(t *testing.T) {
	const etag = `W/"db678fa0c15bcafc"`
	for header, want := range map[string]bool{
		`W/"db678fa0c15bcafc"`:               true,
		`"db678fa0c15bcafc"`:                 true, // If-None-Match compares weakly
		`"x", W/"db678fa0c15bcafc"`:          true,
		` W/"db678fa0c15bcafc" ,"y"`:         true,
		`*`:                                  true,
		``:                                   false,
		`"db678fa0c15bcafd"`:                 false,
		`db678fa0c15bcafc`:                   false,
		`W/"db678fa0c15bcafc`:                false,
		`"db678fa0c15bcafc", `:               true,
		`W/W/"db678fa0c15bcafc"`:             false,
		`"db678fa0c15bcafc""db678fa0c15bc"`:  false,
		`,,,`:                                false,
		`"a", "b", "c", "d", "e", "f", "*"`:  false, // a quoted * is a tag, not the wildcard
		`"a";"db678fa0c15bcafc"`:             false,
		"W/\"db678fa0c15bcafc\"\t":           true,
		`w/"db678fa0c15bcafc"`:               false, // W/ is case-sensitive
		`"DB678FA0C15BCAFC"`:                 false,
		`W/"db678fa0c15bcafc", W/"db678fa0"`: true,
	} {
		if got := ETagMatches(header, etag); got != want {
			t.Errorf("ETagMatches(%q) = %v, want %v", header, got, want)
		}
	}
}

func FuzzETagMatches(f *testing.F) {
	for _, s := range []string{"", "*", `W/"a"`, `"a", "b"`, `,,W/`} {
		f.Add(s, `W/"a"`)
	}
	f.Fuzz(func(t *testing.T, header, etag string) {
		if !strings.HasPrefix(etag, `W/"`) || !strings.HasSuffix(etag, `"`) || strings.ContainsAny(etag, ", ") || len(etag) < 5 {
			return // not a tag the cache makes
		}
		got := ETagMatches(header, etag)
		if strings.Trim(header, " ,\t") == "" && got {
			t.Fatalf("an empty If-None-Match matched %q", etag)
		}
		if !ETagMatches(header+", "+etag, etag) {
			t.Fatalf("%q does not match when the list ends with it", etag)
		}
		if got && !ETagMatches(`"other", `+header, etag) {
			t.Fatalf("%q matched %q but not with another tag before it", header, etag)
		}
	})
}

func FuzzDropOddLanguage(f *testing.F) {
	for _, s := range []string{"en", "en-US,en;q=0.9", "*", "de-CH, fr;q=0.5", "x\x00", strings.Repeat("a", 65)} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, value string, twice bool) {
		h := http.Header{"Accept-Language": {value}}
		if twice {
			h["Accept-Language"] = append(h["Accept-Language"], value)
		}
		dropOddLanguage(h)
		v, kept := h["Accept-Language"]
		if !kept {
			return
		}
		if twice {
			t.Fatalf("a repeated Accept-Language was kept: %q", v)
		}
		if len(v) != 1 || v[0] != value {
			t.Fatalf("kept, but changed: %q from %q", v, value)
		}
		if len(value) > 64 {
			t.Fatalf("kept a %d-byte value", len(value))
		}
		for _, c := range []byte(value) {
			if c < ' ' || c > '~' || strings.IndexByte("\"'/\\?#&%+:<>@[]{}|^`!$()~_", c) >= 0 {
				t.Fatalf("kept %q, which holds %q", value, c)
			}
		}
	})
}

// Whatever a caller sends as trace context, what is forwarded is bounded:
// a traceparent kept is one line of W3C's form (lowercase hex, not all
// zeros, version ff never), and a tracestate kept is printable, within 512
// bytes, and beside a traceparent.
func FuzzDropOddTraceContext(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "rojo=00f067aa0ba902b7", false)
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more", "a=1,\tb=2", true)
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", strings.Repeat("k=v,", 200), false)
	f.Fuzz(func(t *testing.T, parent, state string, twice bool) {
		h := http.Header{"Traceparent": {parent}, "Tracestate": {state}}
		if twice {
			h["Tracestate"] = append(h["Tracestate"], state)
		}
		dropOddTraceContext(h)
		if p, ok := h["Traceparent"]; ok {
			if len(p) != 1 || p[0] != parent || len(parent) < 55 || len(parent) > maxTraceState || parent[:2] == "ff" ||
				strings.Trim(parent[:55], "0123456789abcdef-") != "" || parent[3:35] == strings.Repeat("0", 32) {
				t.Fatalf("kept traceparent %q", p)
			}
		}
		if s, ok := h["Tracestate"]; ok {
			if _, parentKept := h["Traceparent"]; !parentKept {
				t.Fatalf("kept tracestate %q without a traceparent", s)
			}
			if n := len(strings.Join(s, ",")); n > maxTraceState {
				t.Fatalf("kept a %d-byte tracestate", n)
			}
			for _, c := range []byte(strings.Join(s, ",")) {
				if (c < ' ' || c > '~') && c != '\t' {
					t.Fatalf("kept tracestate %q, which holds %q", s, c)
				}
			}
		}
	})
}
