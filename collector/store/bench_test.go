package store

import (
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot/snapshottest"
)

// BenchmarkSave100k saves a synthetic snapshot of 100,000 certificates and 300,000
// instances: baseline as format 4 wrote it (the whole payload one gob value, encoded in
// memory, then compressed into a buffer), streamed as Save writes it now. peak-heap-MB is
// the largest heap in use seen while it saves, above the heap before it.
func BenchmarkSave100k(b *testing.B) {
	s := snapshottest.Synthetic(100_000, 300_000, epoch)
	dir := b.TempDir()
	for _, v := range []struct {
		name string
		save func(path string) error
	}{
		{"baseline", func(path string) error {
			return saveFile(path, snapshotMagic, 4, snapshotFile{s.Taken, s.PollDuration, s.Certificates, s.Instances,
				s.Kind, s.FullStarted, s.FullFinished, s.Watermark, s.MaxCertID, s.AssetTags, s.TagsListed, s.Origin}, nil)
		}},
		{"streamed", func(path string) error { return Save(path, s) }},
	} {
		b.Run(v.name, func(b *testing.B) {
			path := filepath.Join(dir, v.name)
			var peak float64
			for range b.N {
				runtime.GC()
				before := heapObjects()
				var top atomic.Uint64
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() { // samples the heap while the save runs
					defer close(done)
					tick := time.NewTicker(time.Millisecond)
					defer tick.Stop()
					for {
						if h := heapObjects(); h > top.Load() {
							top.Store(h)
						}
						select {
						case <-stop:
							return
						case <-tick.C:
						}
					}
				}()
				if err := v.save(path); err != nil {
					b.Fatal(err)
				}
				close(stop)
				<-done
				peak = max(peak, float64(top.Load())-float64(before))
			}
			b.ReportMetric(peak/(1<<20), "peak-heap-MB")
		})
	}
}

func heapObjects() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}
