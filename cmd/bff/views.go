package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/aggregate/viewfile"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/internal/telemetry"
)

// viewSet is where the served views come from: the built-in route sets,
// then the *.yaml files of a directory, which add views or replace
// built-in ones by name.
type viewSet struct {
	builtin []bff.RouteSet
	dir     string
	// loaded is the directory's stamp taken just before the last load, so
	// a change made while the server was starting is not missed.
	loaded string
}

// load reads the directory afresh and returns the route sets to serve.
func (s *viewSet) load() ([]bff.RouteSet, error) {
	s.loaded = s.stamp()
	sets := make([]bff.RouteSet, len(s.builtin))
	for i, rs := range s.builtin {
		sets[i] = rs
		sets[i].Views = append([]aggregate.View(nil), rs.Views...)
	}
	if s.dir == "" {
		return sets, nil
	}
	files, err := s.files()
	if err != nil {
		return nil, err
	}
	fromDir := map[string]string{} // view name -> file
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("views: %w", err)
		}
		entries, err := viewfile.ParseEntries(file, data)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			name := e.View.Name
			if prev, dup := fromDir[name]; dup {
				return nil, fmt.Errorf("%s: view %q is also defined in %s", e.View.Source, name, prev)
			}
			fromDir[name] = e.View.Source
			target := -1
			var clients []string
			for i := range sets {
				clients = append(clients, sets[i].Client)
				if sets[i].Client == e.Client {
					target = i
				}
				// A view of the same name, wherever it was, is replaced.
				kept := sets[i].Views[:0]
				for _, v := range sets[i].Views {
					if v.Name != name {
						kept = append(kept, v)
					}
				}
				sets[i].Views = kept
			}
			if target < 0 {
				return nil, fmt.Errorf("%s: view %q: client %q is not one of %s (set `client:` in the file or the view)",
					e.View.Source, name, e.Client, strings.Join(clients, ", "))
			}
			sets[target].Views = append(sets[target].Views, e.View)
		}
	}
	return sets, nil
}

func (s *viewSet) files() ([]string, error) {
	files, err := yamlFiles(s.dir)
	if err != nil {
		return nil, fmt.Errorf("views: %w", err)
	}
	return files, nil
}

// yamlFiles lists the *.yaml and *.yml files in dir, sorted. Listed, not
// globbed: a glob takes a directory it may not read, or a file, for an
// empty directory, and what it holds would silently go.
func yamlFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

// stamp changes when a view file, a fixture or a body file a fixture names
// is added, removed or edited (fixtures give the served OpenAPI documents
// their types and examples): it hashes the contents (files are small),
// since size and time can stay the same. A file or folder below tests/
// that cannot be read changes the stamp too, with its error.
func (s *viewSet) stamp() string {
	if s.dir == "" {
		return ""
	}
	files, err := s.files()
	if err != nil {
		return "error: " + err.Error()
	}
	_ = filepath.WalkDir(filepath.Join(s.dir, testDir), func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil && errors.Is(err, fs.ErrNotExist):
		case err != nil || !d.IsDir():
			files = append(files, path) // an error is hashed when it is read again below
		}
		return nil
	})
	h := fnv.New64a()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(h, "%s unreadable %v\n", f, err)
			continue
		}
		fmt.Fprintf(h, "%s %d\n", f, len(data))
		h.Write(data)
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

// watchViews reloads the views on a signal and when the directory changes.
// A set that does not load keeps the previous views serving; one that does
// is also handed to loaded, if set. Each reload is counted in metrics.
func watchViews(ctx context.Context, s *viewSet, front *bff.Front, log *slog.Logger, metrics *telemetry.Metrics, hup <-chan os.Signal,
	poll time.Duration, loaded func([]bff.RouteSet)) {
	reload := func(cause string) {
		sets, err := s.load()
		if err == nil {
			err = front.Load(sets)
		}
		metrics.ViewsReloaded(err == nil)
		if err != nil {
			log.Error("views not reloaded; the previous views keep serving", "cause", cause, "error", err)
			return
		}
		if loaded != nil {
			loaded(sets)
		}
		log.Info("views reloaded", "cause", cause, "views", len(front.Routes()))
	}
	settle := settling{last: s.loaded}
	var tick <-chan time.Time
	if s.dir != "" {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reload("signal")
			settle = settling{last: s.loaded}
		case <-tick:
			if settle.ready(s.stamp()) {
				reload("files changed")
				settle = settling{last: s.loaded}
			}
		}
	}
}

// settling tells when a changed directory is ready to load: once it has
// held still for one poll. A file caught half-written (a copy, an editor
// that does not rename) can be valid YAML with views missing; the next
// poll sees it grow and waits again.
type settling struct {
	last    string // the stamp of the views loaded
	pending string // a changed stamp seen at the previous poll
}

func (s *settling) ready(stamp string) bool {
	switch {
	case stamp == s.last:
		s.pending = ""
		return false
	case stamp != s.pending:
		s.pending = stamp
		return false
	}
	return true
}
