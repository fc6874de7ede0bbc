package admin_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// postPurge sends a POST to the purge endpoint with a body and headers.
func (s *stack) postPurge(t *testing.T, query, contentType, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.admin.URL+"/_bff/cache/purge"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func fill(t *testing.T, s *stack, paths ...string) {
	t.Helper()
	for _, p := range paths {
		s.get(t, p)
	}
	for _, p := range paths {
		s.wantCache(t, p, "HIT")
	}
}

// `curl -X POST .../_bff/cache/purge -d view=web.home` (or any client that
// sends its parameters as a form body) is refused: the body was ignored
// once, so the purge had no parameters and emptied everything, the
// widening the handler refuses for an empty ?view=.
func TestPurgeWithABodyIsRefused(t *testing.T) {
	s := newStack(t, adminToken)
	fill(t, s, "/web/home/7", "/mobile/home/7")
	r := s.postPurge(t, "", "application/x-www-form-urlencoded", "view=web.home")
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "in the query string") {
		t.Errorf("purge with a body view=web.home: %d %s; want 400", r.status, r.body)
	}
	s.wantCache(t, "/mobile/home/7", "HIT")
	s.wantCache(t, "/web/home/7", "HIT")
}

// With no admin token (the default), the admin listener is on loopback,
// where the operator's browser also runs, and the status page is opened in
// that browser. A cross-site form POST from any page the operator visits
// (a simple request: no preflight) does not purge the cache.
func TestPurgeRefusesCrossSiteRequests(t *testing.T) {
	s := newStack(t, "")
	fill(t, s, "/web/home/7")
	// What a browser sends for <form method=post action=http://127.0.0.1:9090/_bff/cache/purge> on another site.
	r := s.postPurge(t, "", "application/x-www-form-urlencoded", "",
		"Origin", "https://attacker.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate")
	if r.status != http.StatusForbidden {
		t.Errorf("cross-site POST /_bff/cache/purge: %d %s; want it refused (403)", r.status, r.body)
	}
	s.wantCache(t, "/web/home/7", "HIT")
}
