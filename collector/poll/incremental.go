package poll

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/go-kit/log/level"
)

// Defaults of the incremental polls.
const (
	DefaultFullInterval = 24 * time.Hour
	DefaultOverlap      = time.Hour
)

// scannedDateLayout writes a filter date in the vendor's yyyy-MM-dd'T'HH:mm:ss'Z' form.
const scannedDateLayout = "2006-01-02T15:04:05Z"

// pollKind says whether the next poll can be incremental: not when incremental polls are
// off, when there is no snapshot to merge into, when it has no watermark (a file of an
// older format) or no tags for the owners, or when it was listed under other settings.
// When the full listing falls due is planPoll's concern.
func (s *Loop) pollKind(prev *snapshot.Snapshot, now time.Time) (kind, why string) {
	switch off := s.incrementalOffReason(); {
	case off != "":
		return snapshot.PollFull, "incremental polls are off (" + off + ")"
	case prev == nil:
		return snapshot.PollFull, "no snapshot yet"
	case prev.Watermark.IsZero() || prev.FullStarted.IsZero():
		return snapshot.PollFull, "the snapshot has no watermark"
	case s.opts.Owners != nil && !prev.TagsListed:
		return snapshot.PollFull, "the snapshot has no asset tags for the owners"
	case prev.Origin != s.opts.Origin:
		return snapshot.PollFull, "the snapshot was listed under other settings"
	}
	return snapshot.PollIncremental, ""
}

func (s *Loop) incrementalOffReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offReason
}

// disableIncremental turns incremental polls off for the life of this loop (a
// reload makes a new one) and says why in the log and the metric.
func (s *Loop) disableIncremental(reason string, err error) {
	s.mu.Lock()
	s.offReason = reason
	s.mu.Unlock()
	s.opts.Telemetry.SetIncrementalOff(reason)
	if reason != telemetry.IncrementalOffConfigured {
		level.Warn(s.opts.Logger).Log("msg", "incremental polls are off: every poll lists everything", "reason", reason, "err", err)
	}
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
func (s *Loop) listIncremental(ctx context.Context, prev *snapshot.Snapshot, started time.Time) *listing {
	since := prev.Watermark.Add(-s.opts.Overlap).Truncate(time.Second)
	l := &listing{kind: snapshot.PollIncremental, builder: s.newBuilder(), stats: map[string]certview.ListStats{}}
	sink := &pageSink{builder: l.builder, tel: s.opts.Telemetry, activity: s.activity, l: l}
	var ignoredInstances, ignoredCerts bool
	named := map[string]int64{} // certhash -> id, of the certificates changed instances serve
	fetched := map[string]bool{}
	var instStats, certStats certview.ListStats
	l.err = concurrently(ctx, func(ctx context.Context) (err error) {
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
			return sink.instances(p)
		})
		return err
	}, func(ctx context.Context) (err error) {
		term := certview.FilterTerm{Field: "certificate.id", Operator: "GREATER", Value: strconv.FormatInt(prev.MaxCertID, 10)}
		certStats, err = s.client.ListCertificatesWhere(ctx, []certview.FilterTerm{term}, func(p []certview.Certificate) error {
			sink.mu.Lock()
			for i := range p {
				if p[i].ID <= prev.MaxCertID {
					ignoredCerts = true
				}
				fetched[p[i].CertHash] = true
			}
			sink.mu.Unlock()
			return sink.certificates(p)
		})
		return err
	})
	l.add(certview.EndpointInstances, instStats)
	l.add(certview.EndpointCertificates, certStats)
	if l.err == nil && !ignoredCerts {
		var st certview.ListStats
		st, ignoredCerts, l.err = s.fetchNamed(ctx, prev, named, fetched, sink)
		l.add(certview.EndpointCertificates, st)
	}
	if l.err != nil {
		var apiErr *certview.APIError
		l.refused = errors.As(l.err, &apiErr) && apiErr.Status == http.StatusBadRequest
		return l
	}
	for endpoint, ignored := range map[string]bool{certview.EndpointInstances: ignoredInstances, certview.EndpointCertificates: ignoredCerts} {
		if ignored {
			s.opts.Telemetry.FilterIgnored(endpoint)
			level.Warn(s.opts.Logger).Log("msg", "the API ignored the incremental filter and answered everything; the answer is taken as a full listing of the endpoint",
				"endpoint", endpoint)
		}
	}
	l.replaceCerts, l.replaceInstances = ignoredCerts, ignoredInstances
	l.finish = func(b *snapshot.Builder, end time.Time, took time.Duration) *snapshot.Snapshot {
		return b.Merge(prev, ignoredCerts, ignoredInstances, started, end, took)
	}
	return l
}

// fetchNamed fetches the certificates that changed instances name and that neither
// prev nor this poll holds yet: by certificate.id IN, in chunks that fit one page each,
// or by certificate.certhash IN for an instance that names no id. ignored reports an
// answer holding a certificate that was not asked for; it is then a full listing, and
// no further chunk is asked.
func (s *Loop) fetchNamed(ctx context.Context, prev *snapshot.Snapshot, named map[string]int64, fetched map[string]bool, sink *pageSink) (st certview.ListStats, ignored bool, err error) {
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
				return sink.certificates(p)
			})
			st.Add(one)
			if err != nil {
				return st, ignored, err
			}
		}
	}
	return st, ignored, nil
}
