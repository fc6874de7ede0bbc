package chaos

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// trickle sends a 200's headers at once, then its body a byte per 50 ms,
// for as long as the BFF keeps reading.
func trickle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	fmt.Fprint(w, `{"items":[`)
	_ = rc.Flush()
	for wait(r, 50*time.Millisecond) {
		if _, err := w.Write([]byte(" ")); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// bombMembers gzip members of 1 MiB of JSON whitespace each: 512 MiB once
// decompressed, about half a megabyte on the wire, under the 1 MiB limit,
// so only a limit measured after decompression stops it.
const bombMembers = 512

var bomb = sync.OnceValue(func() []byte {
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), 1<<20))
	_ = zw.Close()
	// Concatenated members are one valid gzip stream (RFC 1952 §2.2).
	return bytes.Repeat(member.Bytes(), bombMembers)
})

// gzipBomb answers a 200 whose gzip body inflates to 512 MiB.
func gzipBomb(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Encoding", "gzip")
	_, _ = w.Write(bomb())
}

// deepJSON answers a 200 whose body is 100 000 nested arrays: 200 kB,
// well under the size limit, so only a depth limit stops it.
func deepJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, strings.Repeat("[", 100_000)+strings.Repeat("]", 100_000))
}

// TestHostileBodies: an upstream answers 200 with a body that trickles, a
// gzip bomb, or JSON nested 100 000 deep. Each is bounded in time (the
// view's 1 s deadline plus a margin) and memory (the BFF's peak RSS grows
// by less than 64 MiB while eight bombs of 512 MiB each arrive at once),
// counted as that upstream's failure (outcome timeout or bad_response, and
// a failure in the breaker's counts), and never panics: an optional
// section goes missing, a required one fails the view with 504 or 502.
func TestHostileBodies(t *testing.T) {
	const (
		deadline       = time.Second
		bound          = 3 * time.Second
		parallelBodies = 8
	)
	// Unbounded, 8 bombs would take 4 GiB. A race-built BFF (CHAOS_RACE=1,
	// as in CI) holds several times its memory again in the race detector's
	// shadow memory, so its bound is wider; the plain build's stays 64 MiB.
	maxGrowth := int64(64 << 20)
	if os.Getenv("CHAOS_RACE") == "1" {
		maxGrowth *= 4
	}
	ups := newUpstreams(t)
	cfg := newConfig(t, ups, 0, deadline)
	for _, name := range []string{"users", "recs"} {
		cfg.Upstreams[name].Breaker = neverTrips
		cfg.Upstreams[name].MaxBodyBytes = 1 << 20
	}
	cfg.Log.AccessLog = true // a failed request's line says why
	p := startBFF(t, cfg)
	base := p.baseline()
	for _, body := range []struct {
		name      string
		h         http.HandlerFunc
		outcome   string // bff_upstream_calls_total outcome
		reason    string // Bff-Partial reason when optional
		status    int    // when required
		problem   string
		logDetail string // in the required view's failed requests' access lines
	}{
		{"trickle", trickle, "timeout", "timeout", http.StatusGatewayTimeout, "upstream-timeout", "timeout"},
		{"gzip-bomb", gzipBomb, "bad_response", "error", http.StatusBadGateway, "upstream-error", "response body too large"},
		{"deep-json", deepJSON, "bad_response", "error", http.StatusBadGateway, "upstream-error", "not valid JSON"},
	} {
		for _, up := range []struct {
			f        *fake
			required bool
		}{{ups.recs, false}, {ups.users, true}} {
			t.Run(fmt.Sprintf("%s/%s", body.name, up.f.name), func(t *testing.T) {
				up.f.set(body.h)
				defer up.f.set(nil)
				hwm := p.procStatus("VmHWM")
				calls := p.metrics().sum("bff_upstream_calls_total", "upstream", up.f.name, "outcome", body.outcome)
				failures := p.upstreamStates()[up.f.name].Breaker.TotalFailures
				// The required view's failed requests: not the optional
				// row's partial 200s, whose lines may be flushed late.
				failedLine := []string{`"msg":"request"`, `"status":` + strconv.Itoa(body.status), body.logDetail}
				logged := p.logs.count(failedLine...)
				parallel(parallelBodies, parallelBodies, func(int) {
					r := p.get(context.Background(), fmt.Sprintf("/web/chome/%d", nextID()))
					if r.dur > bound {
						t.Errorf("answered after %s, bound %s (deadline %s)", r.dur, bound, deadline)
					}
					if !up.required {
						if r.status != http.StatusOK || partialReason(r, "recommendations") != body.reason {
							t.Errorf("%v (Bff-Partial %q), want 200 with recommendations;reason=%s", r, r.header.Get("Bff-Partial"), body.reason)
						}
						return
					}
					if r.status != body.status || r.problemType() != "urn:bff:problem:"+body.problem {
						t.Errorf("%v, want %d %s", r, body.status, body.problem)
					}
				})
				if got := p.metrics().sum("bff_upstream_calls_total", "upstream", up.f.name, "outcome", body.outcome) - calls; got != parallelBodies {
					t.Errorf("bff_upstream_calls_total{%s,%s} grew by %v, want %d", up.f.name, body.outcome, got, parallelBodies)
				}
				if got := p.upstreamStates()[up.f.name].Breaker.TotalFailures - failures; got < parallelBodies {
					t.Errorf("breaker counted %d failures, want ≥ %d", got, parallelBodies)
				}
				if up.required {
					// The BFF writes its log in batches.
					eventually(t, 5*time.Second, fmt.Sprintf("%d failed requests logged with %q", parallelBodies, body.logDetail), func() bool {
						return p.logs.count(failedLine...)-logged == parallelBodies
					})
				}
				growth := p.procStatus("VmHWM") - hwm
				if body.name == "gzip-bomb" && growth > maxGrowth {
					t.Errorf("peak RSS grew by %d MiB with %d bombs of %d MiB, want < %d MiB",
						growth>>20, parallelBodies, bombMembers, maxGrowth>>20)
				}
				if !p.running() {
					t.Fatalf("bff exited: %v", p.err)
				}
				t.Logf("%s from %s: %d views answered within %s, counted as %s; peak RSS +%d KiB",
					body.name, up.f.name, parallelBodies, bound, body.outcome, growth>>10)
			})
		}
	}
	p.expectBaseline(base)
}
