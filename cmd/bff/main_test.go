package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain doubles as the bff binary: with BFF_TEST_RUN_MAIN set, the test
// executable runs main, so tests can signal a real process.
func TestMain(m *testing.M) {
	if os.Getenv("BFF_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// fakeUpstreams serve WORKLOAD.md's endpoints with values the demo never
// produces, and count their calls.
type fakeUpstreams struct {
	users, orders, recs *httptest.Server
	calls               atomic.Int64
}

func newFakeUpstreams(t *testing.T, block <-chan struct{}, arrived chan<- struct{}) *fakeUpstreams {
	f := &fakeUpstreams{}
	serve := func(body func(id string) string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.calls.Add(1)
			if arrived != nil {
				select {
				case arrived <- struct{}{}:
				default:
				}
			}
			if block != nil {
				<-block
			}
			id := r.URL.Query().Get("user_id")
			if id == "" {
				id = strings.TrimPrefix(r.URL.Path, "/users/")
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body(id))
		}))
		t.Cleanup(s.Close)
		return s
	}
	f.users = serve(func(id string) string {
		return fmt.Sprintf(`{"id":%s,"name":"Fake %s","email":"f%s@fake.test","avatar_url":"https://fake.test/%s.png","phone":"0","bio":"x"}`, id, id, id, id)
	})
	f.orders = serve(func(id string) string {
		var b strings.Builder
		b.WriteString(`{"orders":[`)
		for i := 20; i >= 1; i-- {
			if i < 20 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":"fake-%s-%d","status":"s%d","total_cents":%d,"currency":"EUR","created_at":"t%d","items":[%s],"shipping":{}}`,
				id, i, i, i*100, i, strings.TrimSuffix(strings.Repeat(`{"sku":"x"},`, i%4), ","))
		}
		b.WriteString(`]}`)
		return b.String()
	})
	f.recs = serve(func(id string) string {
		var b strings.Builder
		b.WriteString(`{"items":[`)
		for i := range 20 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":"r%d","title":"T%d","price_cents":%d,"image_url":"i%d","rating":4.5,"description":"d","tags":[]}`, i, i, i, i)
		}
		b.WriteString(`]}`)
		return b.String()
	})
	return f
}

func (f *fakeUpstreams) env() map[string]string {
	return map[string]string{
		"BFF_UPSTREAM_USERS_URL":  f.users.URL,
		"BFF_UPSTREAM_ORDERS_URL": f.orders.URL,
		"BFF_UPSTREAM_RECS_URL":   f.recs.URL,
		"BFF_ADDR":                "127.0.0.1:0",
		"BFF_ADMIN_ADDR":          "127.0.0.1:0",
		"BFF_LOG_FORMAT":          "text",
	}
}

func TestViewsAreBuiltFromConfiguredUpstreams(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	env := f.env()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan listeners, 1)
	done := make(chan int, 1)
	var logs strings.Builder
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard, &logs, listening) }()
	addr := (<-listening).Public

	want := map[string]string{
		"/web/home/5": `{"user":{"id":5,"name":"Fake 5","email":"f5@fake.test","avatar_url":"https://fake.test/5.png"},` +
			`"orders":[` + fakeOrders(10, true) + `],"recommendations":[` + fakeRecs(10, true) + `]}`,
		"/mobile/home/5": `{"user":{"id":5,"name":"Fake 5","avatar_url":"https://fake.test/5.png"},` +
			`"orders":[` + fakeOrders(3, false) + `],"recommendations":[` + fakeRecs(5, false) + `]}`,
	}
	for path, body := range want {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(got) != body {
			t.Errorf("%s: %d\n got %s\nwant %s", path, resp.StatusCode, got, body)
		}
	}
	if n := f.calls.Load(); n != 6 {
		t.Errorf("configured upstreams got %d calls, want 6", n)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code %d", code)
	}
	// catalog has no URL, so its demo runs; users, orders and recs must not.
	s := logs.String()
	for _, name := range []string{"users", "orders", "recs"} {
		if strings.Contains(s, `msg="demo upstream started (no URL configured)" upstream=`+name+" ") {
			t.Errorf("a demo %s upstream was started:\n%s", name, s)
		}
	}
	if !strings.Contains(s, "upstream=catalog") {
		t.Errorf("expected the catalog demo in the log:\n%s", s)
	}
}

func fakeOrders(n int, web bool) string {
	var parts []string
	for i := 20; i > 20-n; i-- {
		if web {
			parts = append(parts, fmt.Sprintf(`{"id":"fake-5-%d","status":"s%d","total_cents":%d,"created_at":"t%d","item_count":%d}`, i, i, i*100, i, i%4))
		} else {
			parts = append(parts, fmt.Sprintf(`{"id":"fake-5-%d","status":"s%d","total_cents":%d}`, i, i, i*100))
		}
	}
	return strings.Join(parts, ",")
}

func fakeRecs(n int, web bool) string {
	var parts []string
	for i := range n {
		if web {
			parts = append(parts, fmt.Sprintf(`{"id":"r%d","title":"T%d","price_cents":%d,"image_url":"i%d","rating":4.5}`, i, i, i, i))
		} else {
			parts = append(parts, fmt.Sprintf(`{"id":"r%d","title":"T%d","image_url":"i%d"}`, i, i, i))
		}
	}
	return strings.Join(parts, ",")
}

// reply is what a request made in the background got.
type reply struct {
	status int
	body   string
	err    error
}

// getInBackground sends a GET on its own goroutine and delivers its reply.
func getInBackground(url string) <-chan reply {
	got := make(chan reply, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			got <- reply{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- reply{status: resp.StatusCode, body: string(b)}
	}()
	return got
}

// A real process gets SIGTERM while a request is in flight: the request
// finishes, new connections are refused, and the process exits 0.
func TestGracefulShutdownFinishesInFlightRequest(t *testing.T) {
	block := make(chan struct{})
	arrived := make(chan struct{}, 8)
	f := newFakeUpstreams(t, block, arrived)
	cmd, stderr := startProcess(t, f.env())

	lines := bufio.NewScanner(stderr)
	addr := listenAddr(t, lines)
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	got := getInBackground("http://" + addr + "/web/home/3")
	<-arrived // the request is inside the BFF, waiting on an upstream
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once shutdown has begun.
	refused := false
	for range 200 {
		c, err := (&http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr + "/healthz")
		if err != nil {
			refused = true
			break
		}
		c.Body.Close()
		time.Sleep(5 * time.Millisecond)
	}
	if !refused {
		t.Error("the listener still accepted connections after SIGTERM")
	}
	close(block)
	r := <-got
	if r.err != nil || r.status != http.StatusOK || !json.Valid([]byte(r.body)) {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func TestBadConfigFailsStart(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/bff.yaml"
	if err := os.WriteFile(path, []byte("upstreams:\n  users:\n    urll: http://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	code := run(context.Background(), []string{"-config", path}, func(string) string { return "" }, io.Discard, &out, nil)
	if code == 0 || !strings.Contains(out.String(), "urll") {
		t.Errorf("code %d, output %s", code, out.String())
	}
	out.Reset()
	code = run(context.Background(), nil, func(k string) string {
		return map[string]string{"BFF_UPSTREAM_USERS_URL": "ftp://nope", "BFF_ADDR": "127.0.0.1:0"}[k]
	}, io.Discard, &out, nil)
	if code == 0 || !strings.Contains(out.String(), "users") {
		t.Errorf("code %d, output %s", code, out.String())
	}
}

// A views directory adds views and replaces built-in ones by name; changes
// are picked up while serving, and a broken file keeps the previous views.
func TestViewsDirectoryReloads(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(t.TempDir(), "bff.yaml")
	if err := os.WriteFile(conf, []byte("views:\n  dir: "+dir+"\n  poll: 20ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeView := func(name, body string) {
		t.Helper()
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil { // atomic, as an editor or deploy would
			t.Fatal(err)
		}
	}
	profile := func(field string) string {
		return "client: web\nviews:\n  - name: web.profile\n    route: /profile/{id}\n    params: {id: '[0-9]+'}\n" +
			"    calls:\n      user: {upstream: users, path: '/users/{id}'}\n    shape:\n      who: user." + field + "\n"
	}
	writeView("profile.yaml", profile("name"))

	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan listeners, 1)
	done := make(chan int, 1)
	var logs lockedBuffer
	env := map[string]string{"BFF_ADDR": "127.0.0.1:0", "BFF_ADMIN_ADDR": "127.0.0.1:0", "BFF_LOG_FORMAT": "text"}
	go func() {
		done <- run(ctx, []string{"-config", conf}, func(k string) string { return env[k] }, io.Discard, &logs, listening)
	}()
	addr := (<-listening).Public
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	if code, body := get("/web/profile/7"); code != 200 || !strings.HasPrefix(body, `{"who":"`) {
		t.Fatalf("the directory's view: %d %s", code, body)
	}
	writeView("broken.yaml", "views:\n  - name: web.broken\n    rout: /b\n")
	waitFor("the broken file to be reported", func() bool { return strings.Contains(logs.String(), `unknown key \"rout\"`) })
	if code, _ := get("/web/profile/7"); code != 200 {
		t.Errorf("a broken file took the previous views down: %d", code)
	}
	if err := os.Remove(filepath.Join(dir, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	writeView("profile.yaml", profile("email"))
	waitFor("the changed view", func() bool { _, body := get("/web/profile/7"); return strings.Contains(body, "@") })

	// Replacing a built-in view by name.
	writeView("home.yaml", "client: web\nviews:\n  - name: web.home\n    route: /home/{id}\n    params: {id: '[0-9]+'}\n"+
		"    calls:\n      user: {upstream: users, path: '/users/{id}'}\n    shape:\n      id: user.id\n")
	waitFor("the replaced home view", func() bool { _, body := get("/web/home/7"); return body == `{"id":7}` })

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// lockedBuffer is a log sink the test can read while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// bff check and bff views: for frontend teams' CI, without listening or
// starting anything.
func TestCheckAndViewsCommands(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(t.TempDir(), "bff.yaml")
	if err := os.WriteFile(conf, []byte("views: {dir: "+dir+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(string) string { return "" }
	var out, errs strings.Builder
	if code := run(context.Background(), []string{"check", "-config", conf}, env, &out, &errs, nil); code != 0 || !strings.HasPrefix(out.String(), "ok: 4 views") {
		t.Fatalf("check: %d %q %q", code, out.String(), errs.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"views", "-config", conf}, env, &out, &errs, nil); code != 0 ||
		!strings.Contains(out.String(), "GET /web/home/{id}\tweb.home\tcache: public 30s") ||
		!strings.Contains(out.String(), "recommendations  GET recs /recommendations?user_id={id}  optional") {
		t.Fatalf("views: %d\n%s", code, out.String())
	}

	for file, want := range map[string]string{
		"typo.yaml":     `typo.yaml:3: view "web.x": unknown key "rout"`,
		"upstream.yaml": `upstream.yaml:5: view "web.y": calls.u.upstream: upstream "nowhere" has no URL and the demo does not serve it (it serves users, orders, recs, catalog): set upstreams.nowhere.url in the config file or BFF_UPSTREAM_NOWHERE_URL`,
	} {
		body := map[string]string{
			"typo.yaml":     "client: web\nviews:\n  - {name: web.x, rout: /x}\n",
			"upstream.yaml": "client: web\nviews:\n  - name: web.y\n    route: /y\n    calls: {u: {upstream: nowhere, path: /}}\n    shape: {u: u}\n",
		}[file]
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		errs.Reset()
		code := run(context.Background(), []string{"check", "-config", conf}, env, io.Discard, &errs, nil)
		if code == 0 || !strings.Contains(errs.String(), want) {
			t.Errorf("%s: code %d, stderr %q, want %q", file, code, errs.String(), want)
		}
		_ = os.Remove(path)
	}
}

// serveInProcess is start with the defaults here (loopback, no admin
// listener, text log) beside env.
func serveInProcess(t *testing.T, cfg string, env map[string]string) (addrs listeners, logs *lockedBuffer, stop func() int) {
	t.Helper()
	all := map[string]string{"BFF_ADDR": "127.0.0.1:0", "BFF_ADMIN_ADDR": "off", "BFF_LOG_FORMAT": "text"}
	maps.Copy(all, env)
	return start(t, all, cfg)
}

// downUpstream is an upstream that answers every request 500; it closes
// with the test.
func downUpstream(t *testing.T) string {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(down.Close)
	return down.URL
}

// listenAddr reads a started process's log (text format) until it says
// where it listens; lines may be read on after it.
func listenAddr(t *testing.T, lines *bufio.Scanner) string {
	t.Helper()
	for lines.Scan() {
		if _, after, ok := strings.Cut(lines.Text(), `msg="bff listening" addr=`); ok {
			addr, _, _ := strings.Cut(after, " ")
			return addr
		}
	}
	t.Fatal("the process never said where it listens")
	return ""
}

// startProcess runs the test binary as the bff binary (see TestMain) with
// env added and args, and returns it with its stderr; it is killed when
// the test ends.
func startProcess(t *testing.T, env map[string]string, args ...string) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BFF_TEST_RUN_MAIN=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, stderr
}
