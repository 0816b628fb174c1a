package store

import (
	"bytes"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/exposition"
	"github.com/certview-exporter/certview_exporter/collector/snapshot/snapshottest"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// noHealth is a poll health that never changes.
type noHealth struct{}

func (noHealth) Health() telemetry.Health { return telemetry.Health{} }

// FuzzReadSnapshot: any file is loaded or refused, never a panic; what loads renders an
// exposition that parses.
func FuzzReadSnapshot(f *testing.F) {
	s := snapshottest.Synthetic(20, 40, epoch)
	path := f.TempDir() + "/seed"
	if err := Save(path, s); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte(snapshotMagic + "\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := Read(bytes.NewReader(data), nil)
		if err != nil {
			return
		}
		e, _ := exposition.New(noHealth{}, nil, exposition.Options{PerCertificate: true, PerInstance: true, Interval: time.Hour})
		e.Publish(snap)
		for _, gz := range []bool{false, true} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/metrics", nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			e.ServeHTTP(rec, req)
			if !gz {
				p := expfmt.NewTextParser(model.UTF8Validation)
				if _, err := p.TextToMetricFamilies(rec.Body); err != nil {
					t.Fatalf("the exposition of a loaded snapshot does not parse: %v", err)
				}
			}
		}
	})
}
