package exposition

import (
	"slices"
	"strconv"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

func (e *Exposition) writeCounts(lw *lineWriter, s *snapshot.Snapshot, now time.Time) {
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
	lw.single(famWeakSignature, float64(s.WeakSignature))
	lw.family(famLifetimeOver)
	for k, days := range snapshot.LifetimeCapDays {
		lw.raw(famLifetimeOver.name)
		lw.label1("cap_days", strconv.Itoa(days))
		lw.float(float64(s.LifetimeOver[k]))
	}
	lw.family(famInstances)
	for _, g := range sortedGrades(s.GradeCounts) {
		lw.raw(famInstances.name)
		lw.label1("grade", g)
		lw.float(float64(s.GradeCounts[g]))
	}
	lw.family(famProtocolSupport)
	for p, n := range s.ProtocolCounts {
		lw.raw(famProtocolSupport.name)
		lw.label1("protocol", snapshot.ProtocolName(p))
		lw.float(float64(n))
	}
	if o := s.Owners; o != nil {
		owners := lw.ownerTexts(o)
		lw.family(famOwnerInstances)
		for c, text := range owners {
			for _, g := range sortedGrades(s.GradeCounts) {
				lw.raw(famOwnerInstances.name)
				lw.raw(`{grade="`)
				lw.escaped(g)
				lw.raw(`",`)
				lw.bytes(text)
				lw.raw("}")
				lw.float(float64(o.Instances[snapshot.OwnerGrade{Combo: uint32(c), Grade: g}]))
			}
		}
		lw.family(famOwnerCertificates)
		for c, text := range owners {
			lw.raw(famOwnerCertificates.name)
			lw.buf = append(lw.buf, '{')
			lw.bytes(text)
			lw.raw("}")
			lw.float(float64(o.Certificates[c]))
		}
		lw.family(famOwnerLifetimeOver)
		for c, text := range owners {
			for k, days := range snapshot.LifetimeCapDays {
				lw.raw(famOwnerLifetimeOver.name)
				lw.raw(`{cap_days="`)
				lw.raw(strconv.Itoa(days))
				lw.raw(`",`)
				lw.bytes(text)
				lw.raw("}")
				lw.float(float64(o.LifetimeOver[c][k]))
			}
		}
	}
}

// ownerTexts renders each owner combination's labels: `team="payments",environment=""`.
func (l *lineWriter) ownerTexts(o *snapshot.Owners) [][]byte {
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
func (e *Exposition) writeExpiryHistogram(lw *lineWriter, s *snapshot.Snapshot, now time.Time) {
	buckets, sum, count := s.ExpiryHistogram(now)
	lw.typedFamily(famExpiryHistogram, "histogram")
	bucket := famExpiryHistogram.name + "_bucket"
	for k, le := range snapshot.ExpiryBucketDays {
		lw.raw(bucket)
		lw.label1("le", strconv.FormatFloat(le*86400, 'g', -1, 64))
		lw.float(float64(buckets[k]))
	}
	lw.raw(bucket)
	lw.label1("le", "+Inf")
	lw.float(float64(count))
	lw.raw(famExpiryHistogram.name + "_sum")
	lw.float(sum)
	lw.raw(famExpiryHistogram.name + "_count")
	lw.float(float64(count))
}

// sortedGrades lists the grades in Grades order, then any others.
func sortedGrades(counts map[string]int) []string {
	out := append([]string(nil), snapshot.Grades...)
	for g := range counts {
		if !slices.Contains(snapshot.Grades, g) {
			out = append(out, g)
		}
	}
	return out
}
