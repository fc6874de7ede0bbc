package viewtest_test

import (
	"strings"
	"testing"

	"github.com/bffproxy/bff/internal/viewtest"
)

// A fixture's YAML syntax mistake is reported at its line: a flow mapping
// left open on line 7 was reported at line 6 once (yaml.v3 prints a parser
// error's 0-based line).
func TestFixtureSyntaxErrorLine(t *testing.T) {
	const fixture = `view: t.home
cases:
  - name: c
    request: /t/home/7
    upstreams:
      users:
        - {path: /users/7, body: {id: 7, name: Ada}
    expect:
      body: {user: {id: 7, name: Ada}, recs: []}
`
	_, err := viewtest.Parse("t.test.yaml", []byte(fixture))
	if err == nil {
		t.Fatal("accepted")
	}
	if !strings.HasPrefix(err.Error(), "t.test.yaml:7:") && !strings.HasPrefix(err.Error(), "t.test.yaml:8:") {
		t.Errorf("error %q, want it at line 7 (or 8), where the answer's mapping is left open", err)
	}
}

// A key written twice in a fixture body is a mistake, as everywhere else
// in fixture and view files ("Keys are strict ... a typo is an error with
// the file and line"), in an expected body too: there the first value
// once won silently, and a case whose later, corrected value disagreed
// with the view passed.
func TestDuplicateKeyInExpectedBody(t *testing.T) {
	const fixture = `
view: t.home
upstreams:
  users:
    - {path: /users/7, body: {id: 7, name: Ada}}
  recs:
    - {path: /recommendations, query: user_id=7, body: {items: []}}
cases:
  - name: c
    request: /t/home/7
    expect:
      body:
        user: {id: 7, name: Ada, name: Bob}
        recs: []
`
	f, err := viewtest.Parse("t.test.yaml", []byte(fixture))
	if err != nil {
		if strings.Contains(err.Error(), "t.test.yaml:13") {
			return // refused at its line: what the other keys get
		}
		t.Fatalf("refused, but not at line 13: %v", err)
	}
	_ = f
	res := runOne(t, fixture)
	if len(res) == 1 && res[0].Passed() {
		t.Errorf("an expected body with name written twice (Ada, then Bob) is accepted, and the case passes against name Ada")
	}
}

// A case may send the headers a browser sends (request.headers); Chrome
// and Firefox send "Accept-Encoding: gzip, deflate, br, zstd", and the BFF
// answers a body of 1 KiB or more in zstd, which the runner decodes (it
// decoded gzip only once, and such a case failed with "body: not JSON").
func TestBrowserAcceptEncoding(t *testing.T) {
	var items, want strings.Builder
	for i := range 200 {
		if i > 0 {
			items.WriteString(", ")
			want.WriteString(", ")
		}
		items.WriteString("{id: r" + string(rune('a'+i%26)) + ", title: the same long title again}")
		want.WriteString("{id: r" + string(rune('a'+i%26)) + "}")
	}
	fixture := `
view: t.home
upstreams:
  users:
    - {path: /users/7, body: {id: 7, name: Ada}}
  recs:
    - {path: /recommendations, query: user_id=7, body: {items: [` + items.String() + `]}}
cases:
  - name: as a browser asks
    request: {path: /t/home/7, headers: {Accept-Encoding: 'gzip, deflate, br, zstd'}}
    expect:
      body: {user: {id: 7, name: Ada}, recs: [` + want.String() + `]}
`
	res := runOne(t, fixture)
	if len(res) != 1 || !res[0].Passed() {
		t.Errorf("a case whose body matches fails:\n%s", failures(res[0]))
	}
}
