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
	// The Where listings AND the terms onto the configured filters (incremental polls,
	// and the id ranges of full listings).
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
	Overlap time.Duration
	// Timeout, when set, caps a poll; 0 is no cap. A poll cut short keeps the ranges of
	// its full listing that it finished (see full.go).
	Timeout time.Duration
	// StallTimeout fails a poll that makes no progress for this long: no answer from the
	// API and no announced wait. Default DefaultStallTimeout.
	StallTimeout time.Duration
	// Activity is fed by the client's hooks (Activity.Hooks) for the stall watchdog; nil:
	// the loop sees only the pages it is handed.
	Activity         *Activity
	MaxBackoff       time.Duration // the longest pause after repeated failures; default 4x Interval
	ProgressInterval time.Duration // how often a running poll logs its progress; default 1m
	PageSize         int           // to estimate calls; default 200
	RateLimit        certview.RateLimit
	Thresholds       snapshot.Thresholds
	// MaxShrink is the share (0 to 1) of the served snapshot's certificates, or of its
	// instances, that a full listing may lose before it is held unpublished until the
	// next full listing confirms it (see shrink.go). 0: DefaultMaxShrink; 1: no guard.
	MaxShrink float64
	// Owners, when set, are the owner rules: the certificates listing carries the
	// assets' tags, and each snapshot is made with its owners resolved.
	Owners *snapshot.OwnerRules
	// Origin is the fingerprint of the settings this loop lists under. A saved snapshot
	// or checkpoint of another subscription is never served or resumed; one of the same
	// subscription under other settings is served until a full listing replaces it.
	Origin    snapshot.Fingerprint
	Clock     clockwork.Clock
	Logger    log.Logger
	Telemetry *telemetry.Telemetry
	// SnapshotPath, when set, is where the snapshot is saved after each successful poll
	// and loaded from at start; a full listing in progress is checkpointed beside it.
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

	pollMu   sync.Mutex      // polls never overlap
	full     *fullListing    // the full listing in progress, or nil; under pollMu
	held     *heldListing    // a shrunk full listing awaiting confirmation, or nil; under pollMu
	ref      shrinkReference // the largest inventory of the last day; under pollMu
	activity *Activity

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
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
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
	if opts.MaxShrink <= 0 {
		opts.MaxShrink = DefaultMaxShrink
	}
	s := &Loop{client: client, opts: opts, fullCalls: map[string]int{}, incrementalCalls: map[string]int{}, activity: opts.Activity}
	if s.activity == nil {
		s.activity = NewActivity(opts.Clock)
	}
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

// CarryOver takes the snapshot, the full listing in progress and the poll health of the
// loop it replaces (after a configuration reload; prev has stopped). The records are
// shared, read-only; the owners are resolved again by this loop's rules, in a new
// snapshot. A snapshot of another subscription is dropped, and one listed under other
// settings makes the next poll full; a listing in progress goes on only under the same
// settings.
func (s *Loop) CarryOver(prev *Loop) {
	if snap := prev.Snapshot(); snap != nil {
		if keep, why := s.acceptOrigin(snap.Origin, "the served snapshot"); keep {
			snap = snap.WithOwners(s.opts.Owners)
			s.publish(snap)
			s.snap.Store(snap)
		} else {
			level.Warn(s.opts.Logger).Log("msg", "dropping the served snapshot after the reload", "why", why)
		}
	}
	prev.pollMu.Lock()
	// A held listing waits on: the next full listing confirms it or not under this
	// configuration's poll.max_shrink. Without the snapshot it was held against (or with
	// one of another subscription), it goes.
	s.ref = prev.ref
	if s.held = prev.held; s.held != nil && (s.Snapshot() == nil || !sameSubscription(s.Snapshot().Origin, s.opts.Origin)) {
		s.held = nil
	}
	if s.held != nil {
		s.opts.Telemetry.SetShrinkHeld(true, s.held.certificates, s.held.instances)
	} else {
		s.opts.Telemetry.SetShrinkHeld(false, 0, 0)
	}
	if f := prev.full; f != nil && f.origin == s.opts.Origin {
		s.full = f
		f.mu.Lock()
		for _, p := range f.plans { // no larger than this configuration's ranges
			p.PerRange = min(p.PerRange, max(s.pagesPerRange()*s.opts.PageSize-1, 1))
		}
		f.mu.Unlock()
	}
	prev.pollMu.Unlock()
	h := prev.Health()
	s.mu.Lock()
	s.health = h
	s.mu.Unlock()
}

// Interval returns the poll interval.
func (s *Loop) Interval() time.Duration { return s.opts.Interval }

// Snapshot returns the current snapshot, or nil before the first successful poll.
func (s *Loop) Snapshot() *snapshot.Snapshot { return s.snap.Load() }

// acceptOrigin says whether records of origin may be served under this loop's settings:
// not when they are another subscription's. why says what differs, if anything (a
// content difference makes the next poll full, see pollKind).
func (s *Loop) acceptOrigin(origin snapshot.Fingerprint, what string) (bool, string) {
	want := s.opts.Origin
	switch {
	case origin == want:
		return true, ""
	case origin.Subscription == "":
		return true, what + " was saved before fingerprints were kept: the next poll lists everything"
	case origin.Subscription != want.Subscription:
		return false, what + " is of another subscription (qualys.api_url, platform, username or client_id changed)"
	}
	return true, what + " was listed under other settings (filters, asset type, includes, excluded fields, owners or thresholds): the next poll lists everything"
}

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
// saved snapshot's. A missing file is normal; a damaged one, or one of another
// subscription, is logged and ignored. It also removes what an interrupted save left
// behind, and takes up the checkpoint of a full listing that was cut short.
func (s *Loop) LoadSaved() {
	if s.opts.SnapshotPath == "" {
		return
	}
	for _, path := range []string{s.opts.SnapshotPath, store.ListingPath(s.opts.SnapshotPath)} {
		if n, err := store.CleanTemp(path); n > 0 || err != nil {
			level.Info(s.opts.Logger).Log("msg", "removed the temporary files of an interrupted save", "path", path, "files", n, "err", err)
		}
	}
	if s.full == nil { // a listing carried over from the loop this one replaced is newer
		s.loadListing()
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
	keep, why := s.acceptOrigin(snap.Origin, "the saved snapshot")
	if !keep {
		level.Warn(s.opts.Logger).Log("msg", "ignoring the saved snapshot", "path", s.opts.SnapshotPath, "why", why)
		return
	}
	if why != "" {
		level.Info(s.opts.Logger).Log("msg", "serving the saved snapshot until a full listing replaces it", "why", why)
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

// loadListing takes up the checkpoint of a full listing, when there is one of this
// subscription under these settings; any other is removed.
func (s *Loop) loadListing() {
	path := store.ListingPath(s.opts.SnapshotPath)
	l, err := store.LoadListing(path)
	switch {
	case errors.Is(err, store.ErrNoListing):
		return
	case err != nil:
		level.Warn(s.opts.Logger).Log("msg", "ignoring the full listing's checkpoint; the listing starts over", "err", err)
	case l.Origin != s.opts.Origin:
		_, why := s.acceptOrigin(l.Origin, "the full listing's checkpoint")
		level.Warn(s.opts.Logger).Log("msg", "ignoring the full listing's checkpoint; the listing starts over", "why", why)
	default:
		s.full = s.resumeFullListing(l)
		level.Info(s.opts.Logger).Log("msg", "going on with the full listing cut short", "started", l.Started.UTC().Format(time.RFC3339),
			"certificates_listed", len(l.Records.Certificates), "instances_listed", len(l.Records.Instances))
		return
	}
	if err := store.RemoveListing(path); err != nil {
		level.Warn(s.opts.Logger).Log("msg", "removing the full listing's checkpoint", "err", err)
	}
}

// Run loads the saved snapshot, then polls until ctx ends: at once, or, when the saved
// snapshot is younger than the interval, when it falls due (a restart costs no API
// calls). Then every interval; after repeated failures the pause grows (doubling from
// the second failure) up to MaxBackoff.
func (s *Loop) Run(ctx context.Context) {
	if s.Snapshot() == nil {
		s.LoadSaved()
	}
	if snap := s.Snapshot(); snap != nil && s.full == nil {
		wait := snap.Taken.Add(s.opts.Interval).Sub(s.opts.Clock.Now())
		if wait > s.opts.Interval {
			// A snapshot dated in the future (a clock that was wrong, or a file written by
			// someone): it is due now, not when its date comes.
			level.Warn(s.opts.Logger).Log("msg", "the saved snapshot is dated in the future; polling now", "taken", snap.Taken.UTC().Format(time.RFC3339))
			wait = 0
		}
		if wait > 0 {
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

// pollPlan is what a poll lists.
type pollPlan struct {
	incremental bool // only what changed since the snapshot, merged into it
	full        bool // a full listing, begun now or going on
	// shared: the full listing shares the budget with the incremental polls, a slice per
	// poll (see sliceCaps); else it runs until it is done.
	shared bool
	why    string
}

// planPoll decides what the next poll lists. Full, alone, when incremental polls cannot
// be made (see pollKind). When the full listing falls due (full_interval) it shares the
// budget with the incremental polls: each poll lists what changed, then goes on with the
// full listing for its share of the budget, unless the whole listing fits in one share.
func (s *Loop) planPoll(prev *snapshot.Snapshot, now time.Time) pollPlan {
	if kind, why := s.pollKind(prev, now); kind == snapshot.PollFull {
		return pollPlan{full: true, why: why}
	}
	why := "full_interval reached"
	if s.held != nil {
		why = "a shrunk full listing is held until a full listing confirms it"
	}
	switch {
	case s.full != nil:
		return pollPlan{incremental: true, full: true, shared: true, why: "a full listing is in progress"}
	case s.held != nil || !now.Before(prev.FullStarted.Add(s.opts.FullInterval)):
		if s.fitsOneShare(prev) {
			return pollPlan{full: true, why: why}
		}
		return pollPlan{incremental: true, full: true, shared: true, why: why + "; the full listing shares the budget with incremental polls"}
	}
	return pollPlan{incremental: true}
}

// Poll lists certificates and instances, whole or only what changed (see planPoll),
// builds a snapshot and makes it current. A failed poll keeps the previous snapshot, and
// with it the watermark; a full listing cut short keeps the ranges it finished.
func (s *Loop) Poll(ctx context.Context) error {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	start := s.opts.Clock.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopWatch := s.watch(ctx, cancel)
	defer stopWatch()

	prev := s.Snapshot()
	plan := s.planPoll(prev, start)
	level.Debug(s.opts.Logger).Log("msg", "poll starting", "incremental", plan.incremental, "full", plan.full, "why", plan.why)
	before := s.opts.Telemetry.Progress()
	stopProgress := s.logProgress(ctx, start, before)
	r := s.runPlan(ctx, plan, prev, start)
	stopProgress()
	if ctx.Err() != nil && (r.err != nil || r.made == nil) {
		r.err = context.Cause(ctx) // a stall or the timeout, not the cancellation it caused
	}
	took := s.opts.Clock.Since(start)
	s.opts.Telemetry.SetLastPoll(r.kind, r.stats)
	if r.err != nil {
		s.failed(r.kind, start, took, r.err)
	} else {
		s.succeeded(r, start, took, before)
	}
	if r.made != nil {
		s.save(r.made) // what the poll made is good, even when a later part of it failed
	}
	if s.opts.AfterPoll != nil {
		if r.err != nil {
			s.opts.AfterPoll(nil, r.err)
		} else {
			s.opts.AfterPoll(s.Snapshot(), nil)
		}
	}
	return r.err
}

// pollResult is what a poll did.
type pollResult struct {
	kind  string                        // snapshot.PollFull or PollIncremental
	stats map[string]certview.ListStats // of the listing that made the snapshot
	calls int                           // listing calls of every listing in the poll
	made  *snapshot.Snapshot            // the snapshot it made current, if any
	// held: a full listing ended but was held for its shrink (see shrink.go); what it
	// measured is not the inventory's size.
	held bool
	err  error
}

// runPlan lists what plan says: the incremental poll first, its snapshot made current at
// once, then the full listing.
func (s *Loop) runPlan(ctx context.Context, plan pollPlan, prev *snapshot.Snapshot, start time.Time) pollResult {
	r := pollResult{kind: snapshot.PollFull}
	if plan.incremental {
		r.kind = snapshot.PollIncremental
		l := s.listIncremental(ctx, prev, start)
		r.calls += l.calls()
		switch {
		case l.refused:
			s.disableIncremental(telemetry.IncrementalOffFilterRefused, l.err)
			plan = pollPlan{full: true}
			r.kind = snapshot.PollFull
		case l.err != nil || ctx.Err() != nil:
			r.stats, r.err = l.stats, l.err
			return r
		default:
			now := s.opts.Clock.Now()
			made := l.finish(l.builder, now, now.Sub(start))
			r.stats = l.stats
			if (l.replaceCerts || l.replaceInstances) && !s.guardShrink(prev, made, now) {
				// The API answered a filter with a full listing of an endpoint that
				// shrank: held like any full listing. A full listing in progress goes on.
				r.held = true
				break
			}
			r.made = made
			s.makeCurrent(r.made)
			if s.full != nil {
				s.full.touch(l.touchedInstances, l.touchedCertificates)
			}
			prev = r.made
		}
	}
	if !plan.full {
		return r
	}
	if s.full == nil {
		s.full = s.newFullListing(prev, start)
		s.logListingStart(s.full)
	}
	var caps map[string]int
	if plan.shared {
		caps = s.sliceCaps()
	}
	var deadline time.Time
	if s.opts.Timeout > 0 {
		deadline = start.Add(s.opts.Timeout)
	}
	before := s.full.calls()
	err := s.full.run(ctx, s, caps, deadline)
	r.calls += s.full.calls() - before
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil || !s.full.done() {
		s.checkpoint(s.full, true)
		if err != nil {
			r.err = err
			if !plan.incremental {
				r.stats = s.full.stats()
			}
			return r
		}
		s.logListingProgress(s.full, "the full listing goes on at the next poll")
		return r
	}
	now := s.opts.Clock.Now()
	made := s.full.finish(prev, now)
	r.kind, r.stats = snapshot.PollFull, s.full.stats()
	s.full = nil
	s.opts.Telemetry.FullListingEnded()
	if s.guardShrink(prev, made, now) {
		r.made = made
		s.makeCurrent(r.made)
	} else {
		r.held = true
	}
	// Done, published or held: a restart must not take it up again.
	if s.opts.SnapshotPath != "" {
		if err := store.RemoveListing(store.ListingPath(s.opts.SnapshotPath)); err != nil {
			level.Warn(s.opts.Logger).Log("msg", "removing the full listing's checkpoint", "err", err)
		}
	}
	return r
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
}

// makeCurrent publishes snap and makes it the loop's snapshot.
func (s *Loop) makeCurrent(snap *snapshot.Snapshot) {
	tel := s.opts.Telemetry
	s.publish(snap)
	s.snap.Store(snap)
	tel.SetSnapshot(snap)
	if o := snap.Owners; o != nil {
		tel.OwnerValuesDropped(o)
		if slices.ContainsFunc(o.Dropped, func(n int) bool { return n > 0 }) {
			level.Warn(s.opts.Logger).Log("msg", "owner labels have more distinct values than their cap; the values on the fewest instances are left empty",
				"labels", strings.Join(o.Labels, ","), "dropped", fmt.Sprint(o.Dropped))
		}
	}
}

// succeeded records a successful poll and what it measured.
func (s *Loop) succeeded(r pollResult, start time.Time, took time.Duration, before telemetry.Progress) {
	snap := s.Snapshot()
	s.mu.Lock()
	s.health.LastAttempt = start
	s.health.LastDuration = took
	s.health.Up = true
	s.health.LastSuccess = snap.Taken
	s.health.ConsecutiveFailures = 0
	s.health.LastError, s.health.LastErrorReason = "", ""
	measured := s.fullCalls
	if r.kind == snapshot.PollIncremental {
		measured = s.incrementalCalls
	}
	for endpoint, st := range r.stats {
		if !r.held { // a held listing's calls are not what listing the inventory takes
			measured[endpoint] = st.Pages
		}
	}
	s.mu.Unlock()
	s.opts.Telemetry.PollEnded("")
	done := s.opts.Telemetry.Progress().Since(before)
	certStats, instStats := r.stats[certview.EndpointCertificates], r.stats[certview.EndpointInstances]
	kv := []any{"msg", "poll complete", "kind", r.kind, "certificates", len(snap.Certificates), "instances", len(snap.Instances),
		"calls", r.calls, "certificate_calls", certStats.Pages, "instance_calls", instStats.Pages,
		"certificates_fetched", certStats.Records, "instances_fetched", instStats.Records,
		"skipped", certStats.Skipped + instStats.Skipped, "duplicates", certStats.Duplicates + instStats.Duplicates,
		"rate_limit_waits", done.Waits, "waited", done.Waited, "duration", took.Round(time.Millisecond)}
	if r.held { // the counts are the served snapshot's, which stays
		kv = append(kv, "shrink_held", true)
	}
	level.Info(s.opts.Logger).Log(kv...)
	s.checkBudget(len(snap.Certificates), len(snap.Instances))
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
