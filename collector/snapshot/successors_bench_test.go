package snapshot

import (
	"fmt"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
)

// BenchmarkSuccessors100k measures what successors and the issuer chain add to a
// snapshot's build at 100,000 certificates (one in five a renewal of another, each with
// a DN and two SANs) and 300,000 instances. Each iteration builds the snapshot from the
// records (the poll's last step) and then runs the two derivations again on its
// certificates; it reports both and the derivations' share as a ratio to the rest of
// the build:
//
//	go test -run '^$' -bench Successors100k -benchtime 3x ./collector/snapshot/
func BenchmarkSuccessors100k(b *testing.B) {
	const nc, ni = 100_000, 300_000
	day := 24 * time.Hour
	certs := make([]certview.Certificate, nc)
	for i := range certs {
		subject := i % 80_000 // 20,000 subjects have a renewal
		cn := fmt.Sprintf("host-%d.example.com", subject)
		from := epoch.Add(-time.Duration(i/80_000*60+subject%30) * day)
		certs[i] = certview.Certificate{
			ID: int64(i + 1), CertHash: fmt.Sprintf("%064x", i), Subject: certview.Name{Name: cn, Organization: "Example Org"},
			DN:        "CN=" + cn + ", O=Example Org, C=US",
			ValidFrom: ts(from), ValidTo: ts(from.Add(90 * day)), InstanceCount: 3,
			SubjectAlternativeNames: map[string][]string{"DNS Name": {cn, "www." + cn}},
			Issuer:                  certview.Name{Name: "R11", CertHash: fmt.Sprintf("%064x", nc+i%8)},
			RootIssuer:              certview.Name{Name: "ISRG Root X1", CertHash: fmt.Sprintf("%064x", nc+8)},
		}
	}
	instances := make([]certview.Instance, ni)
	for j := range instances {
		instances[j] = certview.Instance{ID: int64(j + 1), Certificate: certview.InstanceCertificate{CertHash: certs[j%nc].CertHash}}
	}
	var build, derive time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		start := time.Now()
		bu := NewBuilder(Options{Thresholds: defaults})
		bu.AddCertificates(certs)
		bu.AddInstances(instances)
		s := bu.Build(epoch, epoch, 0)
		mid := time.Now()
		successors(s.Certificates)
		servedLeaves(s.Certificates)
		end := time.Now()
		build += mid.Sub(start)
		derive += end.Sub(mid)
	}
	b.ReportMetric(float64(build.Milliseconds())/float64(b.N), "build-ms/op")
	b.ReportMetric(float64(derive.Milliseconds())/float64(b.N), "successors+chain-ms/op")
	b.ReportMetric(float64(derive)/float64(build-derive), "ratio-to-build-without")
}
