// Command certview_exporter exports a Qualys Certificate View inventory to Prometheus.
// It polls the CertView API in the background and serves the cached snapshot.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector"
	"github.com/certview-exporter/certview_exporter/collector/config"
	"github.com/certview-exporter/certview_exporter/collector/regularfile"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/certview-exporter/certview_exporter/collector/web"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	sloggokit "github.com/tjhop/slog-gokit"
)

// DefaultListenAddress is the exporter's port; see the README.
const DefaultListenAddress = ":9856"

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	app := kingpin.New("certview_exporter", "Prometheus exporter for Qualys Certificate View.")
	configFile := app.Flag("config.file", "Path to the configuration file.").Default("config.yml").String()
	configCheck := app.Flag("config.check", "Validate the configuration file and exit.").Bool()
	telemetryPath := &telemetryPathFlag{}
	app.Flag("web.telemetry-path", "Path under which to expose metrics: absolute and clean, not / and nothing under /-/.").Default("/metrics").SetValue(telemetryPath)
	logLevel := app.Flag("log.level", "Only log messages with the given severity or above. One of: [debug, info, warn, error]").Default("info").Enum("debug", "info", "warn", "error")
	logFormat := app.Flag("log.format", "Output format of log messages. One of: [logfmt, json]").Default("logfmt").Enum("logfmt", "json")
	demo := app.Flag("demo", "Run against an in-process CertView simulator instead of a subscription (no credentials needed).").Bool()
	demoCerts := app.Flag("demo.certificates", "Certificates in the demo inventory.").Default("2000").Int()
	demoInstances := app.Flag("demo.instances", "Server instances in the demo inventory.").Default("5000").Int()
	demoSeed := app.Flag("demo.seed", "Seed of the demo inventory.").Default("1").Uint64()
	demoInterval := app.Flag("demo.interval", "Poll interval in demo mode.").Default("30s").Duration()
	enableLifecycle := app.Flag("web.enable-lifecycle", "Enable configuration reloads over HTTP (POST /-/reload). Off: the path answers 403; SIGHUP always reloads.").Bool()
	writeTimeout := app.Flag("web.write-timeout", "The longest a response may take to write; a client that reads too slowly is then cut off (0: no limit).").Default("2m").Duration()
	stallTimeout := app.Flag("web.write-stall-timeout", "The longest one write of a response may wait for the client to read; a client that stops reading is then cut off (0: no limit).").Default("10s").Duration()
	maxConnections := app.Flag("web.max-connections", "The most connections open at once, over all listeners; at the cap the longest idle one is closed to make room (0: no cap).").Default("128").Int()
	memoryLimit := app.Flag("runtime.memory-limit", "Soft memory limit of the Go runtime (bytes, or with a unit: 340MiB, 1GiB; 0: none). The GOMEMLIMIT environment variable takes precedence.").Default("340MiB").String()
	webFlags := kingpinflag.AddFlags(app, DefaultListenAddress)
	app.Version(version.Print("certview_exporter"))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "certview_exporter: %v\n", err)
		return 2
	}
	if *writeTimeout < 0 || *stallTimeout < 0 || *maxConnections < 0 {
		fmt.Fprintln(os.Stderr, "certview_exporter: --web.write-timeout, --web.write-stall-timeout and --web.max-connections may not be negative")
		return 2
	}
	// Each listener holds one connection while it makes room for it.
	if n := len(*webFlags.WebListenAddresses); *maxConnections > 0 && !*webFlags.WebSystemdSocket && *maxConnections <= n {
		fmt.Fprintf(os.Stderr, "certview_exporter: --web.max-connections: %d is not more than the %d listen addresses\n", *maxConnections, n)
		return 2
	}
	if err := checkWebConfigFile(*webFlags.WebConfigFile); err != nil {
		fmt.Fprintf(os.Stderr, "certview_exporter: --web.config.file: %v\n", err)
		return 2
	}

	logger, base := newLogger(*logLevel, *logFormat)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var cfg *config.Config
	if *demo {
		sim, shutdown, err := startSimulator(ctx, *demoSeed, *demoCerts, *demoInstances, *demoInterval)
		if err != nil {
			level.Error(logger).Log("msg", "starting the demo simulator", "err", err)
			return 1
		}
		defer shutdown()
		cfg = demoConfig(sim, *demoInterval)
		level.Info(logger).Log("msg", "demo mode: polling an in-process CertView simulator", "url", sim.URL,
			"certificates", *demoCerts, "instances", *demoInstances, "interval", *demoInterval,
			"full_interval", *cfg.Poll.FullInterval, "churn_per_interval", demoChurnText)
	} else {
		var code int
		if cfg, code = loadAtStart(ctx, logger, *configFile); cfg == nil {
			return code
		}
	}
	if *configCheck {
		level.Info(logger).Log("msg", "configuration is valid", "file", *configFile)
		return 0
	}

	level.Info(logger).Log("msg", "starting certview_exporter", "version", version.Info(), "build_context", version.BuildContext())
	if err := tuneRuntime(*memoryLimit); err != nil {
		level.Error(logger).Log("msg", "invalid --runtime.memory-limit", "value", *memoryLimit, "err", err)
		return 2
	}

	telemetry := telemetry.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(versioncollector.NewCollector("qualys_certview"),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(telemetry.Collectors()...)
	svc, err := collector.NewService(cfg, collector.ServiceOptions{
		Logger:    logger,
		Telemetry: telemetry,
		Gatherer:  reg,
		Client:    func(c *certview.Config) { c.UserAgent = "certview_exporter/" + version.Version },
		AfterPoll: func(*snapshot.Snapshot, error) { warnNearMemoryLimit(logger) },
	})
	if err != nil {
		level.Error(logger).Log("msg", "invalid configuration", "err", err)
		return 1
	}
	reg.MustRegister(svc.Collectors()...)
	// A reload re-reads the configuration file (demo mode has none: it keeps its own).
	load := func() (*config.Config, error) {
		c, err := config.Load(*configFile)
		if err == nil {
			logWarnings(logger, c)
		}
		return c, err
	}
	if *demo {
		load = func() (*config.Config, error) { return cfg, nil }
	}
	defer reloadOnSIGHUP(ctx, logger, svc, load, *configFile)()

	pollDone := make(chan struct{})
	go func() { defer close(pollDone); svc.Run(ctx) }()

	// Reloads over HTTP only with --web.enable-lifecycle, as in Prometheus: each one
	// cancels a running poll and starts a fresh client, so whoever can reach the port
	// could otherwise spend the API budget.
	var reload http.Handler
	if *enableLifecycle {
		reload = svc.ReloadHandler(load)
	}
	server, err := web.New(web.Options{
		TelemetryPath: telemetryPath.path, Metrics: svc, Ready: svc.Ready, Reload: reload,
		WriteTimeout: *writeTimeout, StallTimeout: *stallTimeout, MaxConnections: *maxConnections,
	})
	if err != nil {
		level.Error(logger).Log("msg", "building the HTTP server", "err", err)
		return 1
	}
	reg.MustRegister(connectionMetrics(server)...)
	slogger := slog.New(sloggokit.NewGoKitHandler(base, slogLevel(*logLevel)))
	code := serveUntilDone(ctx, logger, server.HTTP, func() error { return server.ListenAndServe(webFlags, slogger) })
	stop()
	<-pollDone
	level.Info(logger).Log("msg", "stopped")
	return code
}

// maxWebConfigBytes bounds --web.config.file, which holds TLS paths and bcrypt hashes.
const maxWebConfigBytes = 1 << 20

// checkWebConfigFile refuses a --web.config.file that is not a regular file of at most
// maxWebConfigBytes. exporter-toolkit reads it on every request, whole: /dev/zero there
// took gigabytes at the first request, and a named pipe hung every request. "" (no TLS,
// no basic auth) is fine.
func checkWebConfigFile(path string) error {
	if path == "" {
		return nil
	}
	f, st, err := regularfile.Open(path)
	if err != nil {
		return err
	}
	f.Close()
	if st.Size() > maxWebConfigBytes {
		return fmt.Errorf("%d bytes, more than the limit of %d", st.Size(), maxWebConfigBytes)
	}
	return nil
}

// connectionMetrics shows the HTTP server's connection cap at work: the connections open,
// and those closed to make room (a rise is a flood of idle connections, or a cap too low
// for the scrapers).
func connectionMetrics(server *web.Server) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "qualys_certview_http_connections",
			Help: "Connections the exporter's HTTP server holds open, of at most --web.max-connections. Read at scrape time.",
		}, func() float64 { return float64(server.Stats().Open) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "qualys_certview_http_connections_closed_to_make_room_total",
			Help: "Idle connections the exporter's HTTP server closed to make room for a new one at --web.max-connections. A rise is a flood of idle connections, or a cap too low for the scrapers.",
		}, func() float64 { return float64(server.Stats().ClosedToMakeRoom) }),
	}
}

// loadAtStart loads the configuration file beside the signal handling, so that SIGTERM
// and SIGINT end the process even while a file is being read (the reads are bounded, and
// refuse pipes and devices, but a file system can still hang). A nil configuration comes
// with the exit code.
func loadAtStart(ctx context.Context, logger log.Logger, path string) (*config.Config, int) {
	type result struct {
		cfg *config.Config
		err error
	}
	done := make(chan result, 1)
	go func() { c, err := config.Load(path); done <- result{c, err} }()
	select {
	case r := <-done:
		if r.err != nil {
			level.Error(logger).Log("msg", "invalid configuration", "err", r.err)
			return nil, 1
		}
		logWarnings(logger, r.cfg)
		return r.cfg, 0
	case <-ctx.Done():
		level.Info(logger).Log("msg", "stopped during start-up, before the configuration was loaded")
		return nil, 0
	}
}

// tuneRuntime sets the garbage collector's pace and the soft memory limit, unless GOGC
// and GOMEMLIMIT set them.
func tuneRuntime(memoryLimit string) error {
	if os.Getenv("GOGC") == "" {
		// A poll holds the served snapshot and the one it builds; collecting at half the
		// live heap's growth, not all of it, keeps the peak near 1.5x that instead of 2x.
		debug.SetGCPercent(50)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	limit, err := units.ParseBase2Bytes(memoryLimit)
	if err == nil && limit < 0 {
		err = errors.New("negative")
	}
	if err != nil {
		return err
	}
	if limit > 0 {
		debug.SetMemoryLimit(int64(limit))
	}
	return nil
}

// reloadOnSIGHUP reloads the configuration with load on every SIGHUP until ctx ends; the
// returned func stops listening.
func reloadOnSIGHUP(ctx context.Context, logger log.Logger, svc *collector.Service, load func() (*config.Config, error), file string) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				level.Info(logger).Log("msg", "SIGHUP: reloading the configuration", "file", file)
				_ = svc.ReloadFrom(load)
			}
		}
	}()
	return func() { signal.Stop(hup) }
}

// serveUntilDone serves with listen until ctx ends (then shuts the server down, waiting
// up to 10 seconds for the requests in flight) or the server fails; it returns the exit
// code.
func serveUntilDone(ctx context.Context, logger log.Logger, server *http.Server, listen func() error) int {
	serveErr := make(chan error, 1)
	go func() { serveErr <- listen() }()
	select {
	case err := <-serveErr:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			level.Error(logger).Log("msg", "HTTP server failed", "err", err)
			return 1
		}
	case <-ctx.Done():
		level.Info(logger).Log("msg", "shutting down")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		level.Warn(logger).Log("msg", "HTTP shutdown", "err", err)
	}
	return 0
}

// newLogger returns the project's go-kit logger, with timestamp and caller, and the bare
// filtered logger under it, for the slog bridge (which adds its own time and caller).
func newLogger(lvl, format string) (log.Logger, log.Logger) {
	var l log.Logger
	if format == "json" {
		l = log.NewJSONLogger(log.NewSyncWriter(os.Stderr))
	} else {
		l = log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr))
	}
	l = level.NewFilter(l, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
	return log.With(l, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller), l
}

// slogLevel maps --log.level onto slog's levels.
func slogLevel(lvl string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(lvl))
	return l
}

// logWarnings logs what a valid configuration still warns about (an http:// api_url, a
// poll.timeout too short for a large listing).
func logWarnings(logger log.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings() {
		level.Warn(logger).Log("msg", "configuration warning", "warning", w)
	}
}

// warnNearMemoryLimit logs when the live heap after a poll passes 80% of the runtime's
// soft memory limit: the garbage collector then works hard to stay under it.
func warnNearMemoryLimit(logger log.Logger) {
	limit := debug.SetMemoryLimit(-1)
	if limit <= 0 || limit == math.MaxInt64 {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if live := sample[0].Value.Uint64(); float64(live) > 0.8*float64(limit) {
		level.Warn(logger).Log("msg", "the live heap is near the memory limit; raise --runtime.memory-limit (or GOMEMLIMIT) and the container's memory",
			"live_bytes", live, "limit_bytes", limit)
	}
}

// telemetryPathFlag is --web.telemetry-path, checked as it is parsed: a path the router
// cannot take (it used to panic on /-/ready, metrics, an empty value or /a b) is a flag
// error, exit code 2.
type telemetryPathFlag struct{ path string }

func (f *telemetryPathFlag) Set(s string) error {
	if err := web.CheckTelemetryPath(s); err != nil {
		return fmt.Errorf("--web.telemetry-path: %w", err)
	}
	f.path = s
	return nil
}

func (f *telemetryPathFlag) String() string { return f.path }

// demoChurn is what changes in the demo inventory every poll interval, so that the
// incremental polls between full listings have something to find.
var demoChurn = certviewtest.Churn{Rescan: 0.01, Add: 2, Remove: 1}

const demoChurnText = "1% of instances rescanned, 2 certificates added on new instances, 1 instance removed"

// startSimulator serves a CertView simulator on a loopback port for --demo, and churns
// its inventory every interval until ctx ends.
func startSimulator(ctx context.Context, seed uint64, certs, instances int, interval time.Duration) (*demoSim, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	sim := certviewtest.New(certviewtest.Options{
		Inventory: certviewtest.Inventory{Seed: seed, Certificates: certs, Instances: instances, VendorSamples: true, RenewalFamilies: true},
		// The demo polls often; give it a generous budget.
		RateLimit: 100000, RateWindow: time.Hour, Concurrency: 4,
	})
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	churnCtx, stopChurn := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-churnCtx.Done():
				return
			case <-tick.C:
				sim.Churn(demoChurn)
			}
		}
	}()
	return &demoSim{URL: "http://" + ln.Addr().String(), opts: sim.Options()}, func() { stopChurn(); _ = srv.Close() }, nil
}

type demoSim struct {
	URL  string
	opts certviewtest.Options
}

func demoConfig(sim *demoSim, interval time.Duration) *config.Config {
	cfg := &config.Config{}
	cfg.Qualys.APIURL = sim.URL
	cfg.Qualys.Username = sim.opts.Username
	cfg.Qualys.Password = config.Secret(sim.opts.Password)
	cfg.Poll.Interval = config.Duration(interval)
	// A full listing every ten polls, incremental polls between.
	full := config.Duration(10 * interval)
	cfg.Poll.FullInterval = &full
	cfg.RateLimit.Calls = sim.opts.RateLimit
	cfg.RateLimit.Window = config.Duration(sim.opts.RateWindow)
	cfg.RateLimit.Concurrency = sim.opts.Concurrency
	// The simulator's assets carry team and environment tags, as config.example.yml reads them.
	cfg.Owners.Labels = []config.OwnerLabel{
		{Name: "team", TagRegex: "^Team-(.+)$"},
		{Name: "environment", TagValues: []string{"Production", "Staging"}},
	}
	cfg.Complete()
	return cfg
}
