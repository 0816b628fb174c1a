package collector

import (
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Exposition serves /metrics by writing the text exposition straight from the snapshot.
// At 100,000 certificates and 300,000 instances that is two million series: building a
// const metric for each on every scrape (Exporter, kept as the reference and the
// benchmark baseline) takes seconds and gigabytes, while writing the lines takes a
// fraction of a second and a buffer.
//
// The per-object families that do not change between polls are also compressed once,
// when the snapshot is prepared, so a gzip scrape compresses only the small part that
// changes with time (expiry days, expiry counts, health) and appends the cached part as
// a second gzip member (RFC 1952 allows several; Go's gzip reader, which Prometheus
// uses, reads them all).
type Exposition struct {
	sched    *Scheduler
	gatherer prometheus.Gatherer
	clock    clockwork.Clock
	logger   log.Logger
	perCert  bool
	perInst  bool
	certCols []certColumn // the allowed certificate info labels
	instCols []instColumn // the allowed instance info labels
	bufs     sync.Pool
}

// ExpositionOptions configure the exposition.
type ExpositionOptions struct {
	PerCertificate bool
	PerInstance    bool
	// CertificateInfoLabels and InstanceInfoLabels allow-list the info labels; nil keeps
	// them all. certhash and instance_id are always kept: they are the join keys.
	CertificateInfoLabels []string
	InstanceInfoLabels    []string
	Clock                 clockwork.Clock
	Logger                log.Logger
}

// CertificateInfoLabels and InstanceInfoLabels are the labels the info metrics can carry.
func CertificateInfoLabels() []string { return append([]string(nil), certInfoLabels...) }

// InstanceInfoLabels lists the labels of qualys_certview_instance_info.
func InstanceInfoLabels() []string { return append([]string(nil), instanceInfoLabels...) }

// columns resolves an allow-list against the known labels; the key label always stays.
func columns(all, allow []string) ([]int, error) {
	if allow == nil {
		cols := make([]int, len(all))
		for i := range cols {
			cols[i] = i
		}
		return cols, nil
	}
	want := map[string]bool{all[0]: true}
	for _, l := range allow {
		if !slices.Contains(all, l) {
			return nil, fmt.Errorf("unknown label %q (known: %s)", l, strings.Join(all, ", "))
		}
		want[l] = true
	}
	var cols []int
	for i, l := range all {
		if want[l] {
			cols = append(cols, i)
		}
	}
	return cols, nil
}

// NewExposition makes the /metrics handler. gatherer holds everything else (Go and
// process metrics, build info, telemetry); it is written first.
func NewExposition(sched *Scheduler, gatherer prometheus.Gatherer, opts ExpositionOptions) (*Exposition, error) {
	certIdx, err := columns(certInfoLabels, opts.CertificateInfoLabels)
	if err != nil {
		return nil, fmt.Errorf("certificate info labels: %w", err)
	}
	instIdx, err := columns(instanceInfoLabels, opts.InstanceInfoLabels)
	if err != nil {
		return nil, fmt.Errorf("instance info labels: %w", err)
	}
	var certCols []certColumn
	for _, i := range certIdx {
		certCols = append(certCols, certColumns[i])
	}
	var instCols []instColumn
	for _, i := range instIdx {
		instCols = append(instCols, instColumns[i])
	}
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	e := &Exposition{sched: sched, gatherer: gatherer, clock: opts.Clock, logger: opts.Logger,
		perCert: opts.PerCertificate, perInst: opts.PerInstance, certCols: certCols, instCols: instCols}
	e.bufs.New = func() any { return &lineWriter{buf: make([]byte, 0, 256<<10)} }
	return e, nil
}

// Prepare compresses the snapshot's static families into a raw DEFLATE stream that ends
// with a sync flush (byte-aligned, not final), and notes the CRC-32 and length of their
// text. A gzip scrape sends a gzip header, this stream, the changing families through a
// fresh compressor that ends the stream, and a trailer whose CRC-32 continues from the
// cached one: a single, ordinary gzip member. The scheduler calls Prepare before it swaps
// the snapshot in, so scrapes never wait for it.
func (e *Exposition) Prepare(s *Snapshot) {
	out := &chunks{}
	fw, _ := flate.NewWriter(out, flate.BestSpeed)
	sum := &checksum{w: fw}
	lw := &lineWriter{buf: make([]byte, 0, 256<<10), w: sum}
	e.writeStatic(lw, s)
	lw.flush()
	if err := fw.Flush(); err != nil || lw.err != nil {
		level.Warn(e.logger).Log("msg", "compressing the static families failed; gzip scrapes will compress them each time", "err", err)
		return
	}
	s.static = &staticCache{deflate: out.list, crc: sum.crc, size: sum.n}
}

// chunks collects a stream in 1 MiB pieces: unlike a growing buffer it never copies and
// never holds more than a piece of slack, which matters when two snapshots are alive.
type chunks struct{ list [][]byte }

const chunkSize = 1 << 20

func (c *chunks) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(c.list) == 0 || len(c.list[len(c.list)-1]) == chunkSize {
			c.list = append(c.list, make([]byte, 0, chunkSize))
		}
		last := &c.list[len(c.list)-1]
		k := copy((*last)[len(*last):chunkSize], p)
		*last = (*last)[:len(*last)+k]
		p = p[k:]
	}
	return n, nil
}

// staticCache is a snapshot's static families, compressed once.
type staticCache struct {
	deflate [][]byte // raw DEFLATE in pieces, sync-flushed, not final
	crc     uint32   // CRC-32 (IEEE) of the text
	size    uint32   // length of the text, modulo 2^32 as gzip's trailer has it
}

// checksum passes writes on while it keeps the CRC-32 and length of what went through.
type checksum struct {
	w   io.Writer
	crc uint32
	n   uint32
}

func (c *checksum) Write(p []byte) (int, error) {
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p)
	c.n += uint32(len(p))
	return c.w.Write(p)
}

// gzipHeader is a minimal gzip member header: deflate, no name, no time, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// ServeHTTP writes the exposition, gzip-compressed when the client accepts it.
func (e *Exposition) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := e.clock.Now()
	snap := e.sched.Snapshot()
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	lw := e.bufs.Get().(*lineWriter)
	defer e.bufs.Put(lw)
	lw.buf, lw.err = lw.buf[:0], nil
	if !acceptsGzip(r) {
		lw.w = w
		e.writeAll(lw, snap, now, true)
		lw.flush()
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Add("Vary", "Accept-Encoding")
	if _, err := w.Write(gzipHeader); err != nil {
		return
	}
	sum := &checksum{}
	haveStatic := snap != nil && snap.static != nil
	if haveStatic {
		for _, piece := range snap.static.deflate {
			if _, err := w.Write(piece); err != nil {
				return
			}
		}
		sum.crc, sum.n = snap.static.crc, snap.static.size
	}
	fw := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(fw)
	fw.Reset(w)
	sum.w = fw
	lw.w = sum
	e.writeAll(lw, snap, now, !haveStatic)
	lw.flush()
	if err := fw.Close(); err != nil || lw.err != nil {
		return // the client went away
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], sum.crc)
	binary.LittleEndian.PutUint32(trailer[4:], sum.n)
	_, _ = w.Write(trailer[:])
}

var flateWriters = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(io.Discard, flate.BestSpeed)
	return fw
}}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// writeAll writes, when withStatic, the static per-object families, then the other
// collectors, the health and the time-dependent families. The static part comes first so
// that a gzip scrape can send it from the cache and continue its checksum.
func (e *Exposition) writeAll(lw *lineWriter, snap *Snapshot, now time.Time, withStatic bool) {
	if withStatic && snap != nil {
		e.writeStatic(lw, snap)
	}
	if e.gatherer != nil {
		mfs, err := e.gatherer.Gather()
		if err != nil {
			level.Warn(e.logger).Log("msg", "gathering the exporter's own metrics", "err", err)
		}
		for _, mf := range mfs {
			lw.flushIfFull()
			if _, err := expfmt.MetricFamilyToText(lw, mf); err != nil {
				lw.err = err
			}
		}
	}
	e.writeHealth(lw, snap, now)
	if snap == nil {
		return
	}
	e.writeCounts(lw, snap, now)
	if e.perCert {
		lw.family(famExpiryDays)
		for i := range snap.Certificates {
			c := &snap.Certificates[i]
			if c.NotAfter.IsZero() {
				continue
			}
			lw.raw(famExpiryDays.name)
			lw.label1("certhash", c.CertHash)
			lw.float(c.NotAfter.Sub(now).Hours() / 24)
			lw.flushIfFull()
		}
	}
}

// family describes a metric family for the writer.
type family struct {
	name, help string
}

func fam(name, help string) family { return family{"qualys_certview_" + name, help} }

var (
	famUp           = fam("up", "1 when the last poll of the CertView API succeeded, else 0. Set by the poll loop, not at scrape time.")
	famFailures     = fam("poll_consecutive_failures", "Polls failed in a row since the last success. Set by the poll loop.")
	famInterval     = fam("poll_interval_seconds", "The configured poll interval (poll.interval), for staleness alerts.")
	famLastAttempt  = fam("last_poll_timestamp_seconds", "When the last poll (successful or not) started, as a Unix timestamp. Set by the poll loop.")
	famPollDuration = fam("poll_duration_seconds", "How long the last poll took, successful or not, including rate-limit waits. Set by the poll loop.")
	famLastSuccess  = fam("last_poll_success_timestamp_seconds", "When the last successful poll finished, as a Unix timestamp; the age of the cached snapshot. Set by the poll loop.")
	famSnapshotAge  = fam("snapshot_age_seconds", "Seconds since the cached snapshot was taken, at scrape time; absent before the first snapshot.")

	famCertificates = fam("certificates", "Certificates in the inventory."+cached)
	famExpired      = fam("certificates_expired", "Certificates whose not-after time has passed, counted at scrape time"+cachedFrom)
	famExpiring     = fam("certificates_expiring", "Certificates not yet expired that expire within the given number of days, counted at scrape time"+cachedFrom)
	famSelfSigned   = fam("certificates_self_signed", "Self-signed certificates."+cached)
	famWeakKey      = fam("certificates_weak_key", "Certificates with a weak key: RSA or DSA below the RSA threshold (default 2048 bits), EC below the EC threshold (default 224 bits)."+cached)
	famWeakSig      = fam("certificates_weak_signature", "Certificates signed with MD5 or SHA-1."+cached)
	famInstances    = fam("instances", "Server instances by TLS grade (none when ungraded); every grade is always present."+cached)
	famProtocols    = fam("instances_protocol_supported", "Server instances that support each protocol version."+cached)

	famExpiryDays = fam("certificate_expiry_days", "Days from the scrape until the certificate's not-after time; fractional, negative once expired. Computed at scrape time from the not-after time"+cachedFrom)
	famNotAfter   = fam("certificate_not_after_timestamp_seconds", "End of the certificate's validity (validTo), as a Unix timestamp."+cached)
	famNotBefore  = fam("certificate_not_before_timestamp_seconds", "Start of the certificate's validity (validFrom), as a Unix timestamp."+cached)
	famCertInfo   = fam("certificate_info", "Certificate metadata; the value is always 1."+cached)
	famGrade      = fam("instance_grade", "The TLS grade of a server instance as a label (none when ungraded), with the certhash it presents; exactly one series per instance, value 1."+cached)
	famRank       = fam("instance_grade_rank", "The TLS grade of a server instance as a number, higher is better: A+ 12, A 11, A- 10, B 9, C 8, D 7, E 6, F 3, T 2, M 1; absent when ungraded. For topk, bottomk and comparisons without a join."+cached)
	famScore      = fam("instance_score", "A category score (0-100) of a server instance's TLS grading: certificate, protocol_support, key_exchange or cipher_strength; with the certhash the instance presents."+cached)
	famServed     = fam("certificate_instances", "Server instances presenting the certificate: CertView's instanceCount, or the instances in the snapshot naming it when more; 0 for a certificate no server presents any more."+cached)
	famExpiryHist = fam("certificates_time_to_expiry_seconds", "Distribution of the certificates' time to expiry (negative once expired), computed at scrape time"+cachedFrom+" It describes the inventory now (a gauge histogram): read its buckets directly, never through rate() or increase(). Expired certificates fall in every bucket.")
	famTrustIgn   = fam("instance_grade_trust_ignored_rank", "The TLS grade of a server instance with trust set aside (CertView's gradeWithTrustIgnored), ranked as qualys_certview_instance_grade_rank and named by the grade label; present only where it differs from the instance's grade, in practice for T: a certificate from a CA the scanner does not trust, such as an internal PKI's."+cached)
	famCertOwner  = fam("certificate_owner_info", "The owners of a certificate (owners.labels, from the tags of the assets serving it): one series per distinct combination among the instances that serve it; a certificate no instance serves has one, with every owner label empty. The value is always 1."+cached)
	famInstOwner  = fam("instance_owner_info", "The owner labels (owners.labels) of the asset of a server instance, from its tags; empty when no tag matches. The value is always 1."+cached)
	famOwnerInst  = fam("owner_instances", "Server instances per owner (owners.labels, empty when unowned) and TLS grade (none when ungraded)."+cached)
	famOwnerCerts = fam("owner_certificates", "Certificates per owner (owners.labels): a certificate counts once for each owner among the instances serving it; one no instance serves counts as unowned."+cached)
	famInstInfo   = fam("instance_info", "Server instance metadata: where a certificate is served; the value is always 1."+cached)
)

func (e *Exposition) writeHealth(lw *lineWriter, snap *Snapshot, now time.Time) {
	h := e.sched.Health()
	lw.single(famUp, boolValue(h.Up))
	lw.single(famFailures, float64(h.ConsecutiveFailures))
	lw.single(famInterval, e.sched.Interval().Seconds())
	if !h.LastAttempt.IsZero() {
		lw.single(famLastAttempt, unixSeconds(h.LastAttempt))
		lw.single(famPollDuration, h.LastDuration.Seconds())
	}
	if snap != nil {
		lw.single(famLastSuccess, unixSeconds(snap.Taken))
		lw.single(famSnapshotAge, now.Sub(snap.Taken).Seconds())
	}
}

func (e *Exposition) writeCounts(lw *lineWriter, s *Snapshot, now time.Time) {
	lw.single(famCertificates, float64(len(s.Certificates)))
	lw.single(famExpired, float64(s.Expired(now)))
	lw.family(famExpiring)
	for _, days := range ExpiringWindows {
		lw.raw(famExpiring.name)
		lw.label1("within_days", strconv.Itoa(days))
		lw.float(float64(s.ExpiringWithin(now, time.Duration(days)*24*time.Hour)))
	}
	e.writeExpiryHistogram(lw, s, now)
	lw.single(famSelfSigned, float64(s.SelfSigned))
	lw.single(famWeakKey, float64(s.WeakKey))
	lw.single(famWeakSig, float64(s.WeakSignature))
	lw.family(famInstances)
	for _, g := range sortedGrades(s.GradeCounts) {
		lw.raw(famInstances.name)
		lw.label1("grade", g)
		lw.float(float64(s.GradeCounts[g]))
	}
	lw.family(famProtocols)
	for p, n := range s.ProtocolCounts {
		lw.raw(famProtocols.name)
		lw.label1("protocol", certview.Protocol(p).String())
		lw.float(float64(n))
	}
	if o := s.Owners; o != nil {
		owners := lw.ownerTexts(o)
		lw.family(famOwnerInst)
		for c, text := range owners {
			for _, g := range sortedGrades(s.GradeCounts) {
				lw.raw(famOwnerInst.name)
				lw.raw(`{grade="`)
				lw.escaped(g)
				lw.raw(`",`)
				lw.bytes(text)
				lw.raw("}")
				lw.float(float64(o.Instances[OwnerGrade{uint32(c), g}]))
			}
		}
		lw.family(famOwnerCerts)
		for c, text := range owners {
			lw.raw(famOwnerCerts.name)
			lw.buf = append(lw.buf, '{')
			lw.bytes(text)
			lw.raw("}")
			lw.float(float64(o.Certificates[c]))
		}
	}
}

// ownerTexts renders each owner combination's labels: `team="payments",environment=""`.
func (l *lineWriter) ownerTexts(o *Owners) [][]byte {
	out := make([][]byte, len(o.Combos))
	saved := l.buf
	for c, values := range o.Combos {
		l.buf = nil
		for k, name := range o.Labels {
			if k > 0 {
				l.buf = append(l.buf, ',')
			}
			l.raw(name)
			l.raw(`="`)
			l.escaped(values[k])
			l.buf = append(l.buf, '"')
		}
		out[c] = l.buf
	}
	l.buf = saved
	return out
}

// writeExpiryHistogram writes qualys_certview_certificates_time_to_expiry_seconds: a few series
// that show the expiry distribution without reading every certificate's series.
func (e *Exposition) writeExpiryHistogram(lw *lineWriter, s *Snapshot, now time.Time) {
	buckets, sum, count := s.ExpiryHistogram(now)
	lw.typedFamily(famExpiryHist, "histogram")
	bucket := famExpiryHist.name + "_bucket"
	for k, le := range ExpiryBucketDays {
		lw.raw(bucket)
		lw.label1("le", strconv.FormatFloat(le*86400, 'g', -1, 64))
		lw.float(float64(buckets[k]))
	}
	lw.raw(bucket)
	lw.label1("le", "+Inf")
	lw.float(float64(count))
	lw.raw(famExpiryHist.name + "_sum")
	lw.float(sum)
	lw.raw(famExpiryHist.name + "_count")
	lw.float(float64(count))
}

// sortedGrades lists the grades in Grades order, then any others.
func sortedGrades(counts map[string]int) []string {
	out := append([]string(nil), Grades...)
	for g := range counts {
		if !slices.Contains(Grades, g) {
			out = append(out, g)
		}
	}
	return out
}

// writeStatic writes the per-object families that do not change between polls.
func (e *Exposition) writeStatic(lw *lineWriter, s *Snapshot) {
	var owners [][]byte // each owner combination's labels, rendered once
	if s.Owners != nil {
		owners = lw.ownerTexts(s.Owners)
	}
	if e.perCert {
		e.writeCertTimes(lw, famNotAfter, s, func(c *Certificate) time.Time { return c.NotAfter })
		e.writeCertTimes(lw, famNotBefore, s, func(c *Certificate) time.Time { return c.NotBefore })
		lw.family(famCertInfo)
		for i := range s.Certificates {
			c := &s.Certificates[i]
			lw.raw(famCertInfo.name)
			for n, col := range e.certCols {
				lw.labelStart(n, col.name)
				col.write(lw, c)
				lw.buf = append(lw.buf, '"')
			}
			lw.raw("} 1\n")
			lw.flushIfFull()
		}
		lw.family(famServed)
		for i := range s.Certificates {
			c := &s.Certificates[i]
			lw.raw(famServed.name)
			lw.label1("certhash", c.CertHash)
			lw.float(float64(c.Served))
			lw.flushIfFull()
		}
		if o := s.Owners; o != nil {
			lw.family(famCertOwner)
			for i := range s.Certificates {
				for _, combo := range o.Certificate[i] {
					lw.raw(famCertOwner.name)
					lw.raw(`{certhash="`)
					lw.escaped(s.Certificates[i].CertHash)
					lw.raw(`",`)
					lw.bytes(owners[combo])
					lw.raw("} 1\n")
				}
				lw.flushIfFull()
			}
		}
	}
	if e.perInst {
		lw.family(famGrade)
		for i := range s.Instances {
			in := &s.Instances[i]
			lw.raw(famGrade.name)
			lw.instanceLabels(in)
			lw.raw(`",grade="`)
			lw.escaped(in.Grade)
			lw.raw("\"} 1\n")
			lw.flushIfFull()
		}
		e.writeRanks(lw, s, famRank, owners, func(in *Instance) string { return in.Grade })
		e.writeRanks(lw, s, famTrustIgn, owners, func(in *Instance) string { return in.GradeTrustIgnored })
		lw.family(famScore)
		for i := range s.Instances {
			in := &s.Instances[i]
			for k, cat := range ScoreCategories {
				if !in.HasScore[k] {
					continue
				}
				lw.raw(famScore.name)
				lw.instanceLabels(in)
				lw.raw(`",category="`)
				lw.raw(cat)
				lw.raw(`"}`)
				lw.float(in.Scores[k])
			}
			lw.flushIfFull()
		}
		if s.Owners != nil {
			lw.family(famInstOwner)
			for i := range s.Instances {
				lw.raw(famInstOwner.name)
				lw.raw(`{instance_id="`)
				lw.int(s.Instances[i].ID)
				lw.raw(`",`)
				lw.bytes(owners[s.Owners.Instance[i]])
				lw.raw("} 1\n")
				lw.flushIfFull()
			}
		}
		lw.family(famInstInfo)
		for i := range s.Instances {
			in := &s.Instances[i]
			lw.raw(famInstInfo.name)
			for n, col := range e.instCols {
				lw.labelStart(n, col.name)
				col.write(lw, in)
				lw.buf = append(lw.buf, '"')
			}
			lw.raw("} 1\n")
			lw.flushIfFull()
		}
	}
}

// writeRanks writes a grade rank family: grade(in) ranked, with the instance's owner
// labels when owners are on; instances whose grade has no rank are left out.
func (e *Exposition) writeRanks(lw *lineWriter, s *Snapshot, f family, owners [][]byte, grade func(*Instance) string) {
	lw.family(f)
	for i := range s.Instances {
		in := &s.Instances[i]
		g := grade(in)
		rank, ok := GradeRank(g)
		if !ok {
			continue
		}
		lw.raw(f.name)
		lw.instanceLabels(in)
		lw.raw(`",grade="`)
		lw.escaped(g)
		lw.buf = append(lw.buf, '"')
		if owners != nil {
			lw.buf = append(lw.buf, ',')
			lw.bytes(owners[s.Owners.Instance[i]])
		}
		lw.buf = append(lw.buf, '}')
		lw.float(rank)
		lw.flushIfFull()
	}
}

func (e *Exposition) writeCertTimes(lw *lineWriter, f family, s *Snapshot, at func(*Certificate) time.Time) {
	lw.family(f)
	for i := range s.Certificates {
		c := &s.Certificates[i]
		t := at(c)
		if t.IsZero() {
			continue
		}
		lw.raw(f.name)
		lw.label1("certhash", c.CertHash)
		lw.float(unixSeconds(t))
		lw.flushIfFull()
	}
}

// lineWriter appends exposition lines to a buffer and writes it out in large chunks.
type lineWriter struct {
	buf []byte
	w   io.Writer
	err error
}

const flushAt = 192 << 10

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	l.flushIfFull()
	return len(p), nil
}

func (l *lineWriter) flushIfFull() {
	if len(l.buf) >= flushAt {
		l.flush()
	}
}

func (l *lineWriter) flush() {
	if len(l.buf) > 0 && l.err == nil {
		_, l.err = l.w.Write(l.buf)
	}
	l.buf = l.buf[:0]
}

func (l *lineWriter) raw(s string)   { l.buf = append(l.buf, s...) }
func (l *lineWriter) bytes(b []byte) { l.buf = append(l.buf, b...) }

// instanceLabels opens the label set of a per-instance series, leaving the certhash
// value's quote open: `{instance_id="1",certhash="abc`.
func (l *lineWriter) instanceLabels(in *Instance) {
	l.raw(`{instance_id="`)
	l.int(in.ID)
	l.raw(`",certhash="`)
	l.escaped(in.CertHash)
}

// family writes the HELP and TYPE lines of a gauge.
func (l *lineWriter) family(f family) { l.typedFamily(f, "gauge") }

// typedFamily writes the HELP and TYPE lines.
func (l *lineWriter) typedFamily(f family, typ string) {
	l.flushIfFull()
	l.raw("# HELP ")
	l.raw(f.name)
	l.buf = append(l.buf, ' ')
	l.escapedHelp(f.help)
	l.raw("\n# TYPE ")
	l.raw(f.name)
	l.buf = append(l.buf, ' ')
	l.raw(typ)
	l.buf = append(l.buf, '\n')
}

// single writes a family of one unlabelled gauge.
func (l *lineWriter) single(f family, v float64) {
	l.family(f)
	l.raw(f.name)
	l.float(v)
}

func (l *lineWriter) label1(name, value string) {
	l.buf = append(l.buf, '{')
	l.raw(name)
	l.raw(`="`)
	l.escaped(value)
	l.raw(`"}`)
}

// labelStart opens label number n of a set: `{name="` or `,name="`.
func (l *lineWriter) labelStart(n int, name string) {
	if n == 0 {
		l.buf = append(l.buf, '{')
	} else {
		l.buf = append(l.buf, ',')
	}
	l.raw(name)
	l.raw(`="`)
}

func (l *lineWriter) int(v int64) { l.buf = strconv.AppendInt(l.buf, v, 10) }

// certColumn writes one label value of qualys_certview_certificate_info.
type certColumn struct {
	name  string
	write func(*lineWriter, *Certificate)
}

// certColumns follow certInfoLabels.
var certColumns = []certColumn{
	{"certhash", func(l *lineWriter, c *Certificate) { l.escaped(c.CertHash) }},
	{"common_name", func(l *lineWriter, c *Certificate) { l.escaped(c.CommonName) }},
	{"organization", func(l *lineWriter, c *Certificate) { l.escaped(c.Organization) }},
	{"issuer", func(l *lineWriter, c *Certificate) { l.escaped(c.Issuer) }},
	{"root_issuer", func(l *lineWriter, c *Certificate) { l.escaped(c.RootIssuer) }},
	{"issuer_category", func(l *lineWriter, c *Certificate) { l.escaped(c.IssuerCategory) }},
	{"signature_algorithm", func(l *lineWriter, c *Certificate) { l.escaped(c.SignatureAlgorithm) }},
	{"key_algorithm", func(l *lineWriter, c *Certificate) { l.escaped(c.KeyAlgorithm) }},
	{"key_size", func(l *lineWriter, c *Certificate) { l.int(int64(c.KeySize)) }},
	{"self_signed", func(l *lineWriter, c *Certificate) { l.buf = strconv.AppendBool(l.buf, c.SelfSigned) }},
	{"type", func(l *lineWriter, c *Certificate) { l.escaped(c.Type) }},
	{"serial_number", func(l *lineWriter, c *Certificate) { l.escaped(c.SerialNumber) }},
}

// instColumn writes one label value of qualys_certview_instance_info.
type instColumn struct {
	name  string
	write func(*lineWriter, *Instance)
}

// instColumns follow instanceInfoLabels.
var instColumns = []instColumn{
	{"instance_id", func(l *lineWriter, in *Instance) { l.int(in.ID) }},
	{"certhash", func(l *lineWriter, in *Instance) { l.escaped(in.CertHash) }},
	{"asset_id", func(l *lineWriter, in *Instance) { l.int(in.AssetID) }},
	{"asset_name", func(l *lineWriter, in *Instance) { l.escaped(in.AssetName) }},
	{"ip", func(l *lineWriter, in *Instance) { l.escaped(in.IP) }},
	{"port", func(l *lineWriter, in *Instance) { l.int(int64(in.Port)) }},
	{"protocol", func(l *lineWriter, in *Instance) { l.escaped(in.Protocol) }},
	{"service", func(l *lineWriter, in *Instance) { l.escaped(in.Service) }},
	{"fqdn", func(l *lineWriter, in *Instance) { l.escaped(in.FQDN) }},
}

// float writes " value\n" as the text format wants it.
func (l *lineWriter) float(v float64) {
	l.buf = append(l.buf, ' ')
	switch {
	case math.IsInf(v, 1):
		l.raw("+Inf")
	case math.IsInf(v, -1):
		l.raw("-Inf")
	case math.IsNaN(v):
		l.raw("NaN")
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		l.buf = strconv.AppendInt(l.buf, int64(v), 10)
	default:
		l.buf = strconv.AppendFloat(l.buf, v, 'g', -1, 64)
	}
	l.buf = append(l.buf, '\n')
}

// escaped writes a label value with backslash, double quote and newline escaped. Most
// values need nothing; two IndexByte scans (vectorised) tell. Snapshot label values hold
// no newline (label() replaced control characters), but escaping stays complete.
func (l *lineWriter) escaped(s string) {
	if strings.IndexByte(s, '"') < 0 && strings.IndexByte(s, '\\') < 0 && strings.IndexByte(s, '\n') < 0 {
		l.buf = append(l.buf, s...)
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			l.raw(`\\`)
		case '"':
			l.raw(`\"`)
		case '\n':
			l.raw(`\n`)
		default:
			l.buf = append(l.buf, c)
		}
	}
}

// escapedHelp writes HELP text with backslash and newline escaped.
func (l *lineWriter) escapedHelp(s string) {
	s = strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "\n", `\n`)
	l.buf = append(l.buf, s...)
}
