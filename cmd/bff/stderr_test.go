package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// When the reader of a piped stderr goes away (a log shipper restarting,
// `bff 2>&1 | tee` interrupted), log lines are dropped and counted and the
// process keeps serving: Go's runtime ends a program that writes to a
// broken stderr without handling SIGPIPE.
func TestStderrReaderGoneDoesNotKillTheProcess(t *testing.T) {
	f := newFakeUpstreams(t, nil, nil)
	cmd, stderr := startProcess(t, f.env())
	lines := bufio.NewScanner(stderr)
	addr := listenAddr(t, lines)
	_ = stderr.Close() // the log's reader goes away

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// Every request writes an access-log line; the writer flushes at least
	// every 200 ms, so these requests span several flushes.
	for i := range 40 {
		resp, err := client.Get("http://" + addr + "/web/home/" + strconv.Itoa(i+1))
		if err != nil {
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-exited:
				t.Fatalf("request %d: %v: the bff exited (%v) after its stderr's reader went away; log lines should be dropped and counted instead", i, err, cmd.ProcessState)
			case <-time.After(5 * time.Second):
				t.Fatalf("request %d: %v", i, err)
			}
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIGPIPE is ignored only while serving: a `bff token` whose stdout is a
// pipe nobody reads any more must not exit 0 as if the token had been
// delivered.
func TestTokenToABrokenStdoutDoesNotExitZero(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "bff.yaml")
	body := "clients:\n  web:\n    auth:\n      issuer: https://id.example.com\n      audience: bff-web\n" +
		"      keys:\n        - {kid: demo, alg: HS256, secret: 0123456789abcdef0123456789abcdef}\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close() // the reader is gone before anything is written
	defer w.Close()
	cmd := exec.Command(os.Args[0], "token", "-config", conf, "-sub", "7")
	cmd.Env = append(os.Environ(), "BFF_TEST_RUN_MAIN=1")
	cmd.Stdout = w
	err = cmd.Run()
	if err == nil {
		t.Errorf("bff token with its stdout's reader gone exited 0: the token was written nowhere; want a non-zero exit")
	}
}
