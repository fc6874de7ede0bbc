package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
	"github.com/bffproxy/bff/bff/mobile"
	"github.com/bffproxy/bff/bff/web"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/internal/admin"
	"github.com/bffproxy/bff/internal/auth"
	"github.com/bffproxy/bff/internal/config"
	"github.com/bffproxy/bff/internal/demo"
	"github.com/bffproxy/bff/internal/faults"
	"github.com/bffproxy/bff/internal/openapi"
	"github.com/bffproxy/bff/internal/telemetry"
	"github.com/bffproxy/bff/internal/viewtest"
	"github.com/bffproxy/bff/upstream"
	"github.com/sony/gobreaker/v2"
)

// earlyHUP receives SIGHUP from the first moment of main: until a handler
// is installed, the signal's default action ends the process, and a
// reload asked for while the binary starts (a JWKS fetch can take
// seconds) must be a reload once it runs, not its death.
var earlyHUP chan os.Signal

func main() {
	earlyHUP = make(chan os.Signal, 1)
	signal.Notify(earlyHUP, syscall.SIGHUP)
	tuneGC(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		// A second SIGINT (Ctrl-C again) kills at once, as without a
		// handler. A repeated SIGTERM does not cut the drain short: process
		// managers repeat it, and send SIGKILL when they mean it.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM) // held, never read
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// listeners are the bound addresses; Admin is empty when it is off.
type listeners struct{ Public, Admin string }

// run is main without the process: it returns the exit code. listening, if
// set, receives the bound addresses once the servers accept connections.
//
//	bff [-addr ADDR] [-admin-addr ADDR] [-config FILE]    serve
//	bff check [-config FILE]           validate config and views, exit non-zero on a problem
//	bff views [-config FILE]           list every route, its calls and cache policy
//	bff test [-config FILE] [DIR...]   run the views' fixture tests (0 pass, 1 fail, 2 cannot run)
//	bff token -config FILE -sub ID     mint a token with a client's HMAC key (demo and tests)
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, listening chan<- listeners) int {
	if len(args) > 0 && args[0] == "token" {
		return mintToken(args[1:], getenv, stdout, stderr)
	}
	command := "serve"
	if len(args) > 0 && (args[0] == "check" || args[0] == "views" || args[0] == "test") {
		command, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("bff "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "listen address (env BFF_ADDR, default 127.0.0.1:8080)")
	adminAddr := fs.String("admin-addr", "", `admin listener: metrics, health, pprof, status page (env BFF_ADMIN_ADDR, default 127.0.0.1:9090, "off" for none)`)
	configPath := fs.String("config", "", "YAML config file (optional; see README)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if command == "test" {
		return testViews(ctx, *configPath, fs.Args(), getenv, stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bff: unexpected argument %q (commands: check, views, test, token)\n", fs.Arg(0))
		return 2
	}
	if command != "serve" {
		if err := inspect(command, *configPath, *addr, *adminAddr, getenv, stdout); err != nil {
			fmt.Fprintf(stderr, "bff %s: %v\n", command, err)
			return 1
		}
		return 0
	}
	// A log reader that went away (a shipper restarting, a pipe closed)
	// makes writes to stderr fail with EPIPE, which the log writer counts
	// as dropped lines; unhandled, SIGPIPE would end the server. (The
	// other commands keep the default: their output lost is a failure.)
	signal.Ignore(syscall.SIGPIPE)
	out := newLogWriter(stderr, defaultLogBuffering)
	// Runs last: every line logged during the stop is written. Its error (the
	// output stuck past CloseWait) has nowhere left to be reported.
	defer out.Close()
	code, err := serve(ctx, *configPath, *addr, *adminAddr, getenv, out, listening)
	if err != nil {
		fmt.Fprintf(out, "bff: %v\n", err)
	}
	return code
}

// prepare reads the config and every view, and settles which upstreams
// exist: those configured and those the views name.
func prepare(configPath string, getenv func(string) string) (*config.Config, *viewSet, []bff.RouteSet, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, nil, nil, err
	}
	builtin, err := builtinRoutes()
	if err != nil {
		return nil, nil, nil, err
	}
	verifier := func(name string, a *config.Auth) (*bff.ClientAuth, error) { return clientAuth(name, a, getenv) }
	if err := applyClients(cfg, builtin, verifier); err != nil {
		closeAuth(builtin)
		return nil, nil, nil, err
	}
	fail := func(err error) (*config.Config, *viewSet, []bff.RouteSet, error) {
		closeAuth(builtin) // the verifiers' refreshes would outlive a failed start
		return nil, nil, nil, err
	}
	if err := cfg.ApplyEnv(getenv); err != nil {
		return fail(err)
	}
	views := &viewSet{builtin: builtin, dir: cfg.Views.Dir}
	sets, err := views.load()
	if err != nil {
		return fail(err)
	}
	if err := cfg.AddUpstreams(viewUpstreams(sets), getenv); err != nil {
		return fail(err)
	}
	return cfg, views, sets, nil
}

// inspect validates everything serve would, without listening or starting
// demo upstreams, and for "views" lists the routes.
func inspect(command, configPath, addrFlag, adminFlag string, getenv func(string) string, stdout io.Writer) error {
	cfg, _, sets, err := prepare(configPath, getenv)
	if err != nil {
		return err
	}
	defer closeAuth(sets)
	if err := cfg.ApplyAddrFlags(addrFlag, adminFlag); err != nil {
		return err
	}
	if err := telemetry.CheckEndpoint(cfg.Tracing.Endpoint); err != nil {
		return fmt.Errorf("config: %w", err) // what serve would refuse at start
	}
	front, err := loadAll(cfg, sets, true)
	if err != nil {
		return err
	}
	routes := front.Routes()
	if command == "check" {
		fmt.Fprintf(stdout, "ok: %d views, %d upstreams\n", len(routes), len(cfg.UpstreamNames()))
		return nil
	}
	for _, r := range routes {
		cachePolicy := "not cached"
		if r.Cache.TTL > 0 {
			cachePolicy = fmt.Sprintf("%s %s", r.Cache.Scope, r.Cache.TTL)
		}
		fmt.Fprintf(stdout, "%s %s\t%s\tcache: %s", r.Method, r.Path, r.View, cachePolicy)
		if r.Source != "" {
			fmt.Fprintf(stdout, "\t(%s)", r.Source)
		}
		fmt.Fprintln(stdout)
		for _, c := range r.Calls {
			kind := "required"
			if c.Optional {
				kind = "optional"
			}
			q := ""
			if c.Query != "" {
				q = "?" + c.Query
			}
			fmt.Fprintf(stdout, "    %-16s %s %s %s%s  %s\n", c.Name, c.Method, c.Upstream, c.Path, q, kind)
		}
	}
	return nil
}

// loadAll builds the front serve would over every view, with upstream
// clients that call nothing: whether the views load together (names,
// routes, invalidates, auth). With needURLs, an upstream neither configured
// nor served by the demo is an error.
func loadAll(cfg *config.Config, sets []bff.RouteSet, needURLs bool) (*bff.Front, error) {
	doers := map[string]aggregate.Doer{}
	forwardsAuth := map[string]bool{}
	for _, name := range cfg.UpstreamNames() {
		uc := cfg.Upstreams[name].ClientConfig(name)
		if uc.BaseURL == "" {
			if needURLs && !slices.Contains(demo.Names(), name) {
				return nil, missingURL(name, sets)
			}
			uc.BaseURL = "http://127.0.0.1:1" // nothing is called here
		}
		c, err := upstream.New(uc)
		if err != nil {
			return nil, err
		}
		doers[name] = c
		forwardsAuth[name] = uc.ForwardAuthorization
	}
	off, err := cache.New(cache.Config{})
	if err != nil {
		return nil, err
	}
	return bff.New(bff.Config{
		Engine: aggregate.NewEngine(doers), Cache: off, RouteSets: sets,
		ForwardsAuthorization: func(name string) bool { return forwardsAuth[name] },
		TrustedProxies:        cfg.Server.TrustedProxies,
	})
}

// cutOffGrace is how long, past shutdown_timeout, the requests cut off are
// given to write their 503.
const cutOffGrace = 2 * time.Second

func serve(ctx context.Context, configPath, addrFlag, adminFlag string, getenv func(string) string, out *logWriter, listening chan<- listeners) (int, error) {
	started := time.Now()
	cfg, views, routeSets, err := prepare(configPath, getenv)
	if err != nil {
		return 1, err
	}
	defer closeAuth(views.builtin)
	if err := cfg.ApplyAddrFlags(addrFlag, adminFlag); err != nil {
		return 1, err
	}
	log := newLogger(cfg.Log, out)
	metrics := telemetry.New()
	for _, rs := range views.builtin {
		if rs.Auth != nil && rs.Auth.Verifier != nil {
			client := rs.Client
			failed := metrics.JWKSWatched(client)
			rs.Auth.Verifier.ReportJWKSErrors(func(err error) {
				failed()
				log.Warn("auth: jwks_url could not be read: tokens signed with keys not yet known are refused (401)",
					"client", client, "error", err)
			})
		}
	}
	tc := telemetry.TracingConfig{
		Endpoint: cfg.Tracing.Endpoint, SampleRatio: cfg.Tracing.SampleRatio, ServiceName: cfg.Tracing.ServiceName,
	}
	tracer, err := telemetry.NewTracer(ctx, tc)
	if err != nil {
		return 1, err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tracer.Shutdown(fctx); err != nil {
			log.Warn("tracing: spans lost at exit", "error", err)
		}
	}()
	if tracer != nil {
		log.Info("tracing on", "endpoint", cfg.Tracing.Endpoint, "sample_ratio", tc.Ratio())
	}

	demos, err := startDemos(cfg, routeSets, log)
	if err != nil {
		return 1, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = demos.Close(sctx)
	}()

	// Fault injection is for trying things out: on by default only when
	// nothing real is behind the BFF.
	faultInjection := demos.Count() == len(cfg.Upstreams)
	if cfg.FaultInjection != nil {
		faultInjection = *cfg.FaultInjection
	}
	if faultInjection {
		log.Info("fault injection on: requests may carry "+faults.Header+" (e.g. recs=timeout, users=503); set fault_injection: false to refuse it",
			"example", faults.Header+": recs=timeout")
	}

	clients := map[string]aggregate.Doer{}
	forwardsAuth := map[string]bool{}
	var adminUpstreams []admin.Upstream
	for _, name := range cfg.UpstreamNames() {
		uc := cfg.Upstreams[name].ClientConfig(name)
		rec := metrics.Upstream(name)
		uc.Observer = rec
		uc.WrapTransport = tracer.Transport(name)
		uc.OnStateChange = func(up string, from, to gobreaker.State) {
			rec.BreakerChanged(from, to)
			log.Warn("circuit breaker changed state", "upstream", up, "from", from.String(), "to", to.String())
		}
		c, err := upstream.New(uc)
		if err != nil {
			return 1, err
		}
		defer c.CloseIdleConnections()
		rec.Attach(c, uc.BaseURL)
		clients[name] = c
		if faultInjection {
			clients[name] = faults.Wrap(name, c)
		}
		forwardsAuth[name] = uc.ForwardAuthorization
		adminUpstreams = append(adminUpstreams, admin.Upstream{Name: name, URL: uc.BaseURL, Client: c})
	}

	cacheBytes := cfg.CacheMaxBytes(cache.DefaultMaxBytes)
	respCache, err := cache.New(cache.Config{MaxBytes: cacheBytes})
	if err != nil {
		return 1, err
	}
	if gcTuned {
		defer startHeapFloor(heapFloorFor(cacheBytes), gcPercent)()
	}
	closeCache := true // unless executions are still running at exit
	defer func() {
		if closeCache {
			respCache.Close()
		}
	}()
	if err := metrics.WatchCache(respCache); err != nil {
		return 1, err
	}
	if err := metrics.WatchLog(out.Dropped); err != nil {
		return 1, err
	}
	rdb, tier, closeShared, err := sharedTier(cfg.Cache.Redis, respCache, metrics, log)
	if err != nil {
		return 1, err
	}
	defer closeShared() // after the executions have drained: they may still write

	var ready, draining atomic.Bool
	front, err := bff.New(bff.Config{
		Engine:                aggregate.NewEngine(clients),
		Cache:                 respCache,
		Shared:                tier,
		SharedLimits:          sharedLimits(cfg.Cache.Redis, rdb),
		Logger:                log,
		AccessLog:             accessLogWriter(cfg, out),
		AccessLogLevel:        cfg.Log.SlogLevel(),
		AccessLogFormat:       accessLogFormat(cfg),
		RouteSets:             routeSets,
		ForwardsAuthorization: func(name string) bool { return forwardsAuth[name] },
		Ready:                 ready.Load,
		PartialTTL:            cfg.Cache.PartialTTL,
		MaxURLBytes:           cfg.Server.MaxURLBytes,
		Metrics:               metrics,
		Tracing:               tracer != nil,
		MaxInFlight:           cfg.Server.MaxInFlight,
		FaultInjection:        faultInjection,
		TrustedProxies:        cfg.Server.TrustedProxies,
	})
	if err != nil {
		return 1, err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return 1, fmt.Errorf("listen: %w", err)
	}
	adminSrv, adminAddr, err := startAdmin(cfg, admin.Config{
		Metrics: metrics, Front: front, Cache: respCache, Upstreams: adminUpstreams, Token: cfg.Admin.Token, Redis: rdb, Shared: tier,
		Ready: ready.Load, Draining: draining.Load, Started: started, Version: version(),
	}, log)
	if err != nil {
		_ = ln.Close()
		return 1, err
	}
	if adminSrv != nil {
		// Last to close: /readyz keeps saying "draining" while requests finish.
		defer func() {
			actx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = adminSrv.Shutdown(actx)
		}()
	}
	// Requests run on a context of their own, canceled only when a shutdown
	// runs out of time: http.Server.Shutdown does not cancel them.
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	// /{client}/openapi.json documents each client's views as they are now.
	var docs atomic.Pointer[openapi.Options]
	docs.Store(docOptions(views, routeSets, log))
	public := openapi.MountFunc(front, front.Routes, func() openapi.Options { return *docs.Load() })
	srv := newServer(cfg.Server, tracer.Handler(public), log)
	srv.BaseContext = func(net.Listener) context.Context { return reqCtx }
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	ready.Store(true)

	hup := earlyHUP
	if hup == nil { // run without main, as tests do
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	watchCtx, stopWatching := context.WithCancel(ctx)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		watchViews(watchCtx, views, front, log, metrics, hup, cfg.Views.Poll, func(sets []bff.RouteSet) {
			docs.Store(docOptions(views, sets, log))
		})
	}()
	defer func() { stopWatching(); <-watching }()

	base := "http://" + ln.Addr().String()
	log.Info("bff listening", "addr", ln.Addr().String(),
		"try", []string{base + "/web/home/7", base + "/mobile/home/7", base + "/web/orders/ord-7-20", base + "/web/openapi.json"},
		"cache_max_bytes", cacheBytes)
	if listening != nil {
		listening <- listeners{Public: ln.Addr().String(), Admin: adminAddr}
	}

	select {
	case err := <-serveErr:
		return 1, fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Not ready from the first moment of shutdown, while still serving.
	draining.Store(true)
	ready.Store(false)
	timeout := cfg.Server.ShutdownTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	if d := cfg.Server.ShutdownDelay; d > 0 {
		log.Info("shutting down: not ready, still serving while load balancers notice", "delay", d.String())
		time.Sleep(d)
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("in-flight requests did not finish in time; closing", "error", err)
		front.Abort()
		cancelRequests()
		// The cut-off handlers answer 503 shutting-down and close their
		// connections: a moment for that, so that clients (a POST above
		// all) can tell a shutdown from a crash.
		gctx, gcancel := context.WithTimeout(context.Background(), cutOffGrace)
		_ = srv.Shutdown(gctx)
		gcancel()
		_ = srv.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return 1, fmt.Errorf("serve: %w", err)
	}
	// Executions nobody waits for any more may still be storing results.
	if err := front.Drain(sctx); err != nil {
		closeCache = false
		log.Warn("leaving unfinished view executions behind", "error", err)
	}
	log.Info("stopped", "coalesced_requests", front.Coalesced(), "log_lines_dropped", out.Dropped())
	return 0, nil
}

// docOptions gives the OpenAPI documents the views' test fixtures (the
// built-in ones and those of the views directory) as examples, which refine
// the types of values copied from upstreams.
func docOptions(views *viewSet, sets []bff.RouteSet, log *slog.Logger) *openapi.Options {
	opts := &openapi.Options{Version: version(), ExamplesFor: map[string]string{}}
	var dirs []string
	if views.dir != "" {
		dirs = []string{views.dir}
	}
	files, _, err := fixtureFiles(views.builtin, sets, dirs)
	if err != nil && dirs != nil {
		log.Warn("openapi: the views directory's fixtures not read; examples from the built-in ones only", "error", err)
		files, _, err = fixtureFiles(views.builtin, sets, nil)
	}
	if err != nil {
		log.Warn("openapi: fixtures not read; documents without examples", "error", err)
		return opts
	}
	opts.Examples = viewtest.Examples(files)
	for _, rs := range sets {
		for _, v := range rs.Views {
			if _, ok := opts.Examples[v.Name]; ok {
				opts.ExamplesFor[v.Name] = v.Source
			}
		}
	}
	return opts
}

// startAdmin listens on the admin address unless it is off.
func startAdmin(cfg *config.Config, ac admin.Config, log *slog.Logger) (*http.Server, string, error) {
	if cfg.Admin.Addr == config.AdminOff {
		return nil, "", nil
	}
	ln, err := net.Listen("tcp", cfg.Admin.Addr)
	if err != nil {
		return nil, "", fmt.Errorf("admin listener: %w", err)
	}
	srv := &http.Server{
		Handler:           admin.New(ac),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// pprof's CPU profile and trace run up to the seconds asked for.
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 32 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { _ = srv.Serve(ln) }()
	addr := ln.Addr().String()
	log.Info("admin listening", "addr", addr, "status_page", "http://"+addr+"/_bff/", "metrics", "http://"+addr+"/metrics",
		"token_required", cfg.Admin.Token != "")
	if ap, err := netip.ParseAddrPort(addr); err == nil && !ap.Addr().IsLoopback() && cfg.Admin.Token == "" {
		log.Warn("the admin listener is reachable beyond this machine and needs no token: anyone who reaches it can purge the cache and read profiles; set admin.token (BFF_ADMIN_TOKEN)", "addr", addr)
	}
	return srv, addr, nil
}

// version is the module version the binary was built from, if known.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

func newServer(s config.Server, h http.Handler, log *slog.Logger) *http.Server {
	def := func(v, d time.Duration) time.Duration {
		if v <= 0 {
			return d
		}
		return v
	}
	maxHeader := s.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = 32 << 10
	}
	header := def(s.ReadHeaderTimeout, 5*time.Second)
	return &http.Server{
		Handler:           bodyReadDeadline(h, def(s.ReadTimeout, 10*time.Second)),
		ReadHeaderTimeout: header,
		// The same as the header's, so net/http sets one read deadline per
		// request rather than two (0.3 µs of a 25 µs cache hit); most
		// requests have no body, and one with a body gets read_timeout from
		// bodyReadDeadline.
		ReadTimeout:    header,
		WriteTimeout:   def(s.WriteTimeout, 30*time.Second),
		IdleTimeout:    def(s.IdleTimeout, 120*time.Second),
		MaxHeaderBytes: maxHeader,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// bodyReadDeadline gives a request that has a body read_timeout, from when
// its handler starts, to send it.
func bodyReadDeadline(next http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 { // -1: chunked, length unknown
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
		}
		next.ServeHTTP(w, r)
	})
}

// accessLogWriter is where access lines go: nowhere when the access log is
// off, or when the log level is above WARN (lines are INFO, WARN for 5xx;
// at warn only the 5xx lines are written, see bff.Config.AccessLogLevel).
func accessLogWriter(cfg *config.Config, out io.Writer) io.Writer {
	if !cfg.AccessLog() || cfg.Log.SlogLevel() > slog.LevelWarn {
		return nil
	}
	return out
}

func accessLogFormat(cfg *config.Config) bff.AccessLogFormat {
	if cfg.Log.Format == "text" {
		return bff.AccessLogText
	}
	return bff.AccessLogJSON
}

// missingURL names the upstream and the first view that calls it.
func missingURL(name string, sets []bff.RouteSet) error {
	where := ""
	for _, rs := range sets {
		for _, v := range rs.Views {
			for _, c := range v.Calls {
				if c.Upstream == name && where == "" {
					field := "calls." + c.Name + ".upstream"
					where = fmt.Sprintf("%sview %q: %s: ", aggregate.Where(v, field), v.Name, field)
				}
			}
		}
	}
	return fmt.Errorf("%supstream %q has no URL and the demo does not serve it (it serves %s): set upstreams.%s.url in the config file or %s",
		where, name, strings.Join(demo.Names(), ", "), name, config.EnvURL(name))
}

// startDemos serves every upstream that has no URL from the built-in demo.
func startDemos(cfg *config.Config, sets []bff.RouteSet, log *slog.Logger) (*demo.Servers, error) {
	// An upstream no view calls is most often a typo (upstreams.user for
	// users), which leaves the real name on the demo.
	called := viewUpstreams(sets)
	for _, name := range cfg.UpstreamNames() {
		if !slices.Contains(called, name) {
			log.Warn("an upstream is configured that no view calls: a misspelled name?", "upstream", name)
		}
	}
	var names []string
	for _, name := range cfg.UpstreamNames() {
		if cfg.Upstreams[name].URL != "" {
			continue
		}
		if !slices.Contains(demo.Names(), name) {
			return nil, missingURL(name, sets)
		}
		names = append(names, name)
	}
	servers, err := demo.Start(names)
	if err != nil {
		return nil, fmt.Errorf("demo upstreams: %w", err)
	}
	if len(names) > 0 && len(names) < len(cfg.Upstreams) {
		// Real and made-up data side by side is fine for a try-out, and a
		// surprise anywhere else.
		log.Warn("some upstreams have no URL and are served by the demo", "demo", names)
	}
	for _, name := range names {
		cfg.Upstreams[name].URL = servers.URL(name)
		log.Info("demo upstream started (no URL configured)", "upstream", name, "url", servers.URL(name), "env", config.EnvURL(name))
	}
	return servers, nil
}

// clientAuth builds a client's token verifier from the config.
func clientAuth(name string, a *config.Auth, getenv func(string) string) (*bff.ClientAuth, error) {
	ac := auth.Config{Issuer: a.Issuer, Audience: a.Audience, Leeway: a.Leeway,
		JWKSURL: a.JWKSURL, JWKSRefresh: a.JWKSRefresh, JWKSMinRefresh: a.JWKSMinRefresh}
	for i, k := range a.Keys {
		key := auth.Key{ID: k.KID, Alg: k.Alg, Secret: []byte(k.Secret), PublicKey: []byte(k.PublicKey)}
		if k.SecretEnv != "" {
			if key.Secret = []byte(getenv(k.SecretEnv)); len(key.Secret) == 0 {
				return nil, fmt.Errorf("config: clients.%s.auth.keys[%d]: %s is not set", name, i, k.SecretEnv)
			}
		}
		if k.PublicKeyFile != "" {
			b, err := os.ReadFile(k.PublicKeyFile)
			if err != nil {
				return nil, fmt.Errorf("config: clients.%s.auth.keys[%d]: %w", name, i, err)
			}
			key.PublicKey = b
		}
		ac.Keys = append(ac.Keys, key)
	}
	switch a.DefaultMode {
	case "", "none", "optional", "required":
	default:
		return nil, fmt.Errorf("config: clients.%s.auth.default_mode %q: want none, optional or required", name, a.DefaultMode)
	}
	v, err := auth.New(ac)
	if err != nil {
		return nil, fmt.Errorf("config: clients.%s.%w", name, err)
	}
	return &bff.ClientAuth{Verifier: v, Default: a.Mode()}, nil
}

// closeAuth stops the token verifiers' key refreshes.
func closeAuth(sets []bff.RouteSet) {
	for _, rs := range sets {
		if rs.Auth != nil {
			rs.Auth.Verifier.Close()
		}
	}
}

// applyClients gives each route set its edge policy from the config.
func applyClients(cfg *config.Config, sets []bff.RouteSet, verifier func(client string, a *config.Auth) (*bff.ClientAuth, error)) error {
	var names []string
	for _, rs := range sets {
		names = append(names, rs.Client)
	}
	for name, cc := range cfg.Clients {
		i := slices.IndexFunc(sets, func(rs bff.RouteSet) bool { return rs.Client == name })
		if i < 0 {
			return fmt.Errorf("config: clients.%s: no such client (clients: %s)", name, strings.Join(names, ", "))
		}
		if cc != nil && cc.Auth != nil {
			ca, err := verifier(name, cc.Auth)
			if err != nil {
				return err
			}
			sets[i].Auth = ca
		}
		if cc != nil && cc.RateLimit != nil {
			rl := cc.RateLimit
			sets[i].RateLimit = &bff.RateLimit{Limit: bff.Limit{Requests: rl.Requests, Window: rl.Window}}
			for view, l := range rl.Views {
				if sets[i].RateLimit.Views == nil {
					sets[i].RateLimit.Views = map[string]bff.Limit{}
				}
				sets[i].RateLimit.Views[view] = bff.Limit{Requests: l.Requests, Window: l.Window}
			}
		}
		if cc != nil && cc.CORS != nil {
			c := cc.CORS
			sets[i].CORS = &bff.CORS{
				AllowedOrigins: c.AllowedOrigins, AllowedMethods: c.AllowedMethods, AllowedHeaders: c.AllowedHeaders,
				ExposedHeaders: c.ExposedHeaders, AllowCredentials: c.AllowCredentials, MaxAge: c.MaxAge,
			}
		}
	}
	return nil
}

func builtinRoutes() ([]bff.RouteSet, error) {
	var sets []bff.RouteSet
	for _, load := range []func() (bff.RouteSet, error){web.Routes, mobile.Routes} {
		rs, err := load()
		if err != nil {
			return nil, err
		}
		sets = append(sets, rs)
	}
	return sets, nil
}

// viewUpstreams lists the upstreams the views call.
func viewUpstreams(sets []bff.RouteSet) []string {
	seen := map[string]bool{}
	for _, rs := range sets {
		for _, v := range rs.Views {
			for _, c := range v.Calls {
				seen[c.Upstream] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
