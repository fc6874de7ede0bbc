package upstream_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bffproxy/bff/upstream"
)

// hostile are client values that try to leave their path segment.
var hostile = []string{
	"..", ".", "../admin", "../../etc/passwd", "a/b", "/", "//evil.example",
	"%2F", "..%2Fadmin", "%2e%2e", "%2E%2E%2Fadmin", "%", "%zz",
	"?x=1", "#f", "a b", "ü", "用户/../x", `..\..\admin`, ";x", "a;b=c",
	"\x00", "\r\nX-Injected: 1", "~", "...", ".a", "a.",
}

func TestEscapeSegment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"7", "7"},
		{"..", "%2E%2E"},
		{".", "%2E"},
		{"...", "..."}, // not a dot segment
		{"a/b", "a%2Fb"},
		{"%2F", "%252F"},
		{"?x", "%3Fx"},
		{"#f", "%23f"},
		{"a b", "a%20b"},
		{"ü", "%C3%BC"},
		{"../admin", "..%2Fadmin"},
		{"a;b", "a%3Bb"},
	}
	for _, tt := range tests {
		if got := upstream.EscapeSegment(tt.in); got != tt.want {
			t.Errorf("EscapeSegment(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The upstream itself is the judge: whatever the value, the request it sees
// stays under the base path with exactly one segment after "/users/".
func TestEscapedValueStaysOneSegment(t *testing.T) {
	var mu sync.Mutex
	var uri string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		mu.Lock()
		uri = r.RequestURI // as sent, before any decoding
		mu.Unlock()
		io.WriteString(w, `{}`)
	})
	c := newClient(t, testConfig(srv.URL+"/api/v1"))

	const prefix = "/api/v1/users/"
	for _, v := range hostile {
		t.Run(v, func(t *testing.T) {
			_, err := c.Do(t.Context(), &upstream.Request{Path: "/users/" + upstream.EscapeSegment(v)})
			if v == "." || v == ".." {
				// Encoded or not, a dot segment is refused before the network:
				// many servers decode before they resolve.
				if err == nil {
					t.Fatalf("%q was sent", v)
				}
				return
			}
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			mu.Lock()
			got := uri
			mu.Unlock()
			seg, ok := strings.CutPrefix(got, prefix)
			if !ok {
				t.Fatalf("upstream saw %q, not under %q", got, prefix)
			}
			if strings.ContainsAny(seg, "/?#") {
				t.Fatalf("upstream saw %q: more than one segment after %q", got, prefix)
			}
			if seg == "." || seg == ".." {
				t.Fatalf("upstream saw %q: a dot segment", got)
			}
			if dec, err := url.PathUnescape(seg); err != nil || dec != v {
				t.Fatalf("segment %q decodes to %q (%v), want %q", seg, dec, err, v)
			}
		})
	}
}

// A Request.Path is trusted to be escaped, but one that would leave the base
// path or smuggle a query is refused before any network call.
func TestUnsafePathRefused(t *testing.T) {
	srv := newServer(t, statuses(200))
	c := newClient(t, testConfig(srv.URL+"/api/v1"))

	for _, p := range []string{
		"/users/../admin", "/../admin", "/users/..", "..", "/users/./x", ".",
		"/users/7?admin=1", "/users/7#f", "?x", "/users/..?x",
	} {
		t.Run(p, func(t *testing.T) {
			_, err := c.Do(t.Context(), &upstream.Request{Path: p})
			ue := upstreamError(t, err)
			if ue.Attempts != 0 || ue.Status != 0 {
				t.Fatalf("err = %v: attempts %d status %d, want a refusal without a call", err, ue.Attempts, ue.Status)
			}
		})
	}
	wantCalls(t, srv, 0)
}

func FuzzEscapeSegment(f *testing.F) {
	for _, v := range hostile {
		f.Add(v)
	}
	f.Add("")
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		got := upstream.EscapeSegment(s)
		if strings.ContainsAny(got, "/?#") {
			t.Fatalf("EscapeSegment(%q) = %q contains a delimiter", s, got)
		}
		if got == "." || got == ".." {
			t.Fatalf("EscapeSegment(%q) = %q is a dot segment", s, got)
		}
		if dec, err := url.PathUnescape(got); err != nil || dec != s {
			t.Fatalf("PathUnescape(EscapeSegment(%q)) = %q, %v", s, dec, err)
		}
	})
}
