package poll

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/store"
	"github.com/go-kit/log/level"
)

// fullListing is a full listing of both APIs in progress: id ranges (see ranges.go)
// listed across one poll or several, the records of the ranges done, and what
// incremental polls fetched meanwhile. The loop holds one at a time, under pollMu.
type fullListing struct {
	started time.Time
	origin  snapshot.Fingerprint
	ranged  bool // false: a configured filter joins terms by OR, so each API is listed whole

	mu      sync.Mutex // the two APIs are listed at once
	plans   map[string]*rangePlan
	builder *snapshot.Builder
	touched snapshot.Touched
	saved   time.Time // when the checkpoint was last taken
	waits   int64     // the rate-limit waits counted then
	taken   int       // checkpoints taken

	saveMu  sync.Mutex // one write of the checkpoint at a time
	written int        // the newest checkpoint written
}

// endpoints are the two listings a poll makes, in the order they are reported.
var endpoints = []string{certview.EndpointCertificates, certview.EndpointInstances}

// newFullListing plans a full listing from the previous snapshot's ids (prev may be
// nil).
func (s *Loop) newFullListing(prev *snapshot.Snapshot, started time.Time) *fullListing {
	f := &fullListing{started: started, origin: s.opts.Origin, ranged: s.rangeable(), builder: s.newBuilder(),
		plans: map[string]*rangePlan{}, touched: snapshot.Touched{Instances: map[int64]bool{}, Certificates: map[string]bool{}}}
	var certIDs, instanceIDs []int64
	if prev != nil && prev.Origin.Subscription == s.opts.Origin.Subscription {
		f.builder.Reserve(len(prev.Certificates), len(prev.Instances))
		for i := range prev.Certificates {
			if id := prev.Certificates[i].ID; id != 0 {
				certIDs = append(certIDs, id)
			}
		}
		for i := range prev.Instances {
			instanceIDs = append(instanceIDs, prev.Instances[i].ID)
		}
	}
	pages := s.pagesPerRange()
	f.plans[certview.EndpointCertificates] = newRangePlan(certIDs, pages, s.opts.PageSize)
	f.plans[certview.EndpointInstances] = newRangePlan(instanceIDs, pages, s.opts.PageSize)
	return f
}

// rangeable says whether the listings can be cut into id ranges: the configured filters
// must take more terms.
func (s *Loop) rangeable() bool { return s.client == nil || s.client.Narrowable() == nil }

// done says whether both APIs are listed.
func (f *fullListing) done() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.plans[certview.EndpointCertificates].Done && f.plans[certview.EndpointInstances].Done
}

// run lists both APIs at once, range after range, until they are done, an error, or
// (for an API with a cap) the poll's share of its budget is spent. caps are pages per
// API; 0 is no cap. A range begun is listed whole, so a cap is a little soft. A range
// that the rate limit would not let end before deadline (poll.timeout; zero: none) is
// not begun: the poll ends with ErrNoTimeLeft and the next goes on from there.
func (f *fullListing) run(ctx context.Context, s *Loop, caps map[string]int, deadline time.Time) error {
	var outOfTime atomic.Bool // an API stopped for the deadline; the other lists its range to its end
	err := concurrently(ctx, func(ctx context.Context) error {
		return f.list(ctx, s, certview.EndpointCertificates, caps[certview.EndpointCertificates], deadline, &outOfTime)
	}, func(ctx context.Context) error {
		return f.list(ctx, s, certview.EndpointInstances, caps[certview.EndpointInstances], deadline, &outOfTime)
	})
	if err == nil && outOfTime.Load() {
		err = &TimeoutError{Limit: s.opts.Timeout}
	}
	return err
}

// list lists one API's ranges in turn.
func (f *fullListing) list(ctx context.Context, s *Loop, endpoint string, budget int, deadline time.Time, outOfTime *atomic.Bool) error {
	spent := 0
	for {
		f.mu.Lock()
		plan := f.plans[endpoint]
		step, ok := plan.next()
		f.mu.Unlock()
		if !ok {
			return nil
		}
		pages := (plan.PerRange + 1) / s.opts.PageSize
		if step.Probe {
			pages = step.Pages
		}
		if budget > 0 && spent > 0 && spent+pages > budget {
			return nil // this poll's share is spent: the next poll goes on from here
		}
		if !deadline.IsZero() && !s.fitsBefore(endpoint, pages+1, deadline) {
			if spent == 0 && f.shrink(plan, s.opts.PageSize) {
				continue // no range of this size fits this poll: try one half as large
			}
			outOfTime.Store(true)
			return nil
		}
		stage := s.newBuilder()
		ids, st, err := s.listStep(ctx, endpoint, step, f.ranged, stage)
		spent += st.Pages
		full := step.Probe && st.Pages >= step.Pages && lastPageFull(st, step, s.opts.PageSize)
		f.mu.Lock()
		plan.Pages += st.Pages
		switch {
		case err != nil:
			if errors.As(context.Cause(ctx), new(*TimeoutError)) {
				plan.shrink(s.opts.PageSize) // cut short by the timeout: the rest in smaller ranges
			}
		case f.ranged && !step.whole() && !step.holds(ids):
			// Ids outside the range (the API ignored the filter), or records without an id,
			// which no range selects: this API is listed whole, in one range.
			plan.listWhole()
			level.Warn(s.opts.Logger).Log("msg", "the API answered an id range with records outside it or without an id; this listing takes the API whole",
				"endpoint", endpoint)
		case full:
			// A full probe's records are listed again by the ranges, later and so fresher:
			// only its ids are kept, as the sample that plans them.
			plan.finished(step, ids, true)
		default:
			f.builder.Absorb(stage)
			plan.Records += st.Records
			if f.ranged {
				plan.finished(step, ids, false)
			} else {
				plan.Done, plan.Ranges = true, 1
			}
		}
		f.mu.Unlock()
		s.opts.Telemetry.SetFullListing(endpoint, plan.Pages, plan.Records, f.expectedCalls(endpoint, s.opts.PageSize))
		if err != nil {
			return err
		}
		s.checkpoint(f, false)
	}
}

// shrink halves plan's ranges, under the lock.
func (f *fullListing) shrink(plan *rangePlan, pageSize int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return plan.shrink(pageSize)
}

// lastPageFull says whether all of a probe's pages were full, the last one included:
// then more records lie above what it listed.
func lastPageFull(st certview.ListStats, step idRange, pageSize int) bool {
	return st.Records+st.Duplicates+st.Skipped >= step.Pages*pageSize
}

// errProbeEnd ends a probe after its pages.
var errProbeEnd = errors.New("probe: its pages listed")

// listStep lists one step of endpoint's plan into stage and returns the ids it held.
// Without ranges (ranged false) the step is the whole API.
func (s *Loop) listStep(ctx context.Context, endpoint string, step idRange, ranged bool, stage *snapshot.Builder) ([]int64, certview.ListStats, error) {
	var ids []int64
	var st certview.ListStats
	var err error
	pages := 0
	page := func(n int) error {
		s.opts.Telemetry.CountPage(n)
		s.activity.touch()
		if pages++; step.Probe && ranged && pages >= step.Pages {
			return errProbeEnd
		}
		return nil
	}
	if endpoint == certview.EndpointCertificates {
		fn := func(p []certview.Certificate) error {
			for i := range p {
				ids = append(ids, p[i].ID)
			}
			stage.AddCertificates(p)
			return page(len(p))
		}
		if ranged {
			st, err = s.client.ListCertificatesWhere(ctx, step.terms("certificate.id"), fn)
		} else {
			st, err = s.client.ListCertificates(ctx, fn)
		}
	} else {
		fn := func(p []certview.Instance) error {
			for i := range p {
				ids = append(ids, p[i].ID)
			}
			stage.AddInstances(p)
			return page(len(p))
		}
		if ranged {
			st, err = s.client.ListInstancesWhere(ctx, step.terms("instance.id"), fn)
		} else {
			st, err = s.client.ListInstances(ctx, fn)
		}
	}
	if errors.Is(err, errProbeEnd) {
		err = nil
	}
	return ids, st, err
}

// finish makes the snapshot of a done listing: over served, the snapshot that
// incremental polls kept current meanwhile (nil for none).
func (f *fullListing) finish(served *snapshot.Snapshot, end time.Time) *snapshot.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.builder.BuildOver(served, f.touched, f.started, end, end.Sub(f.started))
}

// touch notes the records an incremental poll fetched while the listing runs.
func (f *fullListing) touch(instances []int64, certhashes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range instances {
		f.touched.Instances[id] = true
	}
	for _, h := range certhashes {
		f.touched.Certificates[h] = true
	}
}

// stats are the calls and records of each API so far, as a poll reports them.
func (f *fullListing) stats() map[string]certview.ListStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]certview.ListStats{}
	for ep, p := range f.plans {
		out[ep] = certview.ListStats{Pages: p.Pages, Records: p.Records}
	}
	return out
}

// calls is the listing calls made so far, over both APIs.
func (f *fullListing) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, p := range f.plans {
		n += p.Pages
	}
	return n
}

// expectedCalls is the fewest calls listing endpoint takes, from the size the previous
// snapshot knew; 0 when unknown.
func (f *fullListing) expectedCalls(endpoint string, pageSize int) int {
	if n := f.plans[endpoint].Known; n > 0 {
		return CallsPerPoll(n, pageSize)
	}
	return 0
}

// checkpoint saves the listing beside the snapshot file as ranges end: after each one
// when the rate limit paces the listing (the calls are what is scarce, and a save costs
// none), else at most once a minute (a fast listing would spend its time saving); and
// always when force is set (the poll ends with the listing unfinished).
func (s *Loop) checkpoint(f *fullListing, force bool) {
	if s.opts.SnapshotPath == "" {
		return
	}
	now := s.opts.Clock.Now()
	waits := s.opts.Telemetry.Progress().Waits
	f.mu.Lock()
	if !force && now.Sub(f.saved) < time.Minute && waits == f.waits {
		f.mu.Unlock()
		return
	}
	f.saved, f.waits = now, waits
	f.taken++
	seq := f.taken
	l := &store.Listing{Origin: f.origin, Started: f.started, Plans: map[string]store.RangePlan{}, Records: f.builder.Partial(),
		FQDNs: f.builder.FQDNs()}
	for ep, p := range f.plans {
		l.Plans[ep] = store.RangePlan{After: p.After, Bounds: p.Bounds, Width: p.Width, Done: p.Done, Ranges: p.Ranges,
			PerRange: p.PerRange, Pages: p.Pages, Total: p.Records, Ranged: f.ranged, Known: p.Known}
	}
	for id := range f.touched.Instances {
		l.TouchedInstances = append(l.TouchedInstances, id)
	}
	for h := range f.touched.Certificates {
		l.TouchedCertificates = append(l.TouchedCertificates, h)
	}
	f.mu.Unlock()
	// Both APIs' listings checkpoint: an older checkpoint must not replace a newer one.
	f.saveMu.Lock()
	defer f.saveMu.Unlock()
	if seq < f.written {
		return
	}
	f.written = seq
	if err := store.SaveListing(store.ListingPath(s.opts.SnapshotPath), l); err != nil {
		level.Warn(s.opts.Logger).Log("msg", "saving the full listing's checkpoint failed; a restart would start it over", "err", err)
	}
}

// resumeFullListing takes up a listing from its checkpoint.
func (s *Loop) resumeFullListing(l *store.Listing) *fullListing {
	f := &fullListing{started: l.Started, origin: l.Origin, ranged: true, plans: map[string]*rangePlan{},
		builder: snapshot.Resume(s.builderOptions(), l.Records, l.FQDNs), saved: s.opts.Clock.Now(),
		touched: snapshot.Touched{Instances: map[int64]bool{}, Certificates: map[string]bool{}}}
	for _, ep := range endpoints {
		p, ok := l.Plans[ep]
		if !ok {
			p = store.RangePlan{After: math.MinInt64}
		}
		// Ranges no larger than this configuration lists (its timeout or budget may be
		// tighter than the one that planned them).
		p.PerRange = min(max(p.PerRange, 1), max(s.pagesPerRange()*s.opts.PageSize-1, 1))
		f.ranged = f.ranged && (p.Ranged || !ok)
		f.plans[ep] = &rangePlan{After: p.After, Bounds: p.Bounds, Width: p.Width, Done: p.Done, Ranges: p.Ranges,
			PerRange: p.PerRange, FirstProbe: 1, Pages: p.Pages, Records: p.Total, Known: p.Known}
	}
	for _, id := range l.TouchedInstances {
		f.touched.Instances[id] = true
	}
	for _, h := range l.TouchedCertificates {
		f.touched.Certificates[h] = true
	}
	if !f.ranged {
		// A listing of whole APIs keeps nothing between attempts.
		return s.newFullListing(nil, s.opts.Clock.Now())
	}
	return f
}
