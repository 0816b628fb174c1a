package exposition

import (
	"strconv"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
)

// Exporter renders the source's snapshot and health as const metrics, one per series on
// every scrape: the straightforward design, kept in the tests as the reference that the
// served Exposition is compared with, and as the baseline of the scrape benchmark.
type Exporter struct {
	source       referenceSource
	pollInterval time.Duration
	clock        clockwork.Clock
	perCert      bool
	perInst      bool
	scores       bool

	notAfter, notBefore, expiryDays, certInfo        *prometheus.Desc
	served, expiryHist, instRank, trustIgnored       *prometheus.Desc
	instScore, instInfo                              *prometheus.Desc
	certificates, expired, expiring, selfSigned      *prometheus.Desc
	weakKey, weakSig, instances, protocolSupport     *prometheus.Desc
	up, lastSuccess, lastAttempt, pollDuration, fail *prometheus.Desc
	snapshotAge, interval                            *prometheus.Desc
	successor, servedLeaves, lifetimeOver            *prometheus.Desc
	ownerInst, ownerCerts                            *prometheus.Desc // nil when owners are off
	ownerLifetimeOver                                *prometheus.Desc // nil when owners are off
}

// ExporterOptions choose what the reference exposes.
type ExporterOptions struct {
	Interval       time.Duration
	PerCertificate bool
	PerInstance    bool
	// InstanceScoreCategories serves instance_score.
	InstanceScoreCategories bool
	// OwnerLabels are the owner label names (owners.labels), for snapshots whose owners
	// are resolved; nil when owners are off.
	OwnerLabels []string
	Clock       clockwork.Clock
}

// NewExporter declares the descriptors.
// referenceSource is what the reference reads: the snapshot and the poll health.
type referenceSource interface {
	Snapshot() *snapshot.Snapshot
	PollHealth
}

func NewExporter(source referenceSource, opts ExporterOptions) *Exporter {
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	// The names and HELP texts are the exposition's (one definition for both).
	d := func(f family, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(f.name, f.help, labels, nil)
	}
	owned := func(f family, labels ...string) *prometheus.Desc {
		return d(f, append(labels, opts.OwnerLabels...)...)
	}
	e := &Exporter{
		source: source, pollInterval: opts.Interval, clock: opts.Clock, perCert: opts.PerCertificate, perInst: opts.PerInstance,
		scores: opts.InstanceScoreCategories,

		notAfter:   d(famNotAfter, "certhash"),
		notBefore:  d(famNotBefore, "certhash"),
		expiryDays: d(famExpiryDays, "certhash"),
		certInfo:   d(famCertificateInfo, certInfoLabels...),
		served:     d(famCertificateInstances, "certhash"),
		expiryHist: d(famExpiryHistogram),

		successor:    d(famSuccessor, "certhash", "successor_certhash"),
		servedLeaves: d(famIssuerServedLeaves, "certhash"),
		lifetimeOver: d(famLifetimeOver, "cap_days"),

		instRank:     d(famGradeRank, "instance_id", "certhash", "grade"),
		trustIgnored: d(famGradeTrustIgnored, "instance_id", "certhash", "grade"),
		instScore:    d(famScore, "instance_id", "certhash", "category"),
		instInfo:     owned(famInstanceInfo, instanceInfoLabels...),

		certificates:    d(famCertificates),
		expired:         d(famExpired),
		expiring:        d(famExpiring, "within_days"),
		selfSigned:      d(famSelfSigned),
		weakKey:         d(famWeakKey),
		weakSig:         d(famWeakSignature),
		instances:       d(famInstances, "grade"),
		protocolSupport: d(famProtocolSupport, "protocol"),

		up:           d(famUp),
		lastSuccess:  d(famLastSuccess),
		lastAttempt:  d(famLastAttempt),
		pollDuration: d(famPollDuration),
		fail:         d(famFailures),
		interval:     d(famInterval),
		snapshotAge:  d(famSnapshotAge),
	}
	if opts.OwnerLabels != nil {
		e.ownerInst, e.ownerCerts = owned(famOwnerInstances, "grade"), owned(famOwnerCertificates)
		e.ownerLifetimeOver = owned(famOwnerLifetimeOver, "cap_days")
	}
	return e
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{e.notAfter, e.notBefore, e.expiryDays, e.certInfo, e.served, e.expiryHist,
		e.instRank, e.trustIgnored, e.instScore, e.instInfo,
		e.certificates, e.expired, e.expiring, e.selfSigned, e.weakKey, e.weakSig, e.instances, e.protocolSupport,
		e.up, e.lastSuccess, e.lastAttempt, e.pollDuration, e.fail, e.snapshotAge, e.interval,
		e.successor, e.servedLeaves, e.lifetimeOver} {
		ch <- d
	}
	if e.ownerInst != nil {
		ch <- e.ownerInst
		ch <- e.ownerCerts
		ch <- e.ownerLifetimeOver
	}
}

// gauge makes a const gauge; a bad label value becomes a scrape error for that series,
// never a panic.
func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

// Collect implements prometheus.Collector. It reads the current snapshot only.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	now := e.clock.Now()
	h := e.source.Health()
	ch <- gauge(e.up, boolValue(h.Up))
	ch <- gauge(e.fail, float64(h.ConsecutiveFailures))
	ch <- gauge(e.interval, e.pollInterval.Seconds())
	if !h.LastAttempt.IsZero() {
		ch <- gauge(e.lastAttempt, unixSeconds(h.LastAttempt))
		ch <- gauge(e.pollDuration, h.LastDuration.Seconds())
	}
	s := e.source.Snapshot()
	if s == nil {
		return
	}
	ch <- gauge(e.lastSuccess, unixSeconds(s.Taken))
	ch <- gauge(e.snapshotAge, secondsBetween(now, s.Taken))

	ch <- gauge(e.certificates, float64(len(s.Certificates)))
	ch <- gauge(e.expired, float64(s.Expired(now)))
	for _, days := range ExpiringWindows {
		ch <- gauge(e.expiring, float64(s.ExpiringWithin(now, time.Duration(days)*24*time.Hour)), strconv.Itoa(days))
	}
	buckets, sum, count := s.ExpiryHistogram(now)
	byBound := make(map[float64]uint64, len(buckets))
	for k, le := range snapshot.ExpiryBucketDays {
		byBound[le*86400] = buckets[k]
	}
	if h, err := prometheus.NewConstHistogram(e.expiryHist, count, sum, byBound); err == nil {
		ch <- h
	} else {
		ch <- prometheus.NewInvalidMetric(e.expiryHist, err)
	}
	ch <- gauge(e.selfSigned, float64(s.SelfSigned))
	ch <- gauge(e.weakKey, float64(s.WeakKey))
	ch <- gauge(e.weakSig, float64(s.WeakSignature))
	for k, days := range snapshot.LifetimeCapDays {
		ch <- gauge(e.lifetimeOver, float64(s.LifetimeOver[k]), strconv.Itoa(days))
	}
	for g, n := range s.GradeCounts {
		ch <- gauge(e.instances, float64(n), g)
	}
	for p, n := range s.ProtocolCounts {
		ch <- gauge(e.protocolSupport, float64(n), snapshot.ProtocolName(p))
	}

	if e.perCert {
		for i := range s.Certificates {
			c := &s.Certificates[i]
			if !c.NotAfter.IsZero() {
				ch <- gauge(e.notAfter, unixSeconds(c.NotAfter), c.CertHash)
				ch <- gauge(e.expiryDays, expiryDays(c.NotAfter, now), c.CertHash)
			}
			if !c.NotBefore.IsZero() {
				ch <- gauge(e.notBefore, unixSeconds(c.NotBefore), c.CertHash)
			}
			ch <- gauge(e.certInfo, 1, c.CertHash, c.CommonName, c.Organization, c.Issuer, c.RootIssuer, c.IssuerCategory,
				c.SignatureAlgorithm, c.KeyAlgorithm, strconv.Itoa(c.KeySize), strconv.FormatBool(c.SelfSigned), c.Type, c.SerialNumber)
			ch <- gauge(e.served, float64(c.Served), c.CertHash)
			if succ, ok := s.Successor(i); ok {
				ch <- gauge(e.successor, 1, c.CertHash, succ.CertHash)
			}
			if n := s.ServedLeaves(i); n > 0 {
				ch <- gauge(e.servedLeaves, float64(n), c.CertHash)
			}
		}
	}
	o := s.Owners
	// ownerValues appends the owner labels' values of combination c (none when owners
	// are off).
	ownerValues := func(c uint32, first ...string) []string {
		if o == nil {
			return first
		}
		return append(first, o.Combos[c]...)
	}
	if o != nil {
		for c := range o.Combos {
			for g := range s.GradeCounts {
				ch <- gauge(e.ownerInst, float64(o.Instances[snapshot.OwnerGrade{Combo: uint32(c), Grade: g}]), ownerValues(uint32(c), g)...)
			}
			ch <- gauge(e.ownerCerts, float64(o.Certificates[c]), ownerValues(uint32(c))...)
			for k, days := range snapshot.LifetimeCapDays {
				ch <- gauge(e.ownerLifetimeOver, float64(o.LifetimeOver[c][k]), ownerValues(uint32(c), strconv.Itoa(days))...)
			}
		}
	}
	if e.perInst {
		for i := range s.Instances {
			in := &s.Instances[i]
			id := strconv.FormatInt(in.ID, 10)
			var combo uint32
			if o != nil {
				combo = o.Instance[i]
			}
			rank, _ := snapshot.GradeRank(in.Grade) // 0 for none and other
			ch <- gauge(e.instRank, rank, id, in.CertHash, in.Grade)
			if rank, ok := snapshot.GradeRank(in.GradeTrustIgnored); ok {
				ch <- gauge(e.trustIgnored, rank, id, in.CertHash, in.GradeTrustIgnored)
			}
			for k, cat := range snapshot.ScoreCategories {
				if e.scores && in.HasScore[k] {
					ch <- gauge(e.instScore, in.Scores[k], id, in.CertHash, cat)
				}
			}
			ch <- gauge(e.instInfo, 1, ownerValues(combo, id, in.CertHash, strconv.FormatInt(in.AssetID, 10), in.AssetName, in.IP,
				strconv.Itoa(in.Port), in.Protocol, in.Service, in.FQDN)...)
		}
	}
}
