package exposition

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/snapshot/snapshottest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

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
	snap *snapshot.Snapshot
}

// BenchmarkScrape100k serves /metrics for 100,000 certificates and 300,000 instances
// (the default metric set, about 2.1 million series). "baseline" is the straightforward
// design: const metrics built for every series on every scrape (Exporter), encoded by
// promhttp. "plain" and "gzip" are Exposition.
func BenchmarkScrape100k(b *testing.B) {
	benchSnap.once.Do(func() { benchSnap.snap = snapshottest.Synthetic(100_000, 300_000, epoch) })
	snap := benchSnap.snap
	source := &fixed{snap: snap}
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
		reg.MustRegister(NewExporter(source, ExporterOptions{Interval: time.Hour, PerCertificate: true, PerInstance: true}))
		run(b, promhttp.HandlerFor(reg, promhttp.HandlerOpts{DisableCompression: true}), false)
	})
	e, _ := New(source, nil, Options{PerCertificate: true, PerInstance: true, Interval: time.Hour})
	start := time.Now()
	e.Publish(snap)
	prepare := time.Since(start)
	b.Run("plain", func(b *testing.B) { run(b, e, false) })
	b.Run("gzip", func(b *testing.B) {
		run(b, e, true)
		b.ReportMetric(prepare.Seconds(), "prepare-s")
		var n int
		for _, p := range e.served.Load().static.deflate {
			n += len(p)
		}
		b.ReportMetric(float64(n)/(1<<20), "cache-MB")
	})
	runtime.KeepAlive(snap)
}
