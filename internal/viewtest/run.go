package viewtest

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"github.com/bffproxy/bff/internal/auth"
	"github.com/golang-jwt/jwt/v5"
	"github.com/klauspost/compress/zstd"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/config"
	"github.com/bffproxy/bff/upstream"
)

// Config says what the cases run against.
type Config struct {
	// RouteSets hold the views; each file names its view, which must be in
	// one of them.
	RouteSets []bff.RouteSet
	// Upstream returns an upstream's client settings (retries, limits);
	// the base URL is replaced by the case's fixture server. Nil means the
	// settings the binary gives an upstream its config file does not name.
	Upstream func(name string) upstream.Config
	// Parallel bounds the cases run at once. Zero means 8.
	Parallel int
	// AuthDefault returns a client's default auth mode (its config's
	// default_mode), for views that set none. Nil, or "", means none is
	// configured: such views need no token.
	AuthDefault func(client string) string
}

// Result is how one case went.
type Result struct {
	View, Case string
	Source     string // file:line of the case
	// Failures are the differences and unexpected upstream requests, one
	// line each; empty when the case passed.
	Failures []string
}

// Passed reports whether the client got what the case expects.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// Name is view/case, as reports show it.
func (r Result) Name() string { return r.View + "/" + r.Case }

// Run runs every case of files through the real engine and front: one
// httptest server per upstream the view calls, serving the case's answers,
// upstream clients pointing at them, the cache off. Results are in file
// and case order.
func Run(ctx context.Context, cfg Config, files []*File) []Result {
	type job struct {
		f *File
		c *Case
	}
	var jobs []job
	for _, f := range files {
		for _, c := range f.Cases {
			jobs = append(jobs, job{f, c})
		}
	}
	parallel := cfg.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	results := make([]Result, len(jobs))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = runCase(ctx, cfg, j.f, j.c)
		}()
	}
	wg.Wait()
	return results
}

// Report writes one line per case, the failures under each failed one and
// a summary, and returns the number of failed cases:
//
//	ok    web.home/user 7
//	FAIL  web.home/recommendations time out  (bff/web/tests/home.test.yaml:40)
//	      $.orders[2].total_cents: want 100, got 200
func Report(w io.Writer, results []Result) (failed int) {
	for _, r := range results {
		if r.Passed() {
			fmt.Fprintf(w, "ok    %s\n", r.Name())
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL  %s  (%s)\n", r.Name(), r.Source)
		for _, line := range r.Failures {
			fmt.Fprintf(w, "      %s\n", line)
		}
	}
	if failed == 0 {
		fmt.Fprintf(w, "PASS  %d cases\n", len(results))
	} else {
		fmt.Fprintf(w, "FAIL  %d of %d cases\n", failed, len(results))
	}
	return failed
}

func findView(sets []bff.RouteSet, name string) (bff.RouteSet, aggregate.View, bool) {
	for _, rs := range sets {
		for _, v := range rs.Views {
			if v.Name == name {
				return rs, v, true
			}
		}
	}
	return bff.RouteSet{}, aggregate.View{}, false
}

func runCase(ctx context.Context, cfg Config, f *File, c *Case) Result {
	res := Result{View: f.View, Case: c.Name, Source: fmt.Sprintf("%s:%d", f.Name, c.Line)}
	fail := func(format string, args ...any) Result {
		res.Failures = append(res.Failures, fmt.Sprintf(format, args...))
		return res
	}
	if err := ctx.Err(); err != nil {
		return fail("not run: %v", err)
	}
	rs, view, ok := findView(cfg.RouteSets, f.View)
	if !ok {
		return fail("%s:%d: no view named %q", f.Name, f.Line, f.View)
	}
	var called []string // the view's upstreams, in call order
	for _, call := range view.Calls {
		if !contains(called, call.Upstream) {
			called = append(called, call.Upstream)
		}
	}
	answers, msg := merge(f, c, called)
	if msg != "" {
		return fail("%s", msg)
	}
	if d := c.ViewTimeout; d > 0 {
		view.Timeout = d
	} else if d := f.ViewTimeout; d > 0 {
		view.Timeout = d
	}
	timeout := view.Timeout
	if timeout <= 0 {
		timeout = aggregate.DefaultTimeout
	}

	settings := cfg.Upstream
	if settings == nil {
		settings = func(name string) upstream.Config { return (&config.UpstreamConfig{}).ClientConfig(name) }
	}
	servers := make([]*fixtureServer, 0, len(called))
	defer func() {
		for _, s := range servers {
			s.close() // idempotent: normally closed before comparing
		}
	}()
	doers := map[string]aggregate.Doer{}
	forwardsAuth := map[string]bool{}
	for _, name := range called {
		s := newFixtureServer(name, answers[name])
		servers = append(servers, s)
		uc := settings(name)
		uc.Name, uc.BaseURL = name, s.srv.URL
		if holds(answers[name]) {
			uc.Timeout = timeoutCap(uc.Timeout, timeout)
		}
		client, err := upstream.New(uc)
		if err != nil {
			return fail("upstream %s: %v", name, err)
		}
		defer client.CloseIdleConnections()
		doers[name] = client
		forwardsAuth[name] = uc.ForwardAuthorization
	}
	off, err := cache.New(cache.Config{}) // off: every case runs the view
	if err != nil {
		return fail("%v", err)
	}
	defer off.Close()
	// Alone, the views a mutation invalidates are not there to name; with
	// the cache off, dropping them changes nothing a case can see.
	view.Invalidates = nil
	set := bff.RouteSet{Client: rs.Client, Views: []aggregate.View{view}, Shapers: rs.Shapers}
	// A view that looks at tokens trusts the runner's own key, which signs
	// the tokens the cases ask for.
	var signer *tokenSigner
	def := ""
	if cfg.AuthDefault != nil {
		def = cfg.AuthDefault(rs.Client)
	}
	if def != "" || view.Auth.Mode == "optional" || view.Auth.Mode == "required" || len(view.Auth.Scopes) > 0 || c.Request.Auth != nil {
		if signer, err = newTokenSigner(); err != nil {
			return fail("%v", err)
		}
		defer signer.verifier.Close()
		set.Auth = &bff.ClientAuth{Verifier: signer.verifier, Default: cmp.Or(def, "optional")}
	}
	front, err := bff.New(bff.Config{
		Engine:                aggregate.NewEngine(doers),
		Cache:                 off,
		RouteSets:             []bff.RouteSet{set},
		ForwardsAuthorization: func(name string) bool { return forwardsAuth[name] },
		MaxInFlight:           -1,
	})
	if err != nil {
		return fail("the view does not load: %v", err)
	}

	var reqBody io.Reader
	if c.Request.Body != nil {
		reqBody = bytes.NewReader(c.Request.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Request.Method, "http://bff.test"+c.Request.Path, reqBody)
	if err != nil {
		return fail("request: %v", err)
	}
	req.RequestURI = req.URL.RequestURI()
	req.RemoteAddr = "192.0.2.1:1234"
	if c.Request.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.Request.Header {
		req.Header[k] = v
	}
	if c.Request.Auth != nil {
		tok, err := signer.sign(c.Request.Auth)
		if err != nil {
			return fail("token: %v", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	front.ServeHTTP(rec, req)

	// Every call has ended when the view has answered; closing the servers
	// waits for their handlers, so the list of unexpected requests is whole.
	for _, s := range servers {
		s.close()
		res.Failures = append(res.Failures, s.unexpectedRequests()...)
	}
	route := ""
	if routes := front.Routes(); len(routes) == 1 {
		route = routes[0].Method + " " + routes[0].Path
	}
	res.Failures = append(res.Failures, compare(&c.Expect, rec, route)...)
	return res
}

// holds reports whether an answer never comes.
func holds(answers []*Answer) bool {
	for _, a := range answers {
		if a.Timeout {
			return true
		}
	}
	return false
}

// timeoutCap is the client timeout of an upstream that does not answer: a
// quarter of the view's. Left to the view's deadline, the call would end
// only timeout/20 (at most 50ms) before it, and on a busy machine the
// rest of the view can overrun that, turning the partial answer a case
// expects into a 504. A shorter configured timeout is kept.
func timeoutCap(configured, view time.Duration) time.Duration {
	if configured <= 0 {
		configured = 2 * time.Second // upstream.Config's zero value
	}
	return min(configured, view/4)
}

// merge gives each upstream the case's answers and the file's answers to
// requests the case does not answer itself.
func merge(f *File, c *Case, called []string) (map[string][]*Answer, string) {
	check := func(ups map[string][]*Answer, lines map[string]int) string {
		for _, name := range sortedKeys(ups) {
			if !contains(called, name) {
				return fmt.Sprintf("%s:%d: upstreams.%s: view %s does not call upstream %q (it calls %s)",
					f.Name, lines[name], name, f.View, name, strings.Join(called, ", "))
			}
		}
		return ""
	}
	if msg := check(f.Upstreams, f.upLines); msg != "" {
		return nil, msg
	}
	if msg := check(c.Upstreams, c.upLines); msg != "" {
		return nil, msg
	}
	out := map[string][]*Answer{}
	for _, name := range called {
		own := map[string]bool{}
		for _, a := range c.Upstreams[name] {
			own[a.key()] = true
			out[name] = append(out[name], a)
		}
		for _, a := range f.Upstreams[name] {
			if !own[a.key()] {
				out[name] = append(out[name], a)
			}
		}
	}
	return out, ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fixtureServer is one upstream during one case: it answers the requests
// the fixtures foresee and notes every other one.
type fixtureServer struct {
	name    string
	answers []*Answer
	srv     *httptest.Server
	stop    chan struct{} // closed when the case is over: timeouts end
	once    sync.Once

	mu         sync.Mutex
	seen       map[string]bool
	unexpected []string
}

func newFixtureServer(name string, answers []*Answer) *fixtureServer {
	s := &fixtureServer{name: name, answers: answers, stop: make(chan struct{}), seen: map[string]bool{}}
	s.srv = httptest.NewServer(s)
	return s
}

func (s *fixtureServer) close() {
	s.once.Do(func() {
		close(s.stop)
		s.srv.Close()
	})
}

func (s *fixtureServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, why := s.match(r)
	if a == nil {
		s.note(r, why)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound) // not retried, not a breaker failure
		_, _ = io.WriteString(w, `{"error":"no fixture answers this request"}`)
		return
	}
	switch {
	case a.Reset:
		reset(w)
		return
	case a.Timeout:
		// Held until the caller gives up: the view's deadline decides.
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
		return
	case a.Delay > 0:
		t := time.NewTimer(a.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		}
	}
	for k, v := range a.Header {
		w.Header()[k] = v
	}
	if len(a.Body) > 0 && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body)
}

// reset drops the connection without an answer; a zero linger makes the
// close a TCP reset rather than an orderly end.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// match finds the answer for r, or says why none fits: the answers that
// come nearest, or all of them.
func (s *fixtureServer) match(r *http.Request) (*Answer, string) {
	query, _ := url.ParseQuery(r.URL.RawQuery)
	var near []string
	for _, a := range s.answers {
		if a.Method != r.Method || (a.Path != r.URL.Path && a.Path != r.URL.EscapedPath()) {
			continue
		}
		if a.Query.Encode() != query.Encode() {
			near = append(near, fmt.Sprintf("line %d answers %s", a.Line, a.request()))
			continue
		}
		if h := missingHeader(a.RequestHeader, r.Header); h != "" {
			near = append(near, fmt.Sprintf("line %d wants %s", a.Line, h))
			continue
		}
		return a, ""
	}
	if len(near) > 0 {
		return nil, strings.Join(near, "; ")
	}
	if len(s.answers) == 0 {
		return nil, "no answers given for " + s.name
	}
	var all []string
	for _, a := range s.answers {
		all = append(all, a.request())
	}
	return nil, "answers given for " + s.name + ": " + strings.Join(all, ", ")
}

// missingHeader names the first wanted header the request lacks.
func missingHeader(want, got http.Header) string {
	for _, k := range sortedKeys(want) {
		w, g := strings.Join(want[k], ", "), strings.Join(got[k], ", ")
		if w != g {
			if len(got[k]) == 0 {
				return fmt.Sprintf("header %s: %q, the request has none", k, w)
			}
			return fmt.Sprintf("header %s: %q, the request has %q", k, w, g)
		}
	}
	return ""
}

// note records an unexpected request once (retries repeat it).
func (s *fixtureServer) note(r *http.Request, why string) {
	target := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	line := fmt.Sprintf("unexpected upstream request: %s %s %s (%s)", s.name, r.Method, target, why)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.seen[line] {
		s.seen[line] = true
		s.unexpected = append(s.unexpected, line)
	}
}

func (s *fixtureServer) unexpectedRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unexpected
}

// compare lists how the response differs from what the case expects.
// route is the view's, for the hint when the request did not reach it.
func compare(e *Expect, rec *httptest.ResponseRecorder, route string) []string {
	var out []string
	h := rec.Header()
	body := rec.Body.Bytes()
	switch h.Get("Content-Encoding") { // a case may send a browser's Accept-Encoding
	case "gzip":
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			if plain, err := io.ReadAll(zr); err == nil {
				body = plain
			}
		}
	case "zstd":
		if zr, err := zstd.NewReader(nil); err == nil {
			if plain, err := zr.DecodeAll(body, nil); err == nil {
				body = plain
			}
			zr.Close()
		}
	}
	var prob struct{ Type, Detail string }
	isProblem := h.Get("Content-Type") == "application/problem+json" && json.Unmarshal(body, &prob) == nil

	want := e.Status
	if want == 0 && e.Problem == "" {
		want = http.StatusOK
	}
	if want != 0 && rec.Code != want {
		line := fmt.Sprintf("status: want %d, got %d", want, rec.Code)
		if isProblem {
			line += fmt.Sprintf(" (%s: %s)", prob.Type, prob.Detail)
		}
		out = append(out, line)
		switch {
		case isProblem && prob.Type == bff.ProblemNotFound && prob.Detail == "no route for this path":
			out = append(out, "the request path does not match the view's route "+route)
		case isProblem && prob.Type == bff.ProblemUpstreamTimeout && prob.Detail == "the view did not finish in time":
			// Calls end timeout/20 (at most 50ms) before the deadline, a
			// margin a busy machine can overrun.
			out = append(out, "the calls ended too close to the view's deadline to answer: a delay near the view's timeout is at the mercy of the machine's load")
		}
		return out // the rest would compare a different kind of answer
	}
	if e.Problem != "" {
		switch {
		case !isProblem:
			out = append(out, fmt.Sprintf("problem: want %s, got a %s response", e.Problem, h.Get("Content-Type")))
		case prob.Type != e.Problem:
			out = append(out, fmt.Sprintf("problem: want %s, got %s (%s)", e.Problem, prob.Type, prob.Detail))
		}
	}
	out = append(out, header(bff.PartialHeader, e.Partial, h)...)
	for _, hw := range e.Header {
		out = append(out, header(hw.Name, hw.Value, h)...)
	}
	if e.body == nil {
		return out
	}
	got, err := parseJSON(body)
	if err != nil {
		snippet := string(body)
		if len(snippet) > 80 {
			snippet = snippet[:77] + "..."
		}
		return append(out, fmt.Sprintf("body: not JSON (%v): %q", err, snippet))
	}
	var d differ
	d.diff("$", e.body, got)
	out = append(out, d.lines...)
	if d.more > 0 {
		out = append(out, fmt.Sprintf("… and %d more differences", d.more))
	}
	return out
}

// header compares one header; a nil want means it must be absent.
func header(name string, want *string, h http.Header) []string {
	values, has := h[name]
	got := strings.Join(values, ", ")
	switch {
	case want == nil && has:
		return []string{fmt.Sprintf("%s: want none, got %q", name, got)}
	case want != nil && !has:
		return []string{fmt.Sprintf("%s: want %q, got none", name, *want)}
	case want != nil && got != *want:
		return []string{fmt.Sprintf("%s: want %q, got %q", name, *want, got)}
	}
	return nil
}

// tokenSigner holds a key made for one case: tokens it signs verify with
// the verifier, and nothing else does.
type tokenSigner struct {
	secret   []byte
	verifier *auth.Verifier
}

const testIssuer, testAudience = "bff-test", "bff-test"

func newTokenSigner() (*tokenSigner, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	v, err := auth.New(auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.Key{{Alg: "HS256", Secret: secret}}})
	if err != nil {
		return nil, err
	}
	return &tokenSigner{secret: secret, verifier: v}, nil
}

func (s *tokenSigner) sign(t *Token) (string, error) {
	claims := jwt.MapClaims{"sub": t.Subject, "iss": testIssuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()}
	if t.Scope != "" {
		claims["scope"] = t.Scope
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
}
