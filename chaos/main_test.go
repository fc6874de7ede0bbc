package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

var (
	// bffBinary is the binary TestMain built from the parent module.
	bffBinary string
	// toxi configures the in-process Toxiproxy server.
	toxi *toxiclient.Client
	// full runs the numbers instead of the CI-sized ones.
	full = os.Getenv("CHAOS_FULL") == "1"
)

// size is the CI-sized number of a row, or with CHAOS_FULL=1 the full one.
func size(ci, fullSize int) int {
	if full {
		return fullSize
	}
	return ci
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "bff-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if bffBinary = os.Getenv("CHAOS_BFF"); bffBinary != "" {
		// A binary built elsewhere (a release, or a snapshot while the
		// working tree does not build).
	} else if bffBinary, err = buildBFF(dir); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	stop := startToxiproxy()
	code := m.Run()
	stop()
	if code == 0 {
		// The harness itself must not leak: every upstream, proxy and
		// client connection of every row is closed by now. Toxiproxy
		// leaves a link's goroutines blocked on a channel send when one
		// side of a connection closes in the middle of an answer (a gzip
		// bomb cut off at the size limit): those are its own.
		if err := goleak.Find(
			goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"),
			goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: goroutines left behind:", err)
			return 1
		}
	}
	return code
}

// buildBFF builds ./cmd/bff of the parent module into dir. CHAOS_RACE=1
// builds it with the race detector (slower; the numbers then differ).
func buildBFF(dir string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bff")
	args := []string{"build", "-o", bin}
	if os.Getenv("CHAOS_RACE") == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/bff")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/bff in %s: %v\n%s", root, err, out)
	}
	return bin, nil
}

// repoRoot is the product module: the parent of this package's directory,
// where go test runs it.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := filepath.Dir(wd)
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("the chaos suite runs from chaos/ inside the bff repository: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			if fields[1] != "github.com/bffproxy/bff" {
				return "", fmt.Errorf("%s/go.mod is module %s, not github.com/bffproxy/bff", root, fields[1])
			}
			return root, nil
		}
	}
	return "", errors.New(root + "/go.mod has no module line")
}

// startToxiproxy runs Toxiproxy's API server in this process. Its Listen
// wants a fixed address, so its routes are served on an httptest listener
// (a free loopback port, known before anyone asks). The proxies it creates
// are real TCP listeners; only their control plane shares our process.
func startToxiproxy() (stop func()) {
	// Some toxics log through zerolog's global logger.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	api := httptest.NewServer(srv.Routes())
	toxi = toxiclient.NewClient(api.URL)
	return func() {
		_ = srv.Collection.Clear()
		api.Close()
	}
}

// ensureFiles raises this process's soft limit on open files to at least n
// (the BFF, started later, inherits it), or skips the test if the hard limit
// is lower.
func ensureFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read the open-files limit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("needs %d open files; the hard limit is %d (raise it with ulimit -Hn)", n, lim.Max)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("needs %d open files; raising the soft limit failed: %v", n, err)
	}
}
