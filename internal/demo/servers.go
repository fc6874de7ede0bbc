package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Servers are running demo upstreams on loopback.
type Servers struct {
	byName map[string]*server

	closeOnce sync.Once
	closeErr  error
}

type server struct {
	name   string
	url    string
	srv    *http.Server
	served chan error // receives Serve's result
}

// Start listens on 127.0.0.1:0 for each named upstream and serves it. It
// fails for an unknown or repeated name, or when a listener cannot be
// opened; then the upstreams already started are closed again.
func Start(names []string) (*Servers, error) {
	s := &Servers{byName: make(map[string]*server, len(names))}
	for _, name := range names {
		if err := s.start(name); err != nil {
			s.closeNow()
			return nil, err
		}
	}
	return s, nil
}

func (s *Servers) start(name string) error {
	h, ok := Handler(name)
	if !ok {
		return fmt.Errorf("demo: unknown upstream %q", name)
	}
	if _, dup := s.byName[name]; dup {
		return fmt.Errorf("demo: upstream %q listed twice", name)
	}
	return s.serve(name, h)
}

// serve starts h on a new loopback listener under name.
func (s *Servers) serve(name string, h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: listen for %s: %w", name, err)
	}
	sv := &server{
		name: name,
		url:  "http://" + ln.Addr().String(),
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       90 * time.Second,
			MaxHeaderBytes:    64 << 10,
			// A library does not print: drop the server's own log lines
			// (accept errors, bad requests).
			ErrorLog: log.New(io.Discard, "", 0),
		},
		served: make(chan error, 1),
	}
	go func() {
		sv.served <- sv.srv.Serve(ln)
	}()
	s.byName[name] = sv
	return nil
}

// URL returns the base URL (e.g. "http://127.0.0.1:40123") of a started
// upstream, or "" if name was not started.
func (s *Servers) URL(name string) string {
	if sv, ok := s.byName[name]; ok {
		return sv.url
	}
	return ""
}

// Count is how many demo upstreams are serving.
func (s *Servers) Count() int { return len(s.byName) }

// Close shuts all servers down: gracefully until ctx is done, then by
// closing the remaining connections. It returns once every server has
// stopped; the error reports a shutdown cut short by ctx or a server that
// had failed. Later calls return the first call's result.
func (s *Servers) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		errs := make([]error, 0, len(s.byName))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, sv := range s.byName {
			wg.Go(func() {
				err := sv.shutdown(ctx)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			})
		}
		wg.Wait()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// closeNow stops everything at once; for Start's failure path.
func (s *Servers) closeNow() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.Close(ctx)
}

func (sv *server) shutdown(ctx context.Context) error {
	var errs []error
	if err := sv.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("demo: shut down %s: %w", sv.name, err))
		if err := sv.srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("demo: close %s: %w", sv.name, err))
		}
	}
	if err := <-sv.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("demo: serve %s: %w", sv.name, err))
	}
	return errors.Join(errs...)
}
