package exposition

import (
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// writeStatic writes the per-object families that do not change between polls. An
// instance has two series by default, its info (with the owner labels) and its grade
// rank; a certificate's owners are those of the instances presenting it, found from
// instance_info by certhash rather than served as a family of their own.
//
// p says which certificates and instances: all of them, or a shard's.
func (e *Exposition) writeStatic(lw *lineWriter, s *snapshot.Snapshot, p *part) {
	if e.opts.PerCertificate {
		writeCertTimes(lw, famNotAfter, s, p, func(c *snapshot.Certificate) time.Time { return c.NotAfter })
		writeCertTimes(lw, famNotBefore, s, p, func(c *snapshot.Certificate) time.Time { return c.NotBefore })
		e.writeCertificateInfo(lw, s, p)
		writeCertificateInstances(lw, s, p)
		writeSuccessors(lw, s, p)
		writeIssuerServedLeaves(lw, s, p)
	}
	if e.opts.PerInstance {
		writeRanks(lw, s, p, famGradeRank, func(in *snapshot.Instance) string { return in.Grade }, true)
		writeRanks(lw, s, p, famGradeTrustIgnored, func(in *snapshot.Instance) string { return in.GradeTrustIgnored }, false)
		if e.opts.InstanceScoreCategories {
			writeScores(lw, s, p)
		}
		var owners [][]byte // each owner combination's labels, rendered once
		if s.Owners != nil {
			owners = lw.ownerTexts(s.Owners)
		}
		e.writeInstanceInfo(lw, s, p, owners)
	}
}

func (e *Exposition) writeCertificateInfo(lw *lineWriter, s *snapshot.Snapshot, p *part) {
	lw.family(famCertificateInfo)
	for _, i := range p.certs {
		c := &s.Certificates[i]
		lw.raw(famCertificateInfo.name)
		for n, col := range e.certificateCols {
			lw.labelStart(n, col.name)
			col.write(lw, c)
			lw.buf = append(lw.buf, '"')
		}
		lw.raw("} 1\n")
		lw.flushIfFull()
	}
}

func writeCertificateInstances(lw *lineWriter, s *snapshot.Snapshot, p *part) {
	lw.family(famCertificateInstances)
	for _, i := range p.certs {
		c := &s.Certificates[i]
		lw.raw(famCertificateInstances.name)
		lw.label1("certhash", c.CertHash)
		lw.float(float64(c.Served))
		lw.flushIfFull()
	}
}

// writeSuccessors writes a series for each certificate that has a successor; the family
// is left out when none has.
func writeSuccessors(lw *lineWriter, s *snapshot.Snapshot, p *part) {
	started := false
	for _, i := range p.certs {
		succ, ok := s.Successor(int(i))
		if !ok {
			continue
		}
		if !started {
			lw.family(famSuccessor)
			started = true
		}
		lw.raw(famSuccessor.name)
		lw.raw(`{certhash="`)
		lw.escaped(s.Certificates[i].CertHash)
		lw.raw(`",successor_certhash="`)
		lw.escaped(succ.CertHash)
		lw.raw("\"} 1\n")
		lw.flushIfFull()
	}
}

// writeIssuerServedLeaves writes the served certificates that depend on each
// certificate, for those with any; the family is left out when none has.
func writeIssuerServedLeaves(lw *lineWriter, s *snapshot.Snapshot, p *part) {
	started := false
	for _, i := range p.certs {
		n := s.ServedLeaves(int(i))
		if n == 0 {
			continue
		}
		if !started {
			lw.family(famIssuerServedLeaves)
			started = true
		}
		lw.raw(famIssuerServedLeaves.name)
		lw.label1("certhash", s.Certificates[i].CertHash)
		lw.float(float64(n))
		lw.flushIfFull()
	}
}

func writeScores(lw *lineWriter, s *snapshot.Snapshot, p *part) {
	lw.family(famScore)
	for _, i := range p.insts {
		in := &s.Instances[i]
		for k, cat := range snapshot.ScoreCategories {
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
}

// writeInstanceInfo writes each instance's info series, with its owner labels when
// owners holds the combinations' rendered labels.
func (e *Exposition) writeInstanceInfo(lw *lineWriter, s *snapshot.Snapshot, p *part, owners [][]byte) {
	lw.family(famInstanceInfo)
	for _, i := range p.insts {
		in := &s.Instances[i]
		lw.raw(famInstanceInfo.name)
		for n, col := range e.instanceCols {
			lw.labelStart(n, col.name)
			col.write(lw, in)
			lw.buf = append(lw.buf, '"')
		}
		if owners != nil {
			lw.buf = append(lw.buf, ',')
			lw.bytes(owners[s.Owners.Instance[i]])
		}
		lw.raw("} 1\n")
		lw.flushIfFull()
	}
}

// writeRanks writes a grade rank family: grade(in) ranked and named by the grade label.
// With every, each instance has a series, 0 for a grade without a rank (none, other);
// else those are left out.
func writeRanks(lw *lineWriter, s *snapshot.Snapshot, p *part, f family, grade func(*snapshot.Instance) string, every bool) {
	lw.family(f)
	for _, i := range p.insts {
		in := &s.Instances[i]
		g := grade(in)
		rank, ok := snapshot.GradeRank(g)
		if !ok && !every {
			continue
		}
		lw.raw(f.name)
		lw.instanceLabels(in)
		lw.raw(`",grade="`)
		lw.escaped(g)
		lw.raw(`"}`)
		lw.float(rank)
		lw.flushIfFull()
	}
}

func writeCertTimes(lw *lineWriter, f family, s *snapshot.Snapshot, p *part, at func(*snapshot.Certificate) time.Time) {
	lw.family(f)
	for _, i := range p.certs {
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
