package collector

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// SyntheticSnapshot builds the snapshot of a simulator inventory of nc certificates and
// ni instances directly from its records, without HTTP or JSON, for benchmarks.
func SyntheticSnapshot(nc, ni int, now time.Time) *Snapshot {
	inv := certviewtest.Inventory{Seed: 42, Certificates: nc, Instances: ni, Now: now}
	b := NewBuilder(Thresholds{WeakRSABits: DefaultWeakRSABits, WeakECBits: DefaultWeakECBits})
	certs := make([]certview.Certificate, 0, 200)
	for i := 0; i < nc; i++ {
		r := inv.Certificate(i)
		certs = append(certs, certview.Certificate{
			ID: r.ID, CertHash: r.CertHash, KeySize: r.KeySize, SerialNumber: r.SerialNumber,
			ValidFrom: certview.Timestamp{Time: time.UnixMilli(r.ValidFrom)}, ValidTo: certview.Timestamp{Time: time.UnixMilli(r.ValidTo)},
			SignatureAlgorithm: r.SignatureAlgorithm, PublicKeyAlgorithm: r.PublicKeyAlgorithm, SelfSigned: r.SelfSigned, Type: r.Type,
			Subject: certview.Name{Name: r.Subject.Name, Organization: r.Subject.Organization}, Issuer: certview.Name{Name: r.Issuer.Name},
			RootIssuer: certview.Name{Name: r.RootIssuer.Name}, IssuerCategory: r.IssuerCategory, InstanceCount: r.InstanceCount,
		})
		if len(certs) == cap(certs) || i == nc-1 {
			b.AddCertificates(certs)
			certs = certs[:0]
		}
	}
	ins := make([]certview.Instance, 0, 200)
	for j := 0; j < ni; j++ {
		r := inv.Instance(j)
		in := certview.Instance{ID: r.ID, Port: r.Port, Protocol: r.Protocol, Service: r.Service, Grade: r.Grade,
			Asset:       certview.InstanceAsset{ID: r.Asset.ID, Name: r.Asset.Name, PrimaryIP: r.Asset.PrimaryIP},
			Certificate: certview.InstanceCertificate{CertHash: r.Certificate.CertHash}}
		if g := r.GradeSummary; g != nil {
			in.GradeSummary.Grade = g.Grade
			for k, v := range []int{g.CertificateScore, g.ProtocolSupportScore, g.KeyExchangeScore, g.CipherStrengthScore} {
				*[]*certview.OptFloat{&in.GradeSummary.CertificateScore, &in.GradeSummary.ProtocolSupportScore,
					&in.GradeSummary.KeyExchangeScore, &in.GradeSummary.CipherStrengthScore}[k] = certview.OptFloat{Value: float64(v), Valid: true}
			}
		}
		ins = append(ins, in)
		if len(ins) == cap(ins) || j == ni-1 {
			b.AddInstances(ins)
			ins = ins[:0]
		}
	}
	return b.Build(now, now, time.Minute)
}

// discard is a ResponseWriter that counts and drops the body.
type discard struct {
	h http.Header
	n int64
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

var benchSnap struct {
	once sync.Once
	snap *Snapshot
}

// BenchmarkScrape100k serves /metrics for 100,000 certificates and 300,000 instances
// (the default metric set, about 2.1 million series). "baseline" is the straightforward
// design: const metrics built for every series on every scrape (Exporter), encoded by
// promhttp. "plain" and "gzip" are Exposition.
func BenchmarkScrape100k(b *testing.B) {
	benchSnap.once.Do(func() { benchSnap.snap = SyntheticSnapshot(100_000, 300_000, epoch) })
	snap := benchSnap.snap
	sched := NewScheduler(nil, SchedulerOptions{Interval: time.Hour})
	sched.snap.Store(snap)
	run := func(b *testing.B, h http.Handler, gz bool) {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		b.ReportAllocs()
		var n int64
		for i := 0; i < b.N; i++ {
			d := &discard{h: http.Header{}}
			h.ServeHTTP(d, req)
			n = d.n
		}
		b.ReportMetric(float64(n)/(1<<20), "body-MB")
	}
	b.Run("baseline", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(NewExporter(sched, ExporterOptions{PerCertificate: true, PerInstance: true}))
		run(b, promhttp.HandlerFor(reg, promhttp.HandlerOpts{DisableCompression: true}), false)
	})
	e, _ := NewExposition(sched, nil, ExpositionOptions{PerCertificate: true, PerInstance: true})
	start := time.Now()
	e.Prepare(snap)
	prepare := time.Since(start)
	b.Run("plain", func(b *testing.B) { run(b, e, false) })
	b.Run("gzip", func(b *testing.B) {
		run(b, e, true)
		b.ReportMetric(prepare.Seconds(), "prepare-s")
		var n int
		for _, p := range snap.static.deflate {
			n += len(p)
		}
		b.ReportMetric(float64(n)/(1<<20), "cache-MB")
	})
	runtime.KeepAlive(snap)
}
