package collector

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/go-kit/log/level"
)

// Defaults of the incremental polls.
const (
	DefaultFullInterval = 24 * time.Hour
	DefaultOverlap      = time.Hour
)

// Why incremental polls are off: the values of the reason label of
// qualys_certview_incremental_disabled.
const (
	IncrementalOffConfigured    = "configured"     // poll.full_interval is 0
	IncrementalOffFilterOR      = "filter_or"      // a configured filter joins terms by OR
	IncrementalOffFilterRefused = "filter_refused" // the API answered 400 to an incremental filter
)

// IncrementalOffReasons lists every reason, for the metric.
var IncrementalOffReasons = []string{IncrementalOffConfigured, IncrementalOffFilterOR, IncrementalOffFilterRefused}

// scannedDateLayout writes a filter date in the vendor's yyyy-MM-dd'T'HH:mm:ss'Z' form.
const scannedDateLayout = "2006-01-02T15:04:05Z"

// listing is what one poll fetched, before it becomes a snapshot.
type listing struct {
	b     *Builder
	stats map[string]certview.ListStats // summed per endpoint
	err   error
	// finish makes the snapshot once the poll has ended.
	finish func(b *Builder, end time.Time, took time.Duration) *Snapshot
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

// pollKind decides how the next poll lists: full when incremental polls are off, when
// there is no snapshot to merge into or it has no watermark (a file of an older format),
// or when the full listing it rests on started full_interval ago or more.
func (s *Scheduler) pollKind(prev *Snapshot, now time.Time) (kind, why string) {
	switch off := s.incrementalOff(); {
	case off != "":
		return PollFull, "incremental polls are off (" + off + ")"
	case prev == nil:
		return PollFull, "no snapshot yet"
	case prev.Watermark.IsZero() || prev.FullStarted.IsZero():
		return PollFull, "the snapshot has no watermark"
	case s.opts.Owners != nil && !prev.TagsListed:
		return PollFull, "the snapshot has no asset tags for the owners"
	case !now.Before(prev.FullStarted.Add(s.opts.FullInterval)):
		return PollFull, "full_interval reached"
	}
	return PollIncremental, ""
}

func (s *Scheduler) incrementalOff() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.incOff
}

// disableIncremental turns incremental polls off for the life of this scheduler (a
// reload makes a new one) and says why in the log and the metric.
func (s *Scheduler) disableIncremental(reason string, err error) {
	s.mu.Lock()
	s.incOff = reason
	s.mu.Unlock()
	s.opts.Telemetry.setIncrementalOff(reason)
	if reason != IncrementalOffConfigured {
		level.Warn(s.opts.Logger).Log("msg", "incremental polls are off: every poll lists everything", "reason", reason, "err", err)
	}
}

// both runs two listings at once (they are separate APIs with separate budgets). A
// failure cancels the other, which there is no point finishing; the first real error
// is returned, not the other's cancellation.
func both(ctx context.Context, a, b func(ctx context.Context) error) error {
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

// feeder adds pages to a builder from concurrent listings and counts them for the
// progress log.
type feeder struct {
	mu  sync.Mutex
	b   *Builder
	tel *Telemetry
}

func (f *feeder) certificates(p []certview.Certificate) error {
	f.add(len(p), func() { f.b.AddCertificates(p) })
	return nil
}

func (f *feeder) instances(p []certview.Instance) error {
	f.add(len(p), func() { f.b.AddInstances(p) })
	return nil
}

// add feeds one page of n records to the builder and counts it.
func (f *feeder) add(n int, feed func()) {
	f.mu.Lock()
	feed()
	f.mu.Unlock()
	f.tel.pages.Add(1)
	f.tel.records.Add(int64(n))
}

// newBuilder starts a poll's snapshot, keeping the assets' tags when owners are on.
func (s *Scheduler) newBuilder() *Builder {
	b := NewBuilder(s.opts.Thresholds)
	if s.opts.Owners != nil {
		b.KeepAssetTags()
	}
	return b
}

// listFull lists both APIs whole.
func (s *Scheduler) listFull(ctx context.Context, prev *Snapshot, started time.Time) *listing {
	b := s.newBuilder()
	if prev != nil {
		b.Reserve(len(prev.Certificates), len(prev.Instances))
	}
	l := &listing{b: b, stats: map[string]certview.ListStats{}}
	f := &feeder{b: b, tel: s.opts.Telemetry}
	var certStats, instStats certview.ListStats
	l.err = both(ctx, func(ctx context.Context) (err error) {
		certStats, err = s.client.ListCertificates(ctx, f.certificates)
		return err
	}, func(ctx context.Context) (err error) {
		instStats, err = s.client.ListInstances(ctx, f.instances)
		return err
	})
	l.add(certview.EndpointCertificates, certStats)
	l.add(certview.EndpointInstances, instStats)
	l.finish = func(b *Builder, end time.Time, took time.Duration) *Snapshot { return b.Build(started, end, took) }
	return l
}

// listIncremental asks only for what changed since prev's watermark, less the overlap:
//   - the instances scanned since then (every grade change comes with a rescan);
//   - the certificates with an id above the largest seen;
//   - then, by id (or by certhash when an instance names no id), the certificates that
//     changed instances name but neither prev nor the second step holds: the vendor
//     documents no id order, so new ids need not be larger.
//
// An answer holding records the filter should have left out (the API ignored it) is
// what it is, a full listing of that endpoint, and replaces prev's records of it.
func (s *Scheduler) listIncremental(ctx context.Context, prev *Snapshot, started time.Time) *listing {
	since := prev.Watermark.Add(-s.opts.Overlap).Truncate(time.Second)
	b := s.newBuilder()
	l := &listing{b: b, stats: map[string]certview.ListStats{}}
	f := &feeder{b: b, tel: s.opts.Telemetry}
	var ignoredInstances, ignoredCerts bool
	named := map[string]int64{} // certhash -> id, of the certificates changed instances serve
	fetched := map[string]bool{}
	var instStats, certStats certview.ListStats
	l.err = both(ctx, func(ctx context.Context) (err error) {
		term := certview.FilterTerm{Field: "instance.scannedDate", Operator: "GREATER_THAN_EQUAL", Value: since.UTC().Format(scannedDateLayout)}
		instStats, err = s.client.ListInstancesWhere(ctx, []certview.FilterTerm{term}, func(p []certview.Instance) error {
			for i := range p {
				if p[i].ScannedDate.Before(since) {
					ignoredInstances = true
				}
				if h := p[i].Certificate.CertHash; h != "" {
					named[h] = p[i].Certificate.ID
				}
			}
			return f.instances(p)
		})
		return err
	}, func(ctx context.Context) (err error) {
		term := certview.FilterTerm{Field: "certificate.id", Operator: "GREATER", Value: strconv.FormatInt(prev.MaxCertID, 10)}
		certStats, err = s.client.ListCertificatesWhere(ctx, []certview.FilterTerm{term}, func(p []certview.Certificate) error {
			f.mu.Lock()
			for i := range p {
				if p[i].ID <= prev.MaxCertID {
					ignoredCerts = true
				}
				fetched[p[i].CertHash] = true
			}
			f.mu.Unlock()
			return f.certificates(p)
		})
		return err
	})
	l.add(certview.EndpointInstances, instStats)
	l.add(certview.EndpointCertificates, certStats)
	if l.err == nil && !ignoredCerts {
		var st certview.ListStats
		st, ignoredCerts, l.err = s.fetchNamed(ctx, prev, named, fetched, f)
		l.add(certview.EndpointCertificates, st)
	}
	if l.err != nil {
		var apiErr *certview.APIError
		l.refused = errors.As(l.err, &apiErr) && apiErr.Status == http.StatusBadRequest
		return l
	}
	for endpoint, ignored := range map[string]bool{certview.EndpointInstances: ignoredInstances, certview.EndpointCertificates: ignoredCerts} {
		if ignored {
			s.opts.Telemetry.filterIgnored.WithLabelValues(endpoint).Inc()
			level.Warn(s.opts.Logger).Log("msg", "the API ignored the incremental filter and answered everything; the answer is taken as a full listing of the endpoint",
				"endpoint", endpoint)
		}
	}
	l.finish = func(b *Builder, end time.Time, took time.Duration) *Snapshot {
		return b.Merge(prev, ignoredCerts, ignoredInstances, started, end, took)
	}
	return l
}

// fetchNamed fetches the certificates that changed instances name and that neither
// prev nor this poll holds yet: by certificate.id IN, in chunks that fit one page each,
// or by certificate.certhash IN for an instance that names no id. ignored reports an
// answer holding a certificate that was not asked for; it is then a full listing, and
// no further chunk is asked.
func (s *Scheduler) fetchNamed(ctx context.Context, prev *Snapshot, named map[string]int64, fetched map[string]bool, f *feeder) (st certview.ListStats, ignored bool, err error) {
	var ids, hashes []string
	for h, id := range named {
		if fetched[h] || prev.HasCertificate(h) {
			continue
		}
		if id != 0 {
			ids = append(ids, strconv.FormatInt(id, 10))
		} else {
			hashes = append(hashes, h)
		}
	}
	// A chunk one short of a page answers in one call: a full page would cost a second.
	chunk := max(s.opts.PageSize-1, 1)
	for _, q := range []struct {
		field  string
		values []string
	}{{"certificate.id", ids}, {"certificate.certhash", hashes}} {
		for start := 0; start < len(q.values) && !ignored; start += chunk {
			part := q.values[start:min(start+chunk, len(q.values))]
			asked := map[string]bool{}
			for _, v := range part {
				asked[v] = true
			}
			term := certview.FilterTerm{Field: q.field, Operator: "IN", Value: strings.Join(part, ",")}
			one, err := s.client.ListCertificatesWhere(ctx, []certview.FilterTerm{term}, func(p []certview.Certificate) error {
				for i := range p {
					key := p[i].CertHash
					if q.field == "certificate.id" {
						key = strconv.FormatInt(p[i].ID, 10)
					}
					if !asked[key] {
						ignored = true
					}
				}
				return f.certificates(p)
			})
			st.Add(one)
			if err != nil {
				return st, ignored, err
			}
		}
	}
	return st, ignored, nil
}
