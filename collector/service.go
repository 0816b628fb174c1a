// Package collector is the exporter side of certview_exporter, and this package is its
// wiring: a Service builds, for one configuration at a time, the certview client, the
// poll loop and the exposition, runs the loop, and swaps in a new configuration on
// reload. The data flows one way through the packages under it:
//
//	certview (the API client) -> poll (the loop: full and incremental listings)
//	  -> snapshot (the immutable inventory and its owners) -> store (the file)
//	  -> exposition (/metrics)
//
// with telemetry (the exporter's own metrics and health) beside them and config (the
// file) on top. Nothing under this package imports it.
package collector

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/collector/config"
	"github.com/certview-exporter/certview_exporter/collector/exposition"
	"github.com/certview-exporter/certview_exporter/collector/poll"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
)

// ServiceOptions are what a Service needs besides the configuration.
type ServiceOptions struct {
	Clock     clockwork.Clock
	Logger    log.Logger
	Telemetry *telemetry.Telemetry
	// Gatherer holds the exporter's other metrics (Go, process, build, telemetry).
	Gatherer prometheus.Gatherer
	// Client completes the client's settings (user agent, transport); may be nil.
	Client func(*certview.Config)
	// AfterPoll is called after every poll of every configuration's loop.
	AfterPoll func(*snapshot.Snapshot, error)
}

// Service runs the exporter for one configuration at a time: the client, the poll loop
// and the exposition. Reload swaps in a new configuration without a gap: the snapshot
// being served and the poll health carry over, so a reload costs no API call, and a
// configuration that does not load leaves the running one untouched.
type Service struct {
	opts    ServiceOptions
	current atomic.Pointer[serviceRun]

	mu      sync.Mutex // serialises Run's loop changes and Reload
	runCtx  context.Context
	running *serviceRun

	reloadOK, reloadTime prometheus.Gauge
}

// serviceRun is one configuration's client, poll loop and exposition.
type serviceRun struct {
	cfg    *config.Config
	client *certview.Client
	loop   *poll.Loop
	expo   *exposition.Exposition
	cancel context.CancelFunc
	done   chan struct{}
}

// NewService builds the service for cfg; Run starts it.
func NewService(cfg *config.Config, opts ServiceOptions) (*Service, error) {
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Telemetry == nil {
		opts.Telemetry = telemetry.New()
	}
	s := &Service{
		opts: opts,
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "qualys_certview_config_last_reload_successful",
			Help: "1 when the last configuration reload (SIGHUP or POST /-/reload) succeeded, 0 when it failed and the previous configuration stayed in use.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "qualys_certview_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully (at start or by a reload), as a Unix timestamp.",
		}),
	}
	run, err := s.build(cfg)
	if err != nil {
		return nil, err
	}
	s.current.Store(run)
	s.reloadOK.Set(1)
	s.reloadTime.Set(unixSeconds(opts.Clock.Now()))
	return s, nil
}

// Collectors returns the reload metrics, to register.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.reloadOK, s.reloadTime}
}

// build makes the client, poll loop and exposition of cfg; it starts nothing.
func (s *Service) build(cfg *config.Config) (*serviceRun, error) {
	cc := cfg.ClientConfig()
	cc.Logger = log.With(s.opts.Logger, "component", "certview")
	activity := poll.NewActivity(s.opts.Clock)
	cc.Hooks = certview.JoinHooks(s.opts.Telemetry.Hooks(), activity.Hooks())
	cc.Clock = s.opts.Clock
	if s.opts.Client != nil {
		s.opts.Client(&cc)
	}
	owners, err := cfg.Owners.Rules()
	if err != nil {
		return nil, err
	}
	client, err := certview.New(cc)
	if err != nil {
		return nil, err
	}
	run := &serviceRun{cfg: cfg, client: client}
	run.loop = poll.New(client, poll.Options{
		Interval:         time.Duration(cfg.Poll.Interval),
		FullInterval:     time.Duration(*cfg.Poll.FullInterval),
		Overlap:          time.Duration(*cfg.Poll.IncrementalOverlap),
		Timeout:          time.Duration(cfg.Poll.Timeout),
		StallTimeout:     time.Duration(cfg.Poll.StallTimeout),
		Activity:         activity,
		MaxBackoff:       time.Duration(cfg.Poll.MaxBackoff),
		ProgressInterval: time.Duration(cfg.Poll.ProgressInterval),
		MaxShrink:        *cfg.Poll.MaxShrink,
		PageSize:         cfg.Qualys.PageSize,
		RateLimit:        cc.RateLimit,
		Thresholds:       snapshot.Thresholds{WeakRSABits: cfg.Metrics.WeakRSABits, WeakECBits: cfg.Metrics.WeakECBits},
		Owners:           owners,
		Origin:           cfg.Fingerprint(),
		Clock:            s.opts.Clock,
		Logger:           log.With(s.opts.Logger, "component", "poll"),
		Telemetry:        s.opts.Telemetry,
		SnapshotPath:     cfg.Snapshot.Path,
		Publish:          func(snap *snapshot.Snapshot) { run.expo.Publish(snap) },
		AfterPoll:        s.opts.AfterPoll,
	})
	run.expo, err = exposition.New(run.loop, s.opts.Gatherer, exposition.Options{
		PerCertificate: cfg.Metrics.PerCertificate(), PerInstance: cfg.Metrics.PerInstance(),
		InstanceScoreCategories: cfg.Metrics.InstanceScoreCategories,
		CertificateInfoLabels:   cfg.Metrics.CertificateInfoLabels, InstanceInfoLabels: cfg.Metrics.InstanceInfoLabels,
		Interval: time.Duration(cfg.Poll.Interval),
		Clock:    s.opts.Clock, Logger: log.With(s.opts.Logger, "component", "exposition"),
	})
	if err != nil {
		client.Close()
		return nil, err
	}
	return run, nil
}

// start runs a configuration's poll loop under ctx.
func (s *Service) start(ctx context.Context, run *serviceRun) {
	rctx, cancel := context.WithCancel(ctx)
	run.cancel, run.done = cancel, make(chan struct{})
	go func() { defer close(run.done); run.loop.Run(rctx) }()
	s.running = run
}

// stop ends a configuration's poll loop and waits for it.
func (run *serviceRun) stop() {
	if run.cancel != nil {
		run.cancel()
		<-run.done
	}
	run.client.Close()
}

// Run polls until ctx ends, under whatever configuration is current.
func (s *Service) Run(ctx context.Context) {
	s.mu.Lock()
	s.runCtx = ctx
	s.start(ctx, s.current.Load())
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running != nil {
		s.running.stop()
		s.running = nil
	}
}

// Reload switches to cfg. On failure the running configuration stays and the error is
// returned (and counted in qualys_certview_config_last_reload_successful).
func (s *Service) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := s.build(cfg)
	if err != nil {
		s.reloadOK.Set(0)
		level.Error(s.opts.Logger).Log("msg", "configuration reload failed; the previous configuration stays in use", "err", err)
		return err
	}
	prev := s.current.Load()
	if s.running != nil {
		s.running.stop() // a poll in progress is cancelled; the next loop polls when due
	}
	next.loop.CarryOver(prev.loop)
	s.current.Store(next)
	if s.runCtx != nil && s.runCtx.Err() == nil {
		s.start(s.runCtx, next)
	}
	s.reloadOK.Set(1)
	s.reloadTime.Set(unixSeconds(s.opts.Clock.Now()))
	level.Info(s.opts.Logger).Log("msg", "configuration reloaded")
	return nil
}

// ReloadFrom loads a configuration with load and reloads it.
func (s *Service) ReloadFrom(load func() (*config.Config, error)) error {
	cfg, err := load()
	if err != nil {
		s.mu.Lock()
		s.reloadOK.Set(0)
		s.mu.Unlock()
		level.Error(s.opts.Logger).Log("msg", "configuration reload failed; the previous configuration stays in use", "err", err)
		return err
	}
	return s.Reload(cfg)
}

// Ready says whether a snapshot is being served.
func (s *Service) Ready() bool { return s.current.Load().expo.Ready() }

// Loop returns the current configuration's poll loop.
func (s *Service) Loop() *poll.Loop { return s.current.Load().loop }

// ServeHTTP serves /metrics from the current configuration's exposition.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.current.Load().expo.ServeHTTP(w, r)
}

// ReloadHandler serves POST /-/reload. A failed reload answers 500 without the error,
// which is logged.
func (s *Service) ReloadHandler(load func() (*config.Config, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "use POST to reload the configuration", http.StatusMethodNotAllowed)
			return
		}
		if err := s.ReloadFrom(load); err != nil {
			// The error stays in the log: the answer goes to whoever sent the request,
			// and a configuration error may quote a value of the file.
			http.Error(w, "reload failed, the previous configuration stays in use; the exporter's log says why", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("configuration reloaded\n"))
	})
}

func unixSeconds(t time.Time) float64 { return certview.UnixSeconds(t) }
