package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func readyz(t *testing.T, admin string) (int, map[string]any) {
	t.Helper()
	code, body := request(t, http.MethodGet, "http://"+admin+"/readyz")
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("readyz body %q: %v", body, err)
	}
	return code, v
}

// Two replicas of the binary configured with BFF_REDIS_URL share hits;
// with Redis killed they go on answering, say so once in the log and in
// /readyz, and stay ready.
func TestReplicasWithRedis(t *testing.T) {
	srv := redistest.Start(t)
	f := newFakeUpstreams(t, nil, nil)
	env := f.env()
	env["BFF_REDIS_URL"] = srv.URL()
	a, _, _ := start(t, env, "")
	b, logs, _ := start(t, env, "")

	if code, _ := request(t, http.MethodGet, "http://"+a.Public+"/web/home/7"); code != http.StatusOK {
		t.Fatalf("a: %d", code)
	}
	calls := f.calls.Load()
	// a writes to Redis in the background: wait for the entry, then ask b.
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer func() { _ = rc.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for len(rc.Keys(context.Background(), "bff:e:*").Val()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a's response never reached redis")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, v := readyz(t, b.Admin)
		if r, _ := v["redis"].(map[string]any); r != nil && r["purges_synced"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b never read the purge log")
		}
	}
	resp, err := http.Get("http://" + b.Public + "/web/home/7")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Server-Timing"), "redis;") || resp.Header.Get("X-Cache") != "HIT" {
		t.Errorf("b: X-Cache %s, Server-Timing %s; want a's response from redis", resp.Header.Get("X-Cache"), resp.Header.Get("Server-Timing"))
	}
	if f.calls.Load() != calls {
		t.Errorf("upstream calls went from %d to %d", calls, f.calls.Load())
	}
	code, v := readyz(t, b.Admin)
	if r, _ := v["redis"].(map[string]any); code != http.StatusOK || r == nil || r["degraded"] != false {
		t.Errorf("readyz with redis up: %d %v", code, v)
	}

	srv.Kill()
	for i := range 30 {
		for _, l := range []listeners{a, b} {
			if code, body := request(t, http.MethodGet, "http://"+l.Public+"/mobile/home/"+string(rune('1'+i%9))); code != http.StatusOK {
				t.Fatalf("with redis down: %d %s", code, body)
			}
		}
	}
	code, v = readyz(t, b.Admin)
	if r, _ := v["redis"].(map[string]any); code != http.StatusOK || r == nil || r["degraded"] != true || r["last_error"] != nil {
		t.Errorf("readyz with redis down: %d %v; want 200 and degraded, without the error (it names the address)", code, v)
	}
	_, status := request(t, http.MethodGet, "http://"+b.Admin+"/_bff/status")
	if !strings.Contains(status, `"last_error":"`) || !strings.Contains(status, `"degraded":true`) {
		t.Errorf("the status endpoint with redis down: %s; want degraded and the last error", status)
	}
	// Logs are flushed a few times a second.
	for end := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "redis is unreachable") && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "redis is unreachable"); n != 1 {
		t.Errorf("the degradation was logged %d times; want once:\n%s", n, logs.String())
	}
}
