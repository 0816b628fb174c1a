// Package exposition owns what /metrics serves: the text exposition of a snapshot, the
// poll loop's health and the exporter's other collectors, written line by line, and the
// compressed cache of the families that do not change between polls.
//
// Snapshots are published to it (Publish); it prepares what it derives from each (the
// compressed static families), keeps that beside the snapshot, and only then serves the
// pair. It reads the poll loop's health at scrape time through PollHealth, an interface
// it owns. It never calls the API, never polls, and never modifies a snapshot.
package exposition

import (
	"compress/flate"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// PollHealth is where the exposition reads the poll loop's health at scrape time.
type PollHealth interface {
	Health() telemetry.Health
}

// Exposition serves /metrics by writing the text exposition straight from the snapshot.
// At 100,000 certificates and 300,000 instances that is two million series: building a
// const metric for each on every scrape takes seconds and gigabytes (the tests keep such
// a collector as the reference and the benchmark baseline), while writing the lines
// takes a fraction of a second and a buffer.
//
// The per-object families that do not change between polls are also compressed once per
// snapshot, when it is published, so a gzip scrape compresses only the small part that
// changes with time (expiry days, expiry counts, health) and continues the same gzip
// member.
type Exposition struct {
	health          PollHealth
	gatherer        prometheus.Gatherer
	opts            Options
	certificateCols []certificateColumn // the allowed certificate info labels
	instanceCols    []instanceColumn    // the allowed instance info labels
	bufs            sync.Pool

	publishMu sync.Mutex               // one publication at a time
	served    atomic.Pointer[prepared] // the snapshot being served and what is derived from it

	cutting func(n int) // a test's hook, called as a cut into n shards starts; nil otherwise
}

// Options configure the exposition.
type Options struct {
	PerCertificate bool
	PerInstance    bool
	// InstanceScoreCategories serves the four category scores of each graded instance
	// (qualys_certview_instance_score), up to four series per instance.
	InstanceScoreCategories bool
	// CertificateInfoLabels and InstanceInfoLabels allow-list the info labels; nil keeps
	// them all. certhash, and instance_id on instance_info, are always kept: they are
	// the join keys (an instance's certhash is also how a certificate's owners are found).
	CertificateInfoLabels []string
	InstanceInfoLabels    []string
	// Interval is the configured poll interval, shown for staleness alerts.
	Interval time.Duration
	Clock    clockwork.Clock
	Logger   log.Logger
}

// New makes the /metrics handler; health is read at each scrape. gatherer holds
// everything else (Go and process metrics, build info, telemetry); it is written after the
// static families. Nothing is served but the health until a snapshot is published.
func New(health PollHealth, gatherer prometheus.Gatherer, opts Options) (*Exposition, error) {
	certIdx, err := columns(certInfoLabels, opts.CertificateInfoLabels, 1)
	if err != nil {
		return nil, fmt.Errorf("certificate info labels: %w", err)
	}
	instIdx, err := columns(instanceInfoLabels, opts.InstanceInfoLabels, 2)
	if err != nil {
		return nil, fmt.Errorf("instance info labels: %w", err)
	}
	var certificateCols []certificateColumn
	for _, i := range certIdx {
		certificateCols = append(certificateCols, certificateColumns[i])
	}
	var instanceCols []instanceColumn
	for _, i := range instIdx {
		instanceCols = append(instanceCols, instanceColumns[i])
	}
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	e := &Exposition{health: health, gatherer: gatherer, opts: opts, certificateCols: certificateCols, instanceCols: instanceCols}
	e.bufs.New = func() any { return &lineWriter{buf: make([]byte, 0, 256<<10)} }
	return e, nil
}

// Snapshot returns the snapshot being served, or nil before the first is published.
func (e *Exposition) Snapshot() *snapshot.Snapshot {
	if p := e.served.Load(); p != nil {
		return p.snap
	}
	return nil
}

// Ready says whether a snapshot is being served.
func (e *Exposition) Ready() bool { return e.served.Load() != nil }

// ServeHTTP writes the exposition, gzip-compressed when the client accepts it: the whole
// of it, or with shard=i&shards=N one shard (see ShardOf): the per-object series of the
// shard's certificates and of the instances presenting them, what the shard holds
// (qualys_certview_shard_certificates and _instances), and in shard 0 only, the health,
// the counts and the exporter's own metrics.
func (e *Exposition) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := parseShard(r.URL.RawQuery)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := e.opts.Clock.Now()
	v := view{shardRequest: req}
	if current := e.served.Load(); current != nil {
		v.snap, v.part, v.static = current.snap, current.whole, current.static
		if req.sharded && req.of > 1 { // one shard of one is the whole, compressed already
			if set := current.shards(e, req.of, now); set != nil {
				v.part, v.static = set.parts[req.shard], set.static[req.shard]
			} else {
				v.part, v.static = shardPart(current.snap, req.of, req.shard), nil
			}
		}
	}
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	lw := e.bufs.Get().(*lineWriter)
	defer e.bufs.Put(lw)
	lw.buf, lw.err = lw.buf[:0], nil
	if !acceptsGzip(r) {
		lw.w = w
		e.writeAll(lw, v, now, true)
		lw.flush()
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Add("Vary", "Accept-Encoding")
	if _, err := w.Write(gzipHeader); err != nil {
		return
	}
	sum := &checksum{}
	if v.static != nil {
		for _, piece := range v.static.deflate {
			if _, err := w.Write(piece); err != nil {
				return
			}
		}
		sum.crc, sum.n = v.static.crc, v.static.size
	}
	fw := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(fw)
	fw.Reset(w)
	sum.w = fw
	lw.w = sum
	e.writeAll(lw, v, now, v.static == nil)
	lw.flush()
	if err := fw.Close(); err != nil || lw.err != nil {
		return // the client went away
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], sum.crc)
	binary.LittleEndian.PutUint32(trailer[4:], sum.n)
	_, _ = w.Write(trailer[:])
}

// view is what one scrape serves: a snapshot (nil before the first), the part of it, and
// that part's compressed static families (nil when there are none).
type view struct {
	shardRequest
	snap   *snapshot.Snapshot
	part   *part
	static *staticCache
}

// writeAll writes, when withStatic, the static per-object families, then the other
// collectors, the health and the time-dependent families. The static part comes first so
// that a gzip scrape can send it from the cache and continue its checksum. A shard other
// than 0 leaves out everything but its per-object families and what it holds.
func (e *Exposition) writeAll(lw *lineWriter, v view, now time.Time, withStatic bool) {
	snap := v.snap
	if withStatic && snap != nil {
		e.writeStatic(lw, snap, v.part)
	}
	if v.sharded {
		writeShardContents(lw, v.part)
	}
	if !v.sharded || v.shard == 0 {
		e.writeFleet(lw, snap, now)
	}
	if snap != nil && e.opts.PerCertificate {
		writeExpiryDays(lw, snap, v.part, now)
	}
}

// writeFleet writes the other collectors, the health and the counts.
func (e *Exposition) writeFleet(lw *lineWriter, snap *snapshot.Snapshot, now time.Time) {
	if e.gatherer != nil {
		mfs, err := e.gatherer.Gather()
		if err != nil {
			level.Warn(e.opts.Logger).Log("msg", "gathering the exporter's own metrics", "err", err)
		}
		for _, mf := range mfs {
			lw.flushIfFull()
			if _, err := expfmt.MetricFamilyToText(lw, mf); err != nil {
				lw.err = err
			}
		}
	}
	e.writeHealth(lw, snap, now)
	if snap != nil {
		e.writeCounts(lw, snap, now)
	}
}

// writeShardContents writes what a shard holds, nothing before the first snapshot.
func writeShardContents(lw *lineWriter, p *part) {
	if p == nil {
		return
	}
	lw.single(famShardCertificates, float64(len(p.certs)))
	lw.single(famShardInstances, float64(len(p.insts)))
}

func (e *Exposition) writeHealth(lw *lineWriter, snap *snapshot.Snapshot, now time.Time) {
	h := e.health.Health()
	lw.single(famUp, boolValue(h.Up))
	lw.single(famFailures, float64(h.ConsecutiveFailures))
	lw.single(famInterval, e.opts.Interval.Seconds())
	if !h.LastAttempt.IsZero() {
		lw.single(famLastAttempt, unixSeconds(h.LastAttempt))
		lw.single(famPollDuration, h.LastDuration.Seconds())
	}
	if snap != nil {
		lw.single(famLastSuccess, unixSeconds(snap.Taken))
		lw.single(famSnapshotAge, secondsBetween(now, snap.Taken))
	}
}

// writeExpiryDays writes the days to expiry of p's certificates, which change with the
// time of the scrape.
func writeExpiryDays(lw *lineWriter, snap *snapshot.Snapshot, p *part, now time.Time) {
	lw.family(famExpiryDays)
	for _, i := range p.certs {
		c := &snap.Certificates[i]
		if c.NotAfter.IsZero() {
			continue
		}
		lw.raw(famExpiryDays.name)
		lw.label1("certhash", c.CertHash)
		lw.float(expiryDays(c.NotAfter, now))
		lw.flushIfFull()
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unixSeconds is t as float Unix seconds, as certview.UnixSeconds computes them (this
// package does not import the client). It does not go through UnixNano, which wraps past
// 2262 and before 1678: a certificate valid until 9999-12-31 (RFC 5280's "no expiry") or
// a saturated epoch (certview.MaxEpochTime) keeps its date.
func unixSeconds(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

// secondsBetween is a-b in seconds. time.Time.Sub saturates at about ±292 years; past
// that the difference is taken from the Unix seconds, which do not.
func secondsBetween(a, b time.Time) float64 {
	if d := a.Sub(b); d > math.MinInt64 && d < math.MaxInt64 {
		return d.Seconds()
	}
	return float64(a.Unix()) - float64(b.Unix()) + float64(a.Nanosecond()-b.Nanosecond())/1e9
}

// expiryDays is the days from now to notAfter, fractional, negative once it has passed.
func expiryDays(notAfter, now time.Time) float64 {
	if d := notAfter.Sub(now); d > math.MinInt64 && d < math.MaxInt64 {
		return d.Hours() / 24
	}
	return secondsBetween(notAfter, now) / 86400
}
