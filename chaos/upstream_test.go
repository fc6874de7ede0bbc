package chaos

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
)

// upstreams are the four upstreams the BFF's views call, each a real HTTP
// server behind its own Toxiproxy proxy.
type upstreams struct {
	users, orders, recs, catalog *fake
	byName                       map[string]*fake
}

// fake is one upstream: it answers in the demo's shapes unless a row gives
// it another behaviour, and counts what reaches it.
type fake struct {
	name  string
	srv   *httptest.Server
	proxy *toxiclient.Proxy
	url   string // through the proxy: what the BFF is given

	conns    atomic.Int64 // TCP connections accepted (the proxy dials one per connection it accepts)
	requests atomic.Int64 // requests received
	nonGET   atomic.Int64 // requests with another method than GET
	active   atomic.Int64 // requests being handled now
	canceled atomic.Int64 // requests whose context ended before the handler was done: the BFF hung up

	behaviour atomic.Pointer[http.HandlerFunc]

	mu   sync.Mutex
	seen map[string]int // X-Request-Id and target → times received
}

// fakeOption adjusts a fake's server before it starts.
type fakeOption func(*httptest.Server)

// noKeepAlive closes the connection after every answer, so each attempt
// the BFF makes is a connection of its own (and a toxic's toxicity, which
// Toxiproxy draws per connection, becomes a per-attempt rate).
func noKeepAlive(s *httptest.Server) { s.Config.SetKeepAlivesEnabled(false) }

var proxySeq atomic.Int64

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func newUpstreams(t *testing.T, opts ...fakeOption) *upstreams {
	t.Helper()
	u := &upstreams{byName: map[string]*fake{}}
	for _, name := range []string{"users", "orders", "recs", "catalog"} {
		u.byName[name] = newFake(t, name, opts...)
	}
	u.users, u.orders, u.recs, u.catalog = u.byName["users"], u.byName["orders"], u.byName["recs"], u.byName["catalog"]
	return u
}

func newFake(t *testing.T, name string, opts ...fakeOption) *fake {
	t.Helper()
	f := &fake{name: name, seen: map[string]int{}}
	f.srv = httptest.NewUnstartedServer(f)
	// Pooled connections end soon after a row, so the BFF's goroutines
	// and fds can be compared with its baseline without waiting 90s. That
	// includes connections that never carried a request: Go's transport
	// pools a dial that finishes after its request was cancelled.
	f.srv.Config.IdleTimeout = 500 * time.Millisecond
	f.srv.Config.ReadHeaderTimeout = time.Second
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	for _, o := range opts {
		o(f.srv)
	}
	f.srv.Start()
	proxyName := fmt.Sprintf("%s-%s-%d", unsafeName.ReplaceAllString(t.Name(), "_"), name, proxySeq.Add(1))
	p, err := toxi.CreateProxy(proxyName, "127.0.0.1:0", f.srv.Listener.Addr().String())
	if err != nil {
		f.srv.Close()
		t.Fatalf("toxiproxy: %v", err)
	}
	f.proxy, f.url = p, "http://"+p.Listen
	t.Cleanup(func() {
		// The proxy first: closing its connections cancels what the
		// server is still handling, so Close does not wait on it.
		if err := p.Delete(); err != nil {
			t.Errorf("toxiproxy: delete %s: %v", proxyName, err)
		}
		f.srv.Close()
	})
	return f
}

// set replaces the fake's behaviour; nil restores the normal answers.
func (f *fake) set(h http.HandlerFunc) {
	if h == nil {
		f.behaviour.Store(nil)
		return
	}
	f.behaviour.Store(&h)
}

// toxic adds a toxic to the fake's proxy ("downstream": upstream to BFF).
func (f *fake) toxic(t *testing.T, name, kind, stream string, toxicity float32, attrs toxiclient.Attributes) {
	t.Helper()
	if _, err := f.proxy.AddToxic(name, kind, stream, toxicity, attrs); err != nil {
		t.Fatalf("toxiproxy: add %s to %s: %v", kind, f.name, err)
	}
}

func (f *fake) removeToxic(t *testing.T, name string) {
	t.Helper()
	if err := f.proxy.RemoveToxic(name); err != nil {
		t.Fatalf("toxiproxy: remove %s from %s: %v", name, f.name, err)
	}
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	f.active.Add(1)
	if r.Method != http.MethodGet {
		f.nonGET.Add(1)
	}
	f.mu.Lock()
	f.seen[r.Header.Get("X-Request-Id")+" "+r.URL.RequestURI()]++
	f.mu.Unlock()
	if h := f.behaviour.Load(); h != nil {
		(*h)(w, r)
	} else {
		answer(w, r)
	}
	if r.Context().Err() != nil {
		f.canceled.Add(1)
	}
	f.active.Add(-1)
}

// duplicates is how many requests repeated an earlier one: same request
// ID (the BFF forwards the client's) and the same target.
func (f *fake) duplicates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.seen {
		n += c - 1
	}
	return n
}

// posts counts the POSTs whose request ID and target came more than once.
func (f *fake) duplicatePosts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, c := range f.seen {
		if strings.HasSuffix(k, "/notes") {
			n += c - 1
		}
	}
	return n
}

// answer is the normal answer, in the demo upstreams' shapes.
func answer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodPost {
		_, _ = io.WriteString(w, `{"ok":true}`)
		return
	}
	uid := r.URL.Query().Get("user_id")
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/users/"):
		id := strings.TrimPrefix(p, "/users/")
		fmt.Fprintf(w, `{"id":%q,"name":"user %s","email":"u%s@example.com","avatar_url":"https://img.example/u/%s.png","bio":"%s"}`,
			id, id, id, id, strings.Repeat("x", 200))
	case p == "/orders":
		fmt.Fprintf(w, `{"orders":[{"id":"ord-%s-2","status":"shipped","total_cents":1250,"currency":"EUR","created_at":"2024-05-02T10:00:00Z","items":[{"sku":"sku-1","name":"mug","qty":1,"price_cents":1250}]},`+
			`{"id":"ord-%s-1","status":"delivered","total_cents":300,"currency":"EUR","created_at":"2024-05-01T10:00:00Z","items":[]}]}`, uid, uid)
	case p == "/recommendations":
		fmt.Fprintf(w, `{"items":[{"id":"rec-%s-1","title":"tea","price_cents":500,"image_url":"https://img.example/r/1.png","rating":4.5},`+
			`{"id":"rec-%s-2","title":"pot","price_cents":2500,"image_url":"https://img.example/r/2.png","rating":4.1}]}`, uid, uid)
	case p == "/products":
		fmt.Fprint(w, `{"products":[]}`)
	default:
		http.NotFound(w, r)
	}
}

// wait blocks until d passes or the BFF hangs up; false if it hung up.
// It never blocks longer than a minute, so no test can hang on it.
func wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(min(d, time.Minute))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// slow answers normally after d, unless the BFF hangs up first.
func slow(d time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if wait(r, d) {
			answer(w, r)
		}
	}
}

// hang never answers: it waits for the BFF to hang up.
func hang(w http.ResponseWriter, r *http.Request) { wait(r, time.Minute) }

// gated answers once gate is closed.
func gated(gate <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate:
			answer(w, r)
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	}
}

// status answers code with the given header pairs and a small JSON body.
func status(code int, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error":%d}`, code)
	}
}
