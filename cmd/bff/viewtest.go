package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/bff/mobile"
	"github.com/bffproxy/bff/bff/web"
	"github.com/bffproxy/bff/internal/auth"
	"github.com/bffproxy/bff/internal/config"
	"github.com/bffproxy/bff/internal/viewtest"
	"github.com/bffproxy/bff/upstream"
)

// testDir is where a views directory keeps its fixture files. Not beside
// the views: the server reads every *.yaml there as a view file.
const testDir = "tests"

// testViews is `bff test [-config FILE] [DIR...]`: it runs the fixtures of
// the built-in views and those in DIR/tests (DIR: the config's views.dir
// unless given) against the views the server would load from the same
// config and directories, with each upstream's configured client settings.
// It returns 0 when every case passes, 1 when one fails (the differences
// are on stdout), 2 when nothing could run (config, view or fixture files
// broken).
func testViews(ctx context.Context, configPath string, dirs []string, getenv func(string) string, stdout, stderr io.Writer) int {
	failed := func(err error) int {
		fmt.Fprintf(stderr, "bff test: %v\n", err)
		return 2
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return failed(err)
	}
	builtin, err := builtinRoutes()
	if err != nil {
		return failed(err)
	}
	// The clients' settings, as serve applies them, so that the whole set
	// is checked as serve would load it. Cases run with their own verifier;
	// this one only stands in for the client's (no JWKS is fetched).
	standIn, err := standInVerifier()
	if err != nil {
		return failed(err)
	}
	defer standIn.Close()
	if err := applyClients(cfg, builtin, func(_ string, a *config.Auth) (*bff.ClientAuth, error) {
		return &bff.ClientAuth{Verifier: standIn, Default: a.Mode()}, nil
	}); err != nil {
		return failed(err)
	}
	if err := cfg.ApplyEnv(getenv); err != nil {
		return failed(err)
	}
	// As prepare(), but the DIR arguments stand in for views.dir, and
	// several are layered in order.
	if len(dirs) == 0 && cfg.Views.Dir != "" {
		dirs = []string{cfg.Views.Dir}
	}
	sets := builtin
	for _, dir := range dirs {
		if err := fixturesApart(dir); err != nil {
			return failed(err)
		}
		if sets, err = (&viewSet{builtin: sets, dir: dir}).load(); err != nil {
			return failed(err)
		}
	}
	if err := cfg.AddUpstreams(viewUpstreams(sets), getenv); err != nil {
		return failed(err)
	}
	// Each case runs its view alone: that the views load together (routes,
	// names, what mutations invalidate, auth) is checked once, as serve
	// would.
	if _, err := loadAll(cfg, sets, false); err != nil {
		return failed(err)
	}

	files, notes, err := fixtureFiles(builtin, sets, dirs)
	if err != nil {
		return failed(err)
	}
	for _, n := range notes {
		fmt.Fprintln(stdout, n)
	}
	results := viewtest.Run(ctx, viewtest.Config{
		RouteSets: sets,
		Upstream: func(name string) upstream.Config {
			if u := cfg.Upstreams[name]; u != nil {
				return u.ClientConfig(name)
			}
			return (&config.UpstreamConfig{}).ClientConfig(name)
		},
		AuthDefault: func(client string) string {
			if c := cfg.Clients[client]; c != nil && c.Auth != nil {
				return c.Auth.Mode()
			}
			return ""
		},
	}, files)
	if viewtest.Report(stdout, results) > 0 {
		return 1
	}
	return 0
}

// fixtureFiles loads the built-in fixtures, less those of views a
// directory replaces, and each directory's. The notes say what was
// skipped and which views have no tests.
func fixtureFiles(builtin, sets []bff.RouteSet, dirs []string) ([]*viewtest.File, []string, error) {
	sourceOf := func(sets []bff.RouteSet) map[string]string {
		m := map[string]string{}
		for _, rs := range sets {
			for _, v := range rs.Views {
				m[v.Name] = v.Source
			}
		}
		return m
	}
	was, is := sourceOf(builtin), sourceOf(sets)
	var files []*viewtest.File
	var notes []string
	tested := map[string]bool{}
	for _, src := range []struct {
		fsys  fs.FS
		shown string
	}{{web.Tests(), "bff/web"}, {mobile.Tests(), "bff/mobile"}} {
		loaded, err := viewtest.Load(src.fsys, testDir, src.shown)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range loaded {
			if is[f.View] != was[f.View] {
				notes = append(notes, fmt.Sprintf("skip  %s: %s is replaced by %s", f.Name, f.View, is[f.View]))
				continue
			}
			tested[f.View] = true
			files = append(files, f)
		}
	}
	for _, dir := range dirs {
		loaded, err := viewtest.Load(os.DirFS(dir), testDir, dir)
		if err != nil {
			return nil, nil, err
		}
		others, err := yamlFiles(filepath.Join(dir, testDir))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		for _, f := range others {
			if !strings.Contains(filepath.Base(f), ".test.") {
				notes = append(notes, fmt.Sprintf("skip  %s: fixture files are named *.test.yaml", f))
			}
		}
		for _, f := range loaded {
			tested[f.View] = true
		}
		files = append(files, loaded...)
	}
	for _, rs := range sets {
		for _, v := range rs.Views {
			if !tested[v.Name] {
				notes = append(notes, fmt.Sprintf("note  %s has no tests (%s)", v.Name, v.Source))
			}
		}
	}
	return files, notes, nil
}

// fixturesApart refuses fixture files beside the views: the server would
// read them as view files and refuse to start.
func fixturesApart(dir string) error {
	files, err := yamlFiles(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), ".test.") {
			continue
		}
		if filepath.Base(filepath.Clean(dir)) == testDir {
			return fmt.Errorf("%s holds fixtures: pass the views directory (%s), not its %s/", dir, filepath.Dir(filepath.Clean(dir)), testDir)
		}
		return fmt.Errorf("%s: fixture files go in %s: the server reads every *.yaml in %s as a view file",
			f, filepath.Join(dir, testDir), dir)
	}
	return nil
}

// standInVerifier verifies tokens signed with a key nobody holds.
func standInVerifier() (*auth.Verifier, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return auth.New(auth.Config{Issuer: "bff-test", Audience: "bff-test", Keys: []auth.Key{{Alg: "HS256", Secret: secret}}})
}
