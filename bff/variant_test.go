package bff_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bffproxy/bff/aggregate/viewfile"
	"github.com/bffproxy/bff/bff"
)

// One aggregate, projected for web and for mobile, and for old mobile apps
// in the shape they understand, picked by X-App-Version.
func TestProjectionsAndAppVersions(t *testing.T) {
	const file = `views:
  - name: profile
    route: /profile/{id}
    params: {id: '[0-9]+'}
    cache: {ttl: 1m}
    calls:
      user: {upstream: users, path: '/users/{id}'}
    projections:
      web:
        shape:
          user: {from: user, fields: [id, name, email]}
      mobile:
        shape:
          name: user.name
          avatar: user.avatar_url
        versions:
          - app_version: '<2.0'
            shape:
              username: user.name
          - app_version: '>=2.0 <2.5'
            shape:
              name: user.name
`
	entries, err := viewfile.ParseEntries("profile.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string]*bff.RouteSet{}
	var order []string
	for _, e := range entries {
		if sets[e.Client] == nil {
			sets[e.Client] = &bff.RouteSet{Client: e.Client}
			order = append(order, e.Client)
		}
		sets[e.Client].Views = append(sets[e.Client].Views, e.View)
	}
	if strings.Join(order, ",") != "web,mobile" || sets["web"].Views[0].Name != "web.profile" || sets["mobile"].Views[0].Name != "mobile.profile" {
		t.Fatalf("projections gave clients %v", order)
	}
	h := newHarness(t, options{routeSets: []bff.RouteSet{*sets["web"], *sets["mobile"]}})

	cases := []struct {
		path, version string
		wantKeys      []string
	}{
		{"/web/profile/7", "", []string{"user"}},
		{"/web/profile/7", "1.0", []string{"user"}}, // web has no variants
		{"/mobile/profile/7", "", []string{"name", "avatar"}},
		{"/mobile/profile/7", "1.9.9", []string{"username"}},
		{"/mobile/profile/7", "2.0", []string{"name"}},
		{"/mobile/profile/7", "2.4.1", []string{"name"}},
		{"/mobile/profile/7", "2.5", []string{"name", "avatar"}},
		{"/mobile/profile/7", "garbage", []string{"name", "avatar"}},
		{"/mobile/profile/7", "1.0", []string{"username"}}, // again: from the cache, the same variant
	}
	for _, tc := range cases {
		var header []string
		if tc.version != "" {
			header = []string{"X-App-Version", tc.version}
		}
		w := h.get(t, tc.path, header...)
		if w.Code != http.StatusOK {
			t.Fatalf("%s (app %q): %d %s", tc.path, tc.version, w.Code, w.Body)
		}
		equalKeys(t, tc.path+" app "+tc.version, w.Body.Bytes(), tc.wantKeys...)
		if strings.HasPrefix(tc.path, "/mobile") && !strings.Contains(w.Header().Get("Vary"), "X-App-Version") {
			t.Errorf("%s: Vary %q lacks X-App-Version", tc.path, w.Header().Get("Vary"))
		}
		h.cache.Wait()
	}
	if n := h.calls("users"); n != 4 {
		t.Errorf("users called %d times; want 4: one per client and variant, the rest from the cache", n)
	}
}
