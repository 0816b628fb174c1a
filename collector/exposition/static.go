package exposition

import (
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// writeStatic writes the per-object families that do not change between polls.
func (e *Exposition) writeStatic(lw *lineWriter, s *snapshot.Snapshot) {
	var owners [][]byte // each owner combination's labels, rendered once
	if s.Owners != nil {
		owners = lw.ownerTexts(s.Owners)
	}
	if e.opts.PerCertificate {
		e.writeCertTimes(lw, famNotAfter, s, func(c *snapshot.Certificate) time.Time { return c.NotAfter })
		e.writeCertTimes(lw, famNotBefore, s, func(c *snapshot.Certificate) time.Time { return c.NotBefore })
		e.writeCertificateInfo(lw, s)
		writeCertificateInstances(lw, s)
		writeSuccessors(lw, s)
		writeIssuerServedLeaves(lw, s)
		if s.Owners != nil {
			writeCertificateOwners(lw, s, owners)
		}
	}
	if e.opts.PerInstance {
		writeGrades(lw, s)
		e.writeRanks(lw, s, famGradeRank, owners, func(in *snapshot.Instance) string { return in.Grade })
		e.writeRanks(lw, s, famGradeTrustIgnored, owners, func(in *snapshot.Instance) string { return in.GradeTrustIgnored })
		writeScores(lw, s)
		if s.Owners != nil {
			writeInstanceOwners(lw, s, owners)
		}
		e.writeInstanceInfo(lw, s)
	}
}

func (e *Exposition) writeCertificateInfo(lw *lineWriter, s *snapshot.Snapshot) {
	lw.family(famCertificateInfo)
	for i := range s.Certificates {
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

func writeCertificateInstances(lw *lineWriter, s *snapshot.Snapshot) {
	lw.family(famCertificateInstances)
	for i := range s.Certificates {
		c := &s.Certificates[i]
		lw.raw(famCertificateInstances.name)
		lw.label1("certhash", c.CertHash)
		lw.float(float64(c.Served))
		lw.flushIfFull()
	}
}

// writeSuccessors writes a series for each certificate that has a successor; the family
// is left out when none has.
func writeSuccessors(lw *lineWriter, s *snapshot.Snapshot) {
	started := false
	for i := range s.Certificates {
		succ, ok := s.Successor(i)
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
func writeIssuerServedLeaves(lw *lineWriter, s *snapshot.Snapshot) {
	started := false
	for i := range s.Certificates {
		n := s.ServedLeaves(i)
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

// writeCertificateOwners writes a series per certificate and owner combination among
// the instances serving it; owners holds each combination's rendered labels.
func writeCertificateOwners(lw *lineWriter, s *snapshot.Snapshot, owners [][]byte) {
	lw.family(famCertificateOwner)
	for i := range s.Certificates {
		for _, combo := range s.Owners.Certificate[i] {
			lw.raw(famCertificateOwner.name)
			lw.raw(`{certhash="`)
			lw.escaped(s.Certificates[i].CertHash)
			lw.raw(`",`)
			lw.bytes(owners[combo])
			lw.raw("} 1\n")
		}
		lw.flushIfFull()
	}
}

func writeGrades(lw *lineWriter, s *snapshot.Snapshot) {
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
}

func writeScores(lw *lineWriter, s *snapshot.Snapshot) {
	lw.family(famScore)
	for i := range s.Instances {
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

func writeInstanceOwners(lw *lineWriter, s *snapshot.Snapshot, owners [][]byte) {
	lw.family(famInstanceOwner)
	for i := range s.Instances {
		lw.raw(famInstanceOwner.name)
		lw.raw(`{instance_id="`)
		lw.int(s.Instances[i].ID)
		lw.raw(`",`)
		lw.bytes(owners[s.Owners.Instance[i]])
		lw.raw("} 1\n")
		lw.flushIfFull()
	}
}

func (e *Exposition) writeInstanceInfo(lw *lineWriter, s *snapshot.Snapshot) {
	lw.family(famInstanceInfo)
	for i := range s.Instances {
		in := &s.Instances[i]
		lw.raw(famInstanceInfo.name)
		for n, col := range e.instanceCols {
			lw.labelStart(n, col.name)
			col.write(lw, in)
			lw.buf = append(lw.buf, '"')
		}
		lw.raw("} 1\n")
		lw.flushIfFull()
	}
}

// writeRanks writes a grade rank family: grade(in) ranked, with the instance's owner
// labels when owners are on; instances whose grade has no rank are left out.
func (e *Exposition) writeRanks(lw *lineWriter, s *snapshot.Snapshot, f family, owners [][]byte, grade func(*snapshot.Instance) string) {
	lw.family(f)
	for i := range s.Instances {
		in := &s.Instances[i]
		g := grade(in)
		rank, ok := snapshot.GradeRank(g)
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

func (e *Exposition) writeCertTimes(lw *lineWriter, f family, s *snapshot.Snapshot, at func(*snapshot.Certificate) time.Time) {
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
