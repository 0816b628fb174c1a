package certview

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

// benchInventory has three instances (so three assets) per certificate, as at scale.
func benchInventory(certs int) certviewtest.Inventory {
	return certviewtest.Inventory{Seed: 42, Certificates: certs, Instances: 3 * certs, Now: epoch}
}

func certificatePage(inv certviewtest.Inventory, n int) []byte {
	recs := make([]certviewtest.CertificateRecord, n)
	for i := range recs {
		recs[i] = inv.Certificate(i)
	}
	b, _ := json.Marshal(recs)
	return b
}

// BenchmarkDecodePage decodes one 200-record certificates page: "baseline" with a plain
// json.Unmarshal of the whole body, "streamed" with the client's record-by-record decoder
// (which also checks each record and can skip a bad one).
func BenchmarkDecodePage(b *testing.B) {
	page := certificatePage(benchInventory(200), 200)
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(page)))
		for i := 0; i < b.N; i++ {
			var recs []Certificate
			if err := json.Unmarshal(page, &recs); err != nil || len(recs) != 200 {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(200*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("streamed", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(page)))
		for i := 0; i < b.N; i++ {
			recs, _, err := decodePage[Certificate](bytes.NewReader(page), 0, func(int, error) { b.Fatal("skip") })
			if err != nil || len(recs) != 200 {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(200*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// liveHeap is the heap still reachable after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkListing100k lists 100,000 certificates from the simulator over loopback and
// samples the live heap after every page. "streamed" hands each page on and drops it,
// as the exporter does; "baseline" keeps every record, as a client that returns the
// whole listing would. peak-live-MB is the largest growth over the heap before the
// listing; page-raw-MB is the size of one page of raw JSON.
func BenchmarkListing100k(b *testing.B) {
	const n = 100_000
	inv := benchInventory(n)
	pageRaw := float64(len(certificatePage(inv, 200)))
	for _, keep := range []bool{false, true} {
		name := "streamed"
		if keep {
			name = "baseline"
		}
		b.Run(name, func(b *testing.B) {
			srv := certviewtest.NewServer(certviewtest.Options{Inventory: inv, RateLimit: 1 << 20, Concurrency: 4})
			defer srv.Close()
			c, err := New(Config{BaseURL: srv.URL, Credentials: Credentials{Username: "demo", Password: "demo-password"},
				RateLimit: RateLimit{Calls: 1 << 20, Window: time.Hour}, MaxPages: 1000})
			if err != nil {
				b.Fatal(err)
			}
			var kept []Certificate
			var peak uint64
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				kept = nil
				base := liveHeap()
				start := time.Now()
				var sampling time.Duration
				st, err := c.ListCertificates(context.Background(), func(p []Certificate) error {
					if keep {
						kept = append(kept, p...)
					}
					t0 := time.Now()
					if h := liveHeap(); h > base && h-base > peak {
						peak = h - base
					}
					sampling += time.Since(t0)
					return nil
				})
				elapsed += time.Since(start) - sampling
				if err != nil || st.Records != n {
					b.Fatalf("%d records, err %v", st.Records, err)
				}
			}
			runtime.KeepAlive(kept)
			b.ReportMetric(float64(peak)/(1<<20), "peak-live-MB")
			b.ReportMetric(pageRaw/(1<<20), "page-raw-MB")
			b.ReportMetric(float64(peak)/pageRaw, "peak/page")
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "records/s")
		})
	}
}
