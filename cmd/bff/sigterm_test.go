package main

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

// A second SIGTERM while the process drains (a supervisor that signals the
// process and its group, an operator repeating `kill`) changes nothing:
// the in-flight request is answered and the exit is 0.
func TestSecondSIGTERMDoesNotAbortTheDrain(t *testing.T) {
	block := make(chan struct{})
	arrived := make(chan struct{}, 8)
	f := newFakeUpstreams(t, block, arrived)
	cmd, stderr := startProcess(t, f.env())
	lines := bufio.NewScanner(stderr)
	addr := listenAddr(t, lines)
	got := getInBackground("http://" + addr + "/web/home/3")
	<-arrived // in flight, waiting on an upstream
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	draining := false
	for lines.Scan() {
		if strings.Contains(lines.Text(), `msg="shutting down: finishing in-flight requests"`) {
			draining = true
			break
		}
	}
	if !draining {
		t.Fatal("the process never said it was draining")
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	close(block)
	r := <-got
	err := cmd.Wait()
	if r.err != nil || r.status != http.StatusOK {
		t.Errorf("in-flight request after a second SIGTERM: status %d, error %v; want 200", r.status, r.err)
	}
	if err != nil {
		t.Errorf("exit after a second SIGTERM: %v; want 0", err)
	}
}
