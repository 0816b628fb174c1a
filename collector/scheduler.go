package collector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/jonboulle/clockwork"
)

// Lister is what the scheduler needs of the certview client.
type Lister interface {
	ListCertificates(ctx context.Context, fn func([]certview.Certificate) error) (certview.ListStats, error)
	ListInstances(ctx context.Context, fn func([]certview.Instance) error) (certview.ListStats, error)
	// The Where listings AND the terms onto the configured filters (incremental polls).
	ListCertificatesWhere(ctx context.Context, terms []certview.FilterTerm, fn func([]certview.Certificate) error) (certview.ListStats, error)
	ListInstancesWhere(ctx context.Context, terms []certview.FilterTerm, fn func([]certview.Instance) error) (certview.ListStats, error)
	// Narrowable says why the configured filters cannot take more terms, if they cannot.
	Narrowable() error
}

// SchedulerOptions configure the poll loop.
type SchedulerOptions struct {
	Interval time.Duration
	// FullInterval is how often at least a poll lists everything; the polls between are
	// incremental. 0: every poll is full.
	FullInterval time.Duration
	// Overlap is how far an incremental poll reaches back before the watermark, for the
	// vendor's ingestion lag; default 1h.
	Overlap          time.Duration
	Timeout          time.Duration // of one poll; default Interval
	MaxBackoff       time.Duration // the longest pause after repeated failures; default 4x Interval
	ProgressInterval time.Duration // how often a running poll logs its progress; default 1m
	PageSize         int           // to estimate calls; default 200
	RateLimit        certview.RateLimit
	Thresholds       Thresholds
	// Owners, when set, are the owner rules: the certificates listing carries the
	// assets' tags, and each snapshot is served with its owners resolved.
	Owners    *OwnerRules
	Clock     clockwork.Clock
	Logger    log.Logger
	Telemetry *Telemetry
	// SnapshotPath, when set, is where the snapshot is saved after each successful poll
	// and loaded from at start.
	SnapshotPath string
	// Prepare, when set, finishes each new snapshot (the exposition's caches) before it is
	// swapped in.
	Prepare func(*Snapshot)
	// AfterPoll, when set, is called after every poll: with the new snapshot (already
	// swapped in) on success, or with the error on failure.
	AfterPoll func(*Snapshot, error)
}

// Health is the state of the poll loop.
type Health struct {
	Up                  bool // the last poll succeeded
	LastSuccess         time.Time
	LastAttempt         time.Time
	LastDuration        time.Duration
	ConsecutiveFailures int
	LastError           string
	LastErrorReason     string
}

// Scheduler polls the API on a fixed interval and keeps the last complete snapshot.
type Scheduler struct {
	client Lister
	opts   SchedulerOptions
	snap   atomic.Pointer[Snapshot]

	pollMu sync.Mutex // polls never overlap

	mu     sync.Mutex
	health Health
	incOff string // why incremental polls are off, or ""

	// What polls measured, per API, for the budget warning: calls of the last full
	// and of the last incremental poll (0: none yet).
	fullCalls, incCalls map[string]int
}

// NewScheduler makes a scheduler; Run starts it.
func NewScheduler(client Lister, opts SchedulerOptions) *Scheduler {
	if opts.Interval <= 0 {
		opts.Interval = DefaultPollInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = opts.Interval
	}
	if opts.MaxBackoff < opts.Interval {
		opts.MaxBackoff = 4 * opts.Interval
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = time.Minute
	}
	if opts.PageSize <= 0 {
		opts.PageSize = certview.DefaultPageSize
	}
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Telemetry == nil {
		opts.Telemetry = NewTelemetry()
	}
	opts.Telemetry.seedEndpoints()
	if opts.Owners != nil {
		for _, name := range opts.Owners.Names() {
			opts.Telemetry.ownerDropped.WithLabelValues(name)
		}
	}
	if opts.RateLimit.Calls > 0 {
		opts.Telemetry.SetConfiguredLimit(opts.RateLimit.Calls)
	}
	if opts.Overlap <= 0 {
		opts.Overlap = DefaultOverlap
	}
	s := &Scheduler{client: client, opts: opts, fullCalls: map[string]int{}, incCalls: map[string]int{}}
	opts.Telemetry.setIncrementalOff("")
	if opts.FullInterval <= 0 {
		s.disableIncremental(IncrementalOffConfigured, nil)
	} else if client != nil {
		if err := client.Narrowable(); err != nil {
			s.disableIncremental(IncrementalOffFilterOR, err)
		}
	}
	return s
}

// CarryOver takes the snapshot and poll health of the scheduler it replaces (after a
// configuration reload), preparing the snapshot for this scheduler's exposition.
func (s *Scheduler) CarryOver(prev *Scheduler) {
	if snap := prev.Snapshot(); snap != nil {
		// The records are shared, read-only; only the exposition's cache is made anew
		// (the new configuration may expose other families or labels).
		carried := *snap
		carried.static = nil
		s.prepare(&carried)
		s.snap.Store(&carried)
	}
	h := prev.Health()
	s.mu.Lock()
	s.health = h
	s.mu.Unlock()
}

// Store serves a snapshot, as if a poll had made it (benchmarks and tools).
func (s *Scheduler) Store(snap *Snapshot) {
	s.prepare(snap)
	s.snap.Store(snap)
}

// SetPrepare sets the Prepare hook; call it before Run.
func (s *Scheduler) SetPrepare(fn func(*Snapshot)) { s.opts.Prepare = fn }

// Interval returns the poll interval.
func (s *Scheduler) Interval() time.Duration { return s.opts.Interval }

// Snapshot returns the current snapshot, or nil before the first successful poll.
func (s *Scheduler) Snapshot() *Snapshot { return s.snap.Load() }

// Ready says whether a snapshot exists.
func (s *Scheduler) Ready() bool { return s.snap.Load() != nil }

// Health returns the state of the poll loop.
func (s *Scheduler) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

// LoadSaved serves the saved snapshot, if there is a good one: the exporter is ready at
// once, up stays 0 until a poll succeeds in this process, and the last success is the
// saved snapshot's. A missing file is normal; a damaged one is logged and ignored.
func (s *Scheduler) LoadSaved() {
	if s.opts.SnapshotPath == "" {
		return
	}
	snap, err := LoadSnapshot(s.opts.SnapshotPath)
	switch {
	case errors.Is(err, ErrNoSnapshot):
		level.Info(s.opts.Logger).Log("msg", "no saved snapshot yet", "path", s.opts.SnapshotPath)
		return
	case err != nil:
		level.Warn(s.opts.Logger).Log("msg", "ignoring the saved snapshot", "err", err)
		return
	}
	s.prepare(snap)
	s.snap.Store(snap)
	s.mu.Lock()
	s.health.LastSuccess = snap.Taken
	s.mu.Unlock()
	s.opts.Telemetry.setSnapshot(snap)
	level.Info(s.opts.Logger).Log("msg", "serving the saved snapshot", "path", s.opts.SnapshotPath,
		"certificates", len(snap.Certificates), "instances", len(snap.Instances), "taken", snap.Taken.UTC().Format(time.RFC3339),
		"age", s.opts.Clock.Since(snap.Taken).Round(time.Second))
}

// Run loads the saved snapshot, then polls until ctx ends: at once, or, when the saved
// snapshot is younger than the interval, when it falls due (a restart costs no API
// calls). Then every interval; after repeated failures the pause grows (doubling from
// the second failure) up to MaxBackoff.
func (s *Scheduler) Run(ctx context.Context) {
	if s.Snapshot() == nil {
		s.LoadSaved()
	}
	if snap := s.Snapshot(); snap != nil {
		if wait := snap.Taken.Add(s.opts.Interval).Sub(s.opts.Clock.Now()); wait > 0 {
			level.Info(s.opts.Logger).Log("msg", "first poll when the saved snapshot falls due", "in", wait.Round(time.Second))
			if !s.sleep(ctx, wait) {
				return
			}
		}
	}
	for {
		start := s.opts.Clock.Now()
		_ = s.Poll(ctx)
		if ctx.Err() != nil {
			return
		}
		delay := s.nextDelay()
		wait := start.Add(delay).Sub(s.opts.Clock.Now())
		if wait < 0 {
			wait = 0
		}
		level.Debug(s.opts.Logger).Log("msg", "next poll", "in", wait)
		if !s.sleep(ctx, wait) {
			return
		}
	}
}

// sleep waits d on the clock; false when ctx ended first.
func (s *Scheduler) sleep(ctx context.Context, d time.Duration) bool {
	t := s.opts.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.Chan():
		return true
	}
}

// nextDelay is the interval, doubled for each failure after the first, capped.
func (s *Scheduler) nextDelay() time.Duration {
	f := s.Health().ConsecutiveFailures
	d := s.opts.Interval
	for i := 1; i < f && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	if d > s.opts.MaxBackoff {
		d = s.opts.MaxBackoff
	}
	return d
}

// Poll lists certificates and instances, whole or only what changed (see pollKind),
// builds a snapshot and swaps it in. A failed poll keeps the previous snapshot, and
// with it the watermark.
func (s *Scheduler) Poll(ctx context.Context) error {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	logger := s.opts.Logger
	tel := s.opts.Telemetry
	start := s.opts.Clock.Now()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()

	prev := s.Snapshot()
	kind, why := s.pollKind(prev, start)
	level.Debug(logger).Log("msg", "poll starting", "kind", kind, "why", why)
	before := tel.progress()
	stopProgress := s.logProgress(ctx, start, before)
	var l *listing
	if kind == PollIncremental {
		l = s.listIncremental(ctx, prev, start)
		if l.refused {
			s.disableIncremental(IncrementalOffFilterRefused, l.err)
			kind = PollFull
			l = s.listFull(ctx, prev, start)
		}
	} else {
		l = s.listFull(ctx, prev, start)
	}
	stopProgress()
	end := s.opts.Clock.Now()
	took := end.Sub(start)
	err := l.err
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	// Build and prepare outside the lock: scrapes read the health meanwhile.
	var snap *Snapshot
	if err == nil {
		snap = l.finish(l.b, end, took)
		s.prepare(snap)
	}
	tel.setLastPoll(kind, l.stats)

	s.mu.Lock()
	s.health.LastAttempt = start
	s.health.LastDuration = took
	if err != nil {
		reason := failureReason(err)
		s.health.Up = false
		s.health.ConsecutiveFailures++
		s.health.LastError = err.Error()
		s.health.LastErrorReason = reason
		failures := s.health.ConsecutiveFailures
		s.mu.Unlock()
		tel.polls.WithLabelValues("failure").Inc()
		tel.pollFailures.WithLabelValues(reason).Inc()
		level.Error(logger).Log("msg", "poll failed; keeping the previous snapshot", "kind", kind, "reason", reason, "err", err,
			"duration", took.Round(time.Millisecond), "consecutive_failures", failures, "have_snapshot", s.Ready())
		if s.opts.AfterPoll != nil {
			s.opts.AfterPoll(nil, err)
		}
		return err
	}
	s.snap.Store(snap)
	s.health.Up = true
	s.health.LastSuccess = end
	s.health.ConsecutiveFailures = 0
	s.health.LastError, s.health.LastErrorReason = "", ""
	measured := s.fullCalls
	if snap.Kind == PollIncremental {
		measured = s.incCalls
	}
	for endpoint, st := range l.stats {
		measured[endpoint] = st.Pages
	}
	s.mu.Unlock()
	tel.polls.WithLabelValues("success").Inc()
	tel.setSnapshot(snap)
	if o := snap.Owners; o != nil {
		for k, n := range o.Dropped {
			tel.ownerDropped.WithLabelValues(o.Labels[k]).Add(float64(n))
		}
		if slices.ContainsFunc(o.Dropped, func(n int) bool { return n > 0 }) {
			level.Warn(logger).Log("msg", "owner labels have more distinct values than their cap; the values on the fewest instances are left empty",
				"labels", strings.Join(o.Labels, ","), "dropped", fmt.Sprint(o.Dropped))
		}
	}
	done := tel.progress().since(before)
	certStats, instStats := l.stats[certview.EndpointCertificates], l.stats[certview.EndpointInstances]
	level.Info(logger).Log("msg", "poll complete", "kind", snap.Kind, "certificates", len(snap.Certificates), "instances", len(snap.Instances),
		"calls", l.calls(), "certificate_calls", certStats.Pages, "instance_calls", instStats.Pages,
		"certificates_fetched", certStats.Records, "instances_fetched", instStats.Records,
		"skipped", certStats.Skipped+instStats.Skipped, "duplicates", certStats.Duplicates+instStats.Duplicates,
		"rate_limit_waits", done.waits, "waited", done.waited, "duration", took.Round(time.Millisecond))
	s.checkBudget(len(snap.Certificates), len(snap.Instances))
	s.save(snap)
	if s.opts.AfterPoll != nil {
		s.opts.AfterPoll(snap, nil)
	}
	return nil
}

// prepare resolves the snapshot's owners and lets the exposition cache its static part.
// It runs before the snapshot is served, on a snapshot nothing else holds yet.
func (s *Scheduler) prepare(snap *Snapshot) {
	snap.Owners = ResolveOwners(snap, s.opts.Owners)
	if s.opts.Prepare != nil {
		s.opts.Prepare(snap)
	}
}

// save writes the snapshot file, when one is configured. A failure is logged and
// counted; the snapshot in memory is served regardless.
func (s *Scheduler) save(snap *Snapshot) {
	if s.opts.SnapshotPath == "" {
		return
	}
	start := s.opts.Clock.Now()
	if err := SaveSnapshot(s.opts.SnapshotPath, snap); err != nil {
		s.opts.Telemetry.saves.WithLabelValues("failure").Inc()
		level.Error(s.opts.Logger).Log("msg", "saving the snapshot failed; it is still served from memory", "err", err)
		return
	}
	s.opts.Telemetry.saves.WithLabelValues("success").Inc()
	level.Debug(s.opts.Logger).Log("msg", "snapshot saved", "path", s.opts.SnapshotPath, "took", s.opts.Clock.Since(start))
}

// logProgress logs the running poll's counters every ProgressInterval.
func (s *Scheduler) logProgress(ctx context.Context, start time.Time, before progress) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := s.opts.Clock.NewTicker(s.opts.ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.Chan():
				p := s.opts.Telemetry.progress().since(before)
				level.Info(s.opts.Logger).Log("msg", "poll in progress", "pages", p.pages, "records", p.records,
					"rate_limit_waits", p.waits, "waited", p.waited, "elapsed", s.opts.Clock.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(stop); <-done }
}

// CallsPerPoll is what listing n records costs: floor(n/pageSize)+1 calls.
func CallsPerPoll(n, pageSize int) int { return n/pageSize + 1 }

// MinInterval is the shortest poll interval one API's budget sustains for calls per poll.
func MinInterval(calls int, rl certview.RateLimit) time.Duration {
	if rl.Calls <= 0 {
		return 0
	}
	return time.Duration(float64(rl.Window) * float64(calls) / float64(rl.Calls))
}

// checkBudget warns when the rate limit cannot sustain the polls at the size just
// seen. Each API has its own budget, so each is checked. A window holds window/interval
// polls, one in full_interval/interval of them full: calls of the last full and last
// incremental polls as measured (a full one estimated from the counts until measured;
// an incremental one at 1 call until measured).
func (s *Scheduler) checkBudget(certs, instances int) {
	rl := s.opts.RateLimit
	if rl.Calls <= 0 {
		return
	}
	s.mu.Lock()
	incremental := s.incOff == ""
	need := map[string][2]float64{}
	for endpoint, n := range map[string]int{certview.EndpointCertificates: certs, certview.EndpointInstances: instances} {
		full := s.fullCalls[endpoint]
		if full == 0 {
			full = CallsPerPoll(n, s.opts.PageSize)
		}
		inc := max(s.incCalls[endpoint], 1)
		need[endpoint] = [2]float64{float64(full), float64(inc)}
	}
	s.mu.Unlock()
	for _, endpoint := range []string{certview.EndpointCertificates, certview.EndpointInstances} {
		full, inc := need[endpoint][0], need[endpoint][1]
		perWindow := CallsPerWindow(full, inc, s.opts.Interval, s.opts.FullInterval, rl.Window, incremental)
		if perWindow <= float64(rl.Calls) {
			continue
		}
		kv := []any{"msg", "the rate limit cannot sustain the polls: they will stretch into rate-limit waits",
			"endpoint", endpoint, "calls_per_window", int(perWindow + 0.5), "calls_per_full_poll", int(full),
			"rate_limit", fmt.Sprintf("%d per %s", rl.Calls, rl.Window), "interval", s.opts.Interval}
		if incremental {
			kv = append(kv, "calls_per_incremental_poll", int(inc), "full_interval", s.opts.FullInterval)
		} else {
			kv = append(kv, "min_interval", MinInterval(int(full), rl).Round(time.Second))
		}
		level.Warn(s.opts.Logger).Log(kv...)
	}
}

// CallsPerWindow is what polls every interval cost in one rate-limit window: all full,
// or incremental with a full listing every fullInterval, spread over it.
func CallsPerWindow(full, incremental float64, interval, fullInterval, window time.Duration, incrementalOn bool) float64 {
	polls := float64(window) / float64(interval)
	if !incrementalOn || fullInterval <= interval {
		return polls * full
	}
	fullShare := float64(interval) / float64(fullInterval)
	return polls * (fullShare*full + (1-fullShare)*incremental)
}

// FailureReasons are the values of the reason label of qualys_certview_poll_failures_total.
var FailureReasons = []string{"auth", "throttled", "http_4xx", "http_5xx", "transport", "timeout", "paging", "other"}

// failureReason puts an error in one of a few bounded classes, for a metric label.
func failureReason(err error) string {
	var authErr *certview.AuthError
	var thrErr *certview.ThrottledError
	var apiErr *certview.APIError
	var pageErr *certview.PageError
	var netErr net.Error
	switch {
	case errors.As(err, &authErr):
		return "auth"
	case errors.As(err, &thrErr):
		return "throttled"
	case errors.As(err, &apiErr) && apiErr.Status >= 500:
		return "http_5xx"
	case errors.As(err, &apiErr):
		return "http_4xx"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.As(err, &pageErr):
		return "transport"
	case errors.Is(err, certview.ErrTooManyPages):
		return "paging"
	}
	return "other"
}
