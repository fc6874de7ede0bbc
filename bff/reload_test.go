package bff_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/aggregate/viewfile"
	"github.com/bffproxy/bff/bff"
)

// feedYAML is the README's kind of view: an int query parameter with
// bounds and a default, written back into the response with `param`.
const feedYAML = `views:
  - name: web.feed
    route: /feed/{id}
    params: {id: '[0-9]+'}
    query:
      limit: {type: int, min: 1, max: 50, default: 10}
    cache: {ttl: 1m}
    calls:
      f: {upstream: feed, path: '/feed/{id}', query: 'limit={limit}'}
    shape:
      q: f.q
      limit: {param: limit}
`

func feedSets(t *testing.T) []bff.RouteSet {
	t.Helper()
	views, err := viewfile.Parse("feed.yaml", []byte(feedYAML))
	if err != nil {
		t.Fatal(err)
	}
	return []bff.RouteSet{{Client: "web", Views: views}}
}

var feedUpstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := json.Marshal(map[string]string{"q": r.URL.RawQuery})
	_, _ = w.Write(b)
})

// A reload that reads the very same view file again keeps the view's
// cached responses (only a changed view must not serve what its old
// definition cached), and replicas sharing Redis share its entries: the
// fingerprint of a definition is the same on every parse. It was fmt's %#v
// once, which prints the addresses of pointer fields (query bounds and
// defaults, the body policy).
func TestReloadOfUnchangedViewKeepsItsCache(t *testing.T) {
	h := newHarness(t, options{routeSets: feedSets(t), handlers: map[string]http.Handler{"feed": feedUpstream}})
	if w := h.get(t, "/web/feed/1"); w.Code != http.StatusOK || w.Header().Get("X-Cache") != "MISS" {
		t.Fatalf("first: %d %s %s", w.Code, w.Header().Get("X-Cache"), w.Body)
	}
	h.cache.Wait()
	if w := h.get(t, "/web/feed/1"); w.Header().Get("X-Cache") != "HIT" {
		t.Fatalf("second: X-Cache %s", w.Header().Get("X-Cache"))
	}
	// The watcher re-reads the unchanged file and loads it.
	if err := h.front.Load(feedSets(t)); err != nil {
		t.Fatal(err)
	}
	before := h.calls("feed")
	w := h.get(t, "/web/feed/1")
	if got := w.Header().Get("X-Cache"); got != "HIT" || h.calls("feed") != before {
		t.Errorf("after reloading the same file: X-Cache %s, %d more upstream calls; want HIT and none",
			got, h.calls("feed")-before)
	}

	// The same in the engine's own terms: two parses of one file are the
	// same definition.
	a, b := feedSets(t)[0].Views[0], feedSets(t)[0].Views[0]
	cat := aggregate.Catalog{Upstream: func(string) bool { return true }}
	pa, err := aggregate.Compile(a, cat)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := aggregate.Compile(b, cat)
	if err != nil {
		t.Fatal(err)
	}
	if pa.Fingerprint() != pb.Fingerprint() {
		t.Errorf("one definition, two fingerprints: %s and %s", pa.Fingerprint(), pb.Fingerprint())
	}
	// A changed definition is another one.
	*b.Query[0].Max = 49
	pc, err := aggregate.Compile(b, cat)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Fingerprint() == pa.Fingerprint() {
		t.Errorf("max 50 and max 49 have one fingerprint: %s", pa.Fingerprint())
	}
}
