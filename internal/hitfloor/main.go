// Command hitfloor is the cache-hit ceiling for bff's design: net/http with
// chi routing (as bff routes views: chi's tree, no request copy), the
// server timeouts bff sets, and the eight headers a bff hit must carry,
// writing fixed bytes and doing nothing else. Against
// ../shared/bench's bare handler (two headers, no router, no write timeout)
// it shows how much of the hit path's distance to bare is fixed by what a
// hit is required to be, before any of bff's own work. See README,
// "Performance".
//
//	curl -s http://127.0.0.1:8080/web/home/7 > /tmp/home7.json   # from a running bff
//	go run ./internal/hitfloor -addr 127.0.0.1:18080 -body /tmp/home7.json
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	bodyFile := flag.String("body", "", "the bytes to answer with (required)")
	headers := flag.Int("headers", 8, "how many of a bff hit's headers to send (2..8)")
	flag.Parse()
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		log.Fatal(err)
	}
	all := [][2]string{
		{"Content-Type", "application/json"},
		{"Content-Length", strconv.Itoa(len(body))},
		{"Cache-Control", "public, max-age=30"},
		{"Etag", `W/"0123456789abcdef"`},
		{"Vary", "Accept-Encoding, Accept-Language"},
		{"X-Cache", "HIT"},
		{"Age", "0"},
		{"X-Content-Type-Options", "nosniff"},
	}
	n := min(max(*headers, 2), len(all))
	keys := make([]string, n)
	values := make([][]string, n)
	for i, kv := range all[:n] {
		keys[i], values[i] = kv[0], []string{kv[1]}
	}
	hit := func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		for i, k := range keys {
			h[k] = values[i]
		}
		_, _ = w.Write(body)
	}
	// Routed as bff routes a view: chi's tree finds the route, and the
	// handler is called with the route context beside the request.
	r := chi.NewRouter()
	r.Get("/web/home/{id}", hit)
	r.Get("/mobile/home/{id}", hit)
	contexts := sync.Pool{New: func() any { return chi.NewRouteContext() }}
	routed := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rctx := contexts.Get().(*chi.Context)
		rctx.Reset()
		path := req.URL.RawPath
		if path == "" {
			path = req.URL.Path
		}
		if r.Find(rctx, req.Method, path) != "" {
			hit(w, req)
		} else {
			r.ServeHTTP(w, req)
		}
		contexts.Put(rctx)
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// bff's defaults: one read deadline per request (header = read
	// timeout), a write deadline, keep-alive.
	srv := &http.Server{Handler: routed, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 32 << 10}
	log.Printf("hitfloor on %s: %d headers, %d-byte body", ln.Addr(), n, len(body))
	log.Fatal(srv.Serve(ln))
}
