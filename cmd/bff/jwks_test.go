package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// The identity provider's key set cannot be read at start: the BFF starts
// anyway (on purpose: its keys may come back), says at warn that jwks_url
// could not be read, since every token is refused meanwhile, and counts
// the failed reads for alerts.
func TestJWKSUnreadableAtStartIsLoggedAndCounted(t *testing.T) {
	var fetched atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetched.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer idp.Close()
	cfg := "clients:\n  web:\n    auth:\n      issuer: https://id.example.com\n      audience: bff-web\n      jwks_url: " + idp.URL + "/jwks.json\n"
	addrs, logs, stop := serveInProcess(t, cfg, map[string]string{"BFF_ADMIN_ADDR": "127.0.0.1:0"})
	resp, err := http.Get("http://" + addrs.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if code := stop(); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, logs.String())
	}
	if fetched.Load() == 0 {
		t.Fatal("the key set was never asked for at start")
	}
	if !regexp.MustCompile(`(?m)^bff_auth_jwks_failures_total\{client="web"\} [1-9]`).Match(metrics) {
		t.Errorf("no failed read counted for client web; the jwks series:\n%s",
			bytes.Join(regexp.MustCompile(`(?m)^.*jwks.*$`).FindAll(metrics, -1), []byte("\n")))
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		l := strings.ToLower(line)
		if (strings.Contains(l, "level=warn") || strings.Contains(l, "level=error")) && strings.Contains(l, "jwks") {
			return
		}
	}
	t.Errorf("jwks_url answered 503 at start and no warn/error line names it; log:\n%s", logs.String())
}
