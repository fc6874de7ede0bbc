package viewfile_test

import (
	"strings"
	"testing"

	"github.com/bffproxy/bff/aggregate/viewfile"
)

// A YAML syntax mistake is reported at the line it is on. yaml.v3 prints
// a parser error's 0-based line as if it were 1-based, which once put the
// README's own warning case (an unquoted pattern in a flow mapping on line
// 4) at line 3, the route.
func TestSyntaxErrorLine(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		lines      []string // acceptable "v.yaml:N:" prefixes
	}{
		{"unquoted pattern in a flow mapping",
			"views:\n  - name: web.a\n    route: /a/{id}\n    params: {id: [0-9]+}\n    calls:\n      u: {upstream: users, path: '/u/{id}'}\n    shape: {name: u.name}\n",
			[]string{"v.yaml:4:"}},
		{"flow mapping left open",
			"views:\n  - name: web.a\n    route: /a\n    calls:\n      u: {upstream: users, path: /u\n    shape:\n      name: u.name\n",
			[]string{"v.yaml:5:", "v.yaml:6:"}},
		{"cache left open",
			"views:\n  - name: web.a\n    route: /a\n    cache: {ttl: 1m\n    calls:\n      u: {upstream: users, path: /u}\n",
			[]string{"v.yaml:4:", "v.yaml:5:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := viewfile.Parse("v.yaml", []byte(tc.file))
			if err == nil {
				t.Fatal("accepted")
			}
			ok := false
			for _, l := range tc.lines {
				ok = ok || strings.HasPrefix(err.Error(), l)
			}
			if !ok {
				t.Errorf("error %q, want it at %v\n%s", err, tc.lines, numbered(tc.file))
			}
		})
	}
}

func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		b.WriteString(strings.Repeat(" ", 2) + string(rune('0'+(i+1)%10)) + " " + l + "\n")
	}
	return b.String()
}

// A parser error without a construct around it (a second %YAML directive)
// is at its own line too.
func TestDirectiveErrorLine(t *testing.T) {
	_, err := viewfile.Parse("v.yaml", []byte("%YAML 1.1\n%YAML 1.1\n---\nviews: []\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "v.yaml:2:") {
		t.Errorf("error %v; want it at line 2", err)
	}
}
