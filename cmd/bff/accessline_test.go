package main

import (
	"net/http"
	"strings"
	"testing"
)

// Every execution's access line says how each call went, a failed one
// above all: which call failed and how, and what became of the others. So
// does a request past the cache (an injected fault).
func TestAccessLineSummarizesCallsOfFailedAndUncachedRuns(t *testing.T) {
	down := downUpstream(t)
	cfg := "fault_injection: true\nupstreams:\n  users:\n    url: " + down + "\n    retry: {max: 0}\n"
	addrs, logs, stop := serveInProcess(t, cfg, nil)
	get := func(path string, header ...string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addrs.Public+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/web/home/7"); code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502 (users answers 500)", code)
	}
	if code := get("/mobile/orders/ord-7-20", "Bff-Fault", "catalog=latency:1ms"); code != http.StatusOK {
		t.Fatalf("faulted request: status %d", code)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, logs.String())
	}
	want := map[string]string{"path=/web/home/7": "upstreams=\"user:users:error:", "path=/mobile/orders/ord-7-20": "products:catalog:ok:"}
	for _, line := range strings.Split(logs.String(), "\n") {
		for path, summary := range want {
			if strings.Contains(line, "msg=request") && strings.Contains(line, path) {
				if !strings.Contains(line, summary) {
					t.Errorf("access line without %s:\n%s", summary, line)
				}
				delete(want, path)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("no access line for %v; log:\n%s", want, logs.String())
	}
}
