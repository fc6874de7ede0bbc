package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestStatusPage loads the admin status page of a real bff binary into
// Debian's headless chromium and checks that it renders every demo upstream
// and home view, refreshes, and writes nothing to the console.
//
// It skips without chromium unless BFF_REQUIRE_BROWSER=1 (as in CI). With
// BFF_SCREENSHOT=FILE it saves a full-page PNG of the page there (a relative
// FILE is relative to cmd/bff).
func TestStatusPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a build, a bff process and a browser")
	}
	chromium := findChromium(t)
	bin := buildBFF(t)
	p := startBFF(t, bin)

	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	paths := []string{"/web/home/7", "/mobile/home/7", "/web/home/8", "/web/orders/ord-7-20", "/web/home/7", "/mobile/home/7"}
	for _, path := range paths {
		get(t.Context(), t, client, "http://"+p.public+path)
	}
	// Light traffic while the page is open, so that the rates it computes
	// from two refreshes have something to show: repeated paths are cache
	// hits, new ids are misses that call the upstreams.
	trafficCtx, stopTraffic := context.WithCancel(t.Context())
	var traffic sync.WaitGroup
	traffic.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-trafficCtx.Done():
				return
			case <-tick.C:
				path := paths[i%len(paths)]
				if i%2 == 1 {
					path = fmt.Sprintf("/%s/home/%d", []string{"web", "mobile"}[i/2%2], 100+i)
				}
				get(trafficCtx, nil, client, "http://"+p.public+path)
			}
		}
	})
	stop := func() { stopTraffic(); traffic.Wait() }
	t.Cleanup(stop) // before the process is stopped: cleanups run last first

	checkStatusPage(t, chromium, "http://"+p.admin+"/_bff/", os.Getenv("BFF_SCREENSHOT"))

	stop()
	if err := p.stop(); err != nil {
		t.Errorf("bff did not exit cleanly on SIGTERM: %v\nlog:\n%s", err, p.log)
	}
}

// findChromium returns the chromium binary, or skips (fails with
// BFF_REQUIRE_BROWSER=1) when there is none.
func findChromium(t *testing.T) string {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath("chromium"); err != nil {
			if os.Getenv("BFF_REQUIRE_BROWSER") == "1" {
				t.Fatal("BFF_REQUIRE_BROWSER=1 but chromium is not installed (apt-get install chromium)")
			}
			t.Skip("chromium is not installed (apt-get install chromium); set BFF_REQUIRE_BROWSER=1 to fail instead")
		}
	}
	return path
}

// buildBFF builds this package's binary into a temporary directory. Under
// -race it builds with -race too: that reuses the packages go test has just
// compiled (a plain build on a cold cache took 90 s, this one 5 s) and puts
// the process under the race detector while the browser polls it.
func buildBFF(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bff")
	args := []string{"build", "-o", bin}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	out, err := exec.CommandContext(t.Context(), "go", append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// bffProcess is a running bff binary and what its log said.
type bffProcess struct {
	cmd           *exec.Cmd
	log           *procLog
	exited        chan struct{} // closed once Wait returned; err is set then
	err           error
	public, admin string
}

// startBFF starts bin on free loopback ports, with no config and an
// environment of PATH and HOME only (so the demo upstreams serve the views),
// and waits for both listeners. The process is stopped when the test ends,
// also when it fails.
func startBFF(t *testing.T, bin string) *bffProcess {
	t.Helper()
	p := &bffProcess{log: newProcLog(), exited: make(chan struct{})}
	cmd := exec.CommandContext(t.Context(), bin, "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// When the test ends before stop (a failure), its context ends: ask the
	// process to shut down as a signal would, and kill it if it lingers.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { <-p.exited })

	const bound = 20 * time.Second
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		public, admin := p.log.addrs()
		if public != "" && admin != "" {
			p.public, p.admin = public, admin
			return p
		}
		select {
		case <-p.log.changed:
		case <-p.exited:
			if public, admin = p.log.addrs(); public == "" || admin == "" {
				t.Fatalf("bff exited (%v) before both listeners were up; log:\n%s", p.err, p.log)
			}
		case <-timer.C:
			t.Fatalf("bff did not log both %q and %q within %s; log so far:\n%s", "bff listening", "admin listening", bound, p.log)
		}
	}
}

// stop sends SIGTERM and waits for the process to exit; it reports a
// non-zero exit.
func (p *bffProcess) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.exited // bounded by WaitDelay once the test's context ends
	return p.err
}

// procLog collects a process's output and picks the listening addresses out
// of its JSON log lines. Writes never block.
type procLog struct {
	mu      sync.Mutex
	all     bytes.Buffer
	line    []byte // an incomplete last line
	public  string
	admin   string
	changed chan struct{} // a token after each write
}

func newProcLog() *procLog { return &procLog{changed: make(chan struct{}, 1)} }

func (l *procLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.all.Write(b)
	l.line = append(l.line, b...)
	for {
		i := bytes.IndexByte(l.line, '\n')
		if i < 0 {
			break
		}
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(l.line[:i], &rec) == nil {
			switch rec.Msg {
			case "bff listening":
				l.public = rec.Addr
			case "admin listening":
				l.admin = rec.Addr
			}
		}
		l.line = append(l.line[:0], l.line[i+1:]...)
	}
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (l *procLog) addrs() (public, admin string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.public, l.admin
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// get fetches url and drops the body. With t set, an error fails the test;
// without, it is ignored (background traffic).
func get(ctx context.Context, t *testing.T, client *http.Client, url string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	if err != nil && t != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// checkStatusPage opens pageURL in headless chromium, waits for the rows of
// the demo's upstreams and home views and for a second refresh, and fails on
// anything the page wrote to the console, an uncaught exception or a failed
// load. With screenshot set, it saves a full-page PNG there.
func checkStatusPage(t *testing.T, chromium, pageURL, screenshot string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc() // waits for the browser to exit
	tab, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()

	var (
		mu       sync.Mutex
		problems []string
		urls     = map[network.RequestID]string{}
	)
	// Listen starts the browser; fn runs in the tab's read loop, so it only
	// records.
	err := chromedp.Listen(tab, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning ||
				ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					if a.Description != "" {
						args = append(args, a.Description)
					} else {
						args = append(args, string(a.Value))
					}
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			problems = append(problems, fmt.Sprintf("exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, text))
		case *log.EventEntryAdded:
			if e := ev.Entry; e.Level == log.EntryLevelError || e.Level == log.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("browser log (%s, %s): %s %s", e.Level, e.Source, e.Text, e.URL))
			}
		case *network.EventRequestWillBeSent:
			urls[ev.RequestID] = ev.Request.URL
		case *network.EventLoadingFailed:
			problems = append(problems, fmt.Sprintf("load failed: %s %s (%s)", ev.Type, urls[ev.RequestID], ev.ErrorText))
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}

	// fail reports what the page shows, which says more than a timeout.
	fail := func(what string, err error) {
		t.Helper()
		text, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%s: %v\nconsole and network problems: %q\npage text:\n%s", what, err, problems, text)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(pageURL)); err != nil {
		fail("loading "+pageURL, err)
	}
	rows := []string{
		`[data-upstream="users"]`, `[data-upstream="orders"]`, `[data-upstream="recs"]`,
		`[data-view="web/home"]`, `[data-view="mobile/home"]`,
	}
	for _, sel := range rows {
		wctx, wcancel := context.WithTimeout(tab, 20*time.Second)
		err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel)))
		wcancel()
		if err != nil {
			fail("waiting for the row "+sel, err)
		}
	}
	// The second successful refresh is the first that computes rates.
	_, err = chromedp.Run(tab, chromedp.Poll[bool](`Number(document.documentElement.dataset.refreshes || 0) >= 2`,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		fail("waiting for a second refresh", err)
	}
	if screenshot != "" {
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", screenshot)
	}
	rate, err := chromedp.Run(tab, chromedp.TextContent(chromedp.CSS(`[data-upstream="users"] .calls-rate`)))
	if err != nil || rate == "" || rate == "\u2013" {
		fail("the users upstream shows no call rate after two refreshes", fmt.Errorf("got %q, %v", rate, err))
	}
	banner, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("banner").hidden ? "" : document.getElementById("banner").innerText`))
	if err != nil || banner != "" {
		fail("the page shows an error", fmt.Errorf("banner %q, %v", banner, err))
	}

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the status page caused %d console or network problem(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
}
