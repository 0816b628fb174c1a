package poll

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
)

// listing is what one poll fetched, before it becomes a snapshot.
type listing struct {
	kind    string // snapshot.PollFull or snapshot.PollIncremental
	builder *snapshot.Builder
	stats   map[string]certview.ListStats // summed per endpoint
	err     error
	// finish makes the snapshot once the poll has ended.
	finish func(b *snapshot.Builder, end time.Time, took time.Duration) *snapshot.Snapshot
	// refused: the API answered 400 to an incremental filter.
	refused bool
	// replaceCerts, replaceInstances: the API ignored the incremental filter of that
	// endpoint, and its answer, a full listing, replaces the snapshot's records of it.
	replaceCerts, replaceInstances bool
	// touched are the records it fetched, by instance id and certhash.
	touchedInstances    []int64
	touchedCertificates []string
}

func (l *listing) add(endpoint string, st certview.ListStats) {
	sum := l.stats[endpoint]
	sum.Add(st)
	l.stats[endpoint] = sum
}

// calls is the listing calls the poll made, over both APIs.
func (l *listing) calls() int {
	n := 0
	for _, st := range l.stats {
		n += st.Pages
	}
	return n
}

// concurrently runs two listings at once (they are separate APIs with separate
// budgets). A failure cancels the other, which there is no point finishing; the first
// real error is returned, not the other's cancellation.
func concurrently(ctx context.Context, a, b func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if errA = a(ctx); errA != nil {
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		if errB = b(ctx); errB != nil {
			cancel()
		}
	}()
	wg.Wait()
	if errA == nil || (errors.Is(errA, context.Canceled) && errB != nil) {
		return errB
	}
	return errA
}

// pageSink adds pages to a builder from concurrent listings and counts them for the
// progress log.
type pageSink struct {
	mu       sync.Mutex
	builder  *snapshot.Builder
	tel      *telemetry.Telemetry
	activity *Activity
	l        *listing // notes what was fetched
}

func (p *pageSink) certificates(page []certview.Certificate) error {
	p.add(len(page), func() {
		p.builder.AddCertificates(page)
		for i := range page {
			p.l.touchedCertificates = append(p.l.touchedCertificates, page[i].CertHash)
		}
	})
	return nil
}

func (p *pageSink) instances(page []certview.Instance) error {
	p.add(len(page), func() {
		p.builder.AddInstances(page)
		for i := range page {
			p.l.touchedInstances = append(p.l.touchedInstances, page[i].ID)
		}
	})
	return nil
}

// add feeds one page of n records to the builder and counts it.
func (p *pageSink) add(n int, feed func()) {
	p.mu.Lock()
	feed()
	p.mu.Unlock()
	p.tel.CountPage(n)
	p.activity.touch()
}

// newBuilder starts a poll's snapshot, keeping the assets' tags when owners are on.
func (s *Loop) newBuilder() *snapshot.Builder { return snapshot.NewBuilder(s.builderOptions()) }

// builderOptions are what the loop's snapshots are made with.
func (s *Loop) builderOptions() snapshot.Options {
	return snapshot.Options{Thresholds: s.opts.Thresholds, Owners: s.opts.Owners, Origin: s.opts.Origin,
		Cut: s.opts.Telemetry.CutValue, OutOfRange: s.opts.Telemetry.OutOfRange}
}
