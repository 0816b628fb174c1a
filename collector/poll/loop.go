// Package poll owns the poll loop: when to poll, how to list (full or incremental), the
// backoff after failures, the rate-limit budget estimate, the progress log, and the
// snapshot file it loads at start and saves after each poll. It makes snapshots with the
// snapshot package and keeps the newest; the exposition reads it through its own Source
// interface, which Loop implements. The package knows nothing of what is served.
package poll

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/store"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/jonboulle/clockwork"
)

// Lister is what the poll loop needs of the certview client.
type Lister interface {
	ListCertificates(ctx context.Context, fn func([]certview.Certificate) error) (certview.ListStats, error)
	ListInstances(ctx context.Context, fn func([]certview.Instance) error) (certview.ListStats, error)
	// The Where listings AND the terms onto the configured filters (incremental polls).
	ListCertificatesWhere(ctx context.Context, terms []certview.FilterTerm, fn func([]certview.Certificate) error) (certview.ListStats, error)
	ListInstancesWhere(ctx context.Context, terms []certview.FilterTerm, fn func([]certview.Instance) error) (certview.ListStats, error)
	// Narrowable says why the configured filters cannot take more terms, if they cannot.
	Narrowable() error
}

// Options configure the poll loop.
type Options struct {
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
	Thresholds       snapshot.Thresholds
	// Owners, when set, are the owner rules: the certificates listing carries the
	// assets' tags, and each snapshot is made with its owners resolved.
	Owners    *snapshot.OwnerRules
	Clock     clockwork.Clock
	Logger    log.Logger
	Telemetry *telemetry.Telemetry
	// SnapshotPath, when set, is where the snapshot is saved after each successful poll
	// and loaded from at start.
	SnapshotPath string
	// Publish, when set, is handed every snapshot the loop makes current (from a poll, the
	// saved file or the loop it replaces), before the loop reports it: the exposition
	// prepares and serves it there.
	Publish func(*snapshot.Snapshot)
	// AfterPoll, when set, is called after every poll: with the new snapshot (already
	// current and published) on success, or with the error on failure.
	AfterPoll func(*snapshot.Snapshot, error)
}

// Health is the state of the poll loop.
type Health = telemetry.Health

// Loop polls the API on a fixed interval and keeps the last complete snapshot.
type Loop struct {
	client Lister
	opts   Options
	snap   atomic.Pointer[snapshot.Snapshot]

	pollMu sync.Mutex // polls never overlap

	mu        sync.Mutex
	health    Health
	offReason string // why incremental polls are off, or ""

	// What polls measured, per API, for the budget warning: calls of the last full
	// and of the last incremental poll (0: none yet).
	fullCalls, incrementalCalls map[string]int
}

// New makes a poll loop; Run starts it.
func New(client Lister, opts Options) *Loop {
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
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
		opts.Telemetry = telemetry.New()
	}
	if opts.Owners != nil {
		opts.Telemetry.SeedOwnerLabels(opts.Owners.Names())
	}
	if opts.RateLimit.Calls > 0 {
		opts.Telemetry.SetConfiguredLimit(opts.RateLimit.Calls)
	}
	if opts.Overlap <= 0 {
		opts.Overlap = DefaultOverlap
	}
	s := &Loop{client: client, opts: opts, fullCalls: map[string]int{}, incrementalCalls: map[string]int{}}
	opts.Telemetry.SetIncrementalOff("")
	if opts.FullInterval <= 0 {
		s.disableIncremental(telemetry.IncrementalOffConfigured, nil)
	} else if client != nil {
		if err := client.Narrowable(); err != nil {
			s.disableIncremental(telemetry.IncrementalOffFilterOR, err)
		}
	}
	return s
}

// CarryOver takes the snapshot and poll health of the loop it replaces (after a
// configuration reload). The records are shared, read-only; the owners are resolved
// again by this loop's rules, in a new snapshot.
func (s *Loop) CarryOver(prev *Loop) {
	if snap := prev.Snapshot(); snap != nil {
		snap = snap.WithOwners(s.opts.Owners)
		s.publish(snap)
		s.snap.Store(snap)
	}
	h := prev.Health()
	s.mu.Lock()
	s.health = h
	s.mu.Unlock()
}

// Interval returns the poll interval.
func (s *Loop) Interval() time.Duration { return s.opts.Interval }

// Snapshot returns the current snapshot, or nil before the first successful poll.
func (s *Loop) Snapshot() *snapshot.Snapshot { return s.snap.Load() }

// Ready says whether a snapshot exists.
func (s *Loop) Ready() bool { return s.snap.Load() != nil }

// Health returns the state of the poll loop.
func (s *Loop) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

// LoadSaved serves the saved snapshot, if there is a good one: the exporter is ready at
// once, up stays 0 until a poll succeeds in this process, and the last success is the
// saved snapshot's. A missing file is normal; a damaged one is logged and ignored.
func (s *Loop) LoadSaved() {
	if s.opts.SnapshotPath == "" {
		return
	}
	snap, err := store.Load(s.opts.SnapshotPath, s.opts.Owners)
	switch {
	case errors.Is(err, store.ErrNoSnapshot):
		level.Info(s.opts.Logger).Log("msg", "no saved snapshot yet", "path", s.opts.SnapshotPath)
		return
	case err != nil:
		level.Warn(s.opts.Logger).Log("msg", "ignoring the saved snapshot", "err", err)
		return
	}
	s.publish(snap)
	s.snap.Store(snap)
	s.mu.Lock()
	s.health.LastSuccess = snap.Taken
	s.mu.Unlock()
	s.opts.Telemetry.SetSnapshot(snap)
	level.Info(s.opts.Logger).Log("msg", "serving the saved snapshot", "path", s.opts.SnapshotPath,
		"certificates", len(snap.Certificates), "instances", len(snap.Instances), "taken", snap.Taken.UTC().Format(time.RFC3339),
		"age", s.opts.Clock.Since(snap.Taken).Round(time.Second))
}

// Run loads the saved snapshot, then polls until ctx ends: at once, or, when the saved
// snapshot is younger than the interval, when it falls due (a restart costs no API
// calls). Then every interval; after repeated failures the pause grows (doubling from
// the second failure) up to MaxBackoff.
func (s *Loop) Run(ctx context.Context) {
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
func (s *Loop) sleep(ctx context.Context, d time.Duration) bool {
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
func (s *Loop) nextDelay() time.Duration {
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
// builds a snapshot and makes it current. A failed poll keeps the previous snapshot, and
// with it the watermark.
func (s *Loop) Poll(ctx context.Context) error {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	start := s.opts.Clock.Now()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()

	prev := s.Snapshot()
	kind, why := s.pollKind(prev, start)
	level.Debug(s.opts.Logger).Log("msg", "poll starting", "kind", kind, "why", why)
	before := s.opts.Telemetry.Progress()
	stopProgress := s.logProgress(ctx, start, before)
	l := s.list(ctx, kind, prev, start)
	stopProgress()
	end := s.opts.Clock.Now()
	took := end.Sub(start)
	err := l.err
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	s.opts.Telemetry.SetLastPoll(l.kind, l.stats)
	if err != nil {
		s.failed(l.kind, start, took, err)
		return err
	}
	// Build outside the lock: scrapes read the health meanwhile.
	snap := l.finish(l.builder, end, took)
	s.succeeded(snap, l, start, took, before)
	return nil
}

// list runs a poll's listings: incremental when kind says so, and full instead when the
// API refuses an incremental filter.
func (s *Loop) list(ctx context.Context, kind string, prev *snapshot.Snapshot, start time.Time) *listing {
	if kind == snapshot.PollIncremental {
		l := s.listIncremental(ctx, prev, start)
		if !l.refused {
			return l
		}
		s.disableIncremental(telemetry.IncrementalOffFilterRefused, l.err)
	}
	return s.listFull(ctx, prev, start)
}

// failed records a failed poll; the previous snapshot stays current.
func (s *Loop) failed(kind string, start time.Time, took time.Duration, err error) {
	reason := failureReason(err)
	s.mu.Lock()
	s.health.LastAttempt = start
	s.health.LastDuration = took
	s.health.Up = false
	s.health.ConsecutiveFailures++
	s.health.LastError = err.Error()
	s.health.LastErrorReason = reason
	failures := s.health.ConsecutiveFailures
	s.mu.Unlock()
	s.opts.Telemetry.PollEnded(reason)
	level.Error(s.opts.Logger).Log("msg", "poll failed; keeping the previous snapshot", "kind", kind, "reason", reason, "err", err,
		"duration", took.Round(time.Millisecond), "consecutive_failures", failures, "have_snapshot", s.Ready())
	if s.opts.AfterPoll != nil {
		s.opts.AfterPoll(nil, err)
	}
}

// succeeded makes snap current, records the poll and saves the snapshot file.
func (s *Loop) succeeded(snap *snapshot.Snapshot, l *listing, start time.Time, took time.Duration, before telemetry.Progress) {
	tel := s.opts.Telemetry
	s.publish(snap)
	s.mu.Lock()
	s.snap.Store(snap)
	s.health.LastAttempt = start
	s.health.LastDuration = took
	s.health.Up = true
	s.health.LastSuccess = snap.Taken
	s.health.ConsecutiveFailures = 0
	s.health.LastError, s.health.LastErrorReason = "", ""
	measured := s.fullCalls
	if snap.Kind == snapshot.PollIncremental {
		measured = s.incrementalCalls
	}
	for endpoint, st := range l.stats {
		measured[endpoint] = st.Pages
	}
	s.mu.Unlock()
	tel.PollEnded("")
	tel.SetSnapshot(snap)
	if o := snap.Owners; o != nil {
		tel.OwnerValuesDropped(o)
		if slices.ContainsFunc(o.Dropped, func(n int) bool { return n > 0 }) {
			level.Warn(s.opts.Logger).Log("msg", "owner labels have more distinct values than their cap; the values on the fewest instances are left empty",
				"labels", strings.Join(o.Labels, ","), "dropped", fmt.Sprint(o.Dropped))
		}
	}
	done := tel.Progress().Since(before)
	certStats, instStats := l.stats[certview.EndpointCertificates], l.stats[certview.EndpointInstances]
	level.Info(s.opts.Logger).Log("msg", "poll complete", "kind", snap.Kind, "certificates", len(snap.Certificates), "instances", len(snap.Instances),
		"calls", l.calls(), "certificate_calls", certStats.Pages, "instance_calls", instStats.Pages,
		"certificates_fetched", certStats.Records, "instances_fetched", instStats.Records,
		"skipped", certStats.Skipped+instStats.Skipped, "duplicates", certStats.Duplicates+instStats.Duplicates,
		"rate_limit_waits", done.Waits, "waited", done.Waited, "duration", took.Round(time.Millisecond))
	s.checkBudget(len(snap.Certificates), len(snap.Instances))
	s.save(snap)
	if s.opts.AfterPoll != nil {
		s.opts.AfterPoll(snap, nil)
	}
}

// publish hands snap to Options.Publish, when set.
func (s *Loop) publish(snap *snapshot.Snapshot) {
	if s.opts.Publish != nil {
		s.opts.Publish(snap)
	}
}

// save writes the snapshot file, when one is configured. A failure is logged and
// counted; the snapshot in memory is served regardless.
func (s *Loop) save(snap *snapshot.Snapshot) {
	if s.opts.SnapshotPath == "" {
		return
	}
	start := s.opts.Clock.Now()
	if err := store.Save(s.opts.SnapshotPath, snap); err != nil {
		s.opts.Telemetry.SnapshotSaved(false)
		level.Error(s.opts.Logger).Log("msg", "saving the snapshot failed; it is still served from memory", "err", err)
		return
	}
	s.opts.Telemetry.SnapshotSaved(true)
	level.Debug(s.opts.Logger).Log("msg", "snapshot saved", "path", s.opts.SnapshotPath, "took", s.opts.Clock.Since(start))
}
