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
	mu      sync.Mutex
	builder *snapshot.Builder
	tel     *telemetry.Telemetry
}

func (p *pageSink) certificates(page []certview.Certificate) error {
	p.add(len(page), func() { p.builder.AddCertificates(page) })
	return nil
}

func (p *pageSink) instances(page []certview.Instance) error {
	p.add(len(page), func() { p.builder.AddInstances(page) })
	return nil
}

// add feeds one page of n records to the builder and counts it.
func (p *pageSink) add(n int, feed func()) {
	p.mu.Lock()
	feed()
	p.mu.Unlock()
	p.tel.CountPage(n)
}

// newBuilder starts a poll's snapshot, keeping the assets' tags when owners are on.
func (s *Loop) newBuilder() *snapshot.Builder {
	return snapshot.NewBuilder(snapshot.Options{Thresholds: s.opts.Thresholds, Owners: s.opts.Owners})
}

// listFull lists both APIs whole.
func (s *Loop) listFull(ctx context.Context, prev *snapshot.Snapshot, started time.Time) *listing {
	b := s.newBuilder()
	if prev != nil {
		b.Reserve(len(prev.Certificates), len(prev.Instances))
	}
	l := &listing{kind: snapshot.PollFull, builder: b, stats: map[string]certview.ListStats{}}
	sink := &pageSink{builder: b, tel: s.opts.Telemetry}
	var certStats, instStats certview.ListStats
	l.err = concurrently(ctx, func(ctx context.Context) (err error) {
		certStats, err = s.client.ListCertificates(ctx, sink.certificates)
		return err
	}, func(ctx context.Context) (err error) {
		instStats, err = s.client.ListInstances(ctx, sink.instances)
		return err
	})
	l.add(certview.EndpointCertificates, certStats)
	l.add(certview.EndpointInstances, instStats)
	l.finish = func(b *snapshot.Builder, end time.Time, took time.Duration) *snapshot.Snapshot {
		return b.Build(started, end, took)
	}
	return l
}
