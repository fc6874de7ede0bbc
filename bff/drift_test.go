package bff_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bffproxy/bff/bff"
)

// driftCounter is a bff.Metrics that counts missing fields.
type driftCounter struct {
	mu      sync.Mutex
	missing map[string]int
}

func (d *driftCounter) View(client, view string) bff.ViewMetrics { return &driftView{d, view} }

type driftView struct {
	d    *driftCounter
	view string
}

func (v *driftView) Request(int, time.Duration, bff.CacheResult, bool) {}
func (v *driftView) Shed()                                             {}
func (v *driftView) MissingField(field string) {
	v.d.mu.Lock()
	v.d.missing[v.view+" "+field]++
	v.d.mu.Unlock()
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A field the users upstream stopped sending is counted on every response
// and logged once per view and field, not silently written as null.
func TestUpstreamDriftIsCountedAndLoggedOnce(t *testing.T) {
	users := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/users/")
		_, _ = io.WriteString(w, fmt.Sprintf(`{"id":%s,"name":"n","avatar_url":"a"}`, id)) // no email any more
	})
	handlers := demoHandlers()
	handlers["users"] = users
	var logs lockedLog
	counts := &driftCounter{missing: map[string]int{}}
	h := newHarness(t, options{handlers: handlers, logger: slog.New(slog.NewTextHandler(&logs, nil)), metrics: counts})
	for id := 1; id <= 3; id++ {
		if w := h.get(t, fmt.Sprintf("/web/home/%d", id)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"email":null`) {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
	}
	h.get(t, "/mobile/home/1") // mobile does not pick email
	counts.mu.Lock()
	defer counts.mu.Unlock()
	if counts.missing["web.home user.email"] != 3 || len(counts.missing) != 1 {
		t.Errorf("missing fields counted %v; want web.home user.email 3 times, nothing else", counts.missing)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if n := strings.Count(logs.b.String(), "field=user.email"); n != 1 {
		t.Errorf("logged %d times; want once:\n%s", n, logs.b.String())
	}
}
