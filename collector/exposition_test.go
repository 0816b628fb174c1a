package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// exposed polls a small inventory (with the vendor samples) into a scheduler whose
// snapshots the exposition prepares, and returns both.
func exposed(t *testing.T, opts ExpositionOptions) (*rig, *Exposition) {
	t.Helper()
	r := newRig(t, certviewtest.Inventory{Seed: 12, Certificates: 120, Instances: 300, VendorSamples: true}, nil)
	opts.Clock = r.clock
	e, err := NewExposition(r.sched, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.sched.SetPrepare(e.Prepare)
	if err := r.sched.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r, e
}

func scrape(t *testing.T, e *Exposition, gz bool) []byte {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip, deflate")
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.Bytes()
	if !gz {
		return body
	}
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatal("no gzip encoding")
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false) // one member must hold it all
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func parse(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	return mfs
}

// series flattens a family into "labels -> value", labels sorted by name (the text
// format does not order them; the reference writes them sorted, Exposition in the
// contract's order, key first).
func series(mf *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		var parts []string
		for _, l := range m.GetLabel() {
			parts = append(parts, l.GetName()+"="+l.GetValue())
		}
		key := strings.Join(sortedCopy(parts), ",")
		out[key] = m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		if h := m.GetHistogram(); h != nil {
			out[key+",sum"], out[key+",count"] = h.GetSampleSum(), float64(h.GetSampleCount())
			for _, b := range h.GetBucket() {
				if math.IsInf(b.GetUpperBound(), 1) {
					continue // the text parser keeps the +Inf bucket, the reference has it implicit
				}
				out[key+",le="+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)] = float64(b.GetCumulativeCount())
			}
		}
	}
	return out
}

// The fast exposition says exactly what the const-metric Exporter says: the same
// families, HELP, TYPE, label sets and values, including awkward label values.
func TestExpositionMatchesTheReferenceCollector(t *testing.T) {
	r, e := exposed(t, ExpositionOptions{PerCertificate: true, PerInstance: true})
	// Add a certificate whose name needs escaping.
	s := r.sched.Snapshot()
	b := NewBuilder(defaults)
	b.certs = append([]Certificate(nil), s.Certificates...)
	b.ins = append([]Instance(nil), s.Instances...)
	b.AddCertificates([]certview.Certificate{{ID: 1, CertHash: "ffff", Subject: certview.Name{Name: "a \"quoted\" \\ name\nwith a newline"},
		ValidTo: certview.Timestamp{Time: epoch.Add(time.Hour)}}})
	odd := b.Build(s.Taken, s.Taken, s.PollDuration)
	e.Prepare(odd)
	r.sched.snap.Store(odd)
	r.clock.Advance(3 * time.Hour)

	ref := prometheus.NewPedanticRegistry()
	ref.MustRegister(NewExporter(r.sched, ExporterOptions{PerCertificate: true, PerInstance: true, Clock: r.clock}))
	want, err := ref.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, gz := range []bool{false, true} {
		sameAsReference(t, fmt.Sprintf("gzip=%v", gz), parse(t, scrape(t, e, gz)), want)
	}
	if !strings.Contains(string(scrape(t, e, false)), `common_name="a \"quoted\" \\ name with a newline"`) {
		t.Fatal("the awkward name is not escaped as expected")
	}
}

// sameAsReference fails unless got has exactly the reference's families, with the same
// HELP, TYPE, label sets and values.
func sameAsReference(t *testing.T, what string, got map[string]*dto.MetricFamily, want []*dto.MetricFamily) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d families, the reference has %d", what, len(got), len(want))
	}
	for _, w := range want {
		g := got[w.GetName()]
		if g == nil || g.GetHelp() != w.GetHelp() || g.GetType() != w.GetType() {
			t.Fatalf("%s: family %s differs: %v", what, w.GetName(), g)
		}
		gs, ws := series(g), series(w)
		if len(gs) != len(ws) {
			t.Fatalf("%s: %s has %d series, the reference %d", what, w.GetName(), len(gs), len(ws))
		}
		for k, v := range ws {
			if gv, ok := gs[k]; !ok || gv != v {
				t.Fatalf("%s: %s{%s} = %v (present %v), want %v", what, w.GetName(), k, gv, ok, v)
			}
		}
	}
}

// A gzip scrape decompresses to the very bytes of a plain one, as a single gzip member
// (so that every client, curl --compressed included, reads it whole), though most of it
// comes from the cache.
func TestGzipScrapeIsThePlainOne(t *testing.T) {
	r, e := exposed(t, ExpositionOptions{PerCertificate: true, PerInstance: true})
	if r.sched.Snapshot().static == nil {
		t.Fatal("Prepare cached nothing")
	}
	plain, gz := scrape(t, e, false), scrape(t, e, true)
	if !bytes.Equal(plain, gz) {
		t.Fatalf("gzip and plain scrapes differ (%d and %d bytes)", len(gz), len(plain))
	}
	// expiry_days follows the clock between scrapes while the cached part stays.
	r.clock.Advance(24 * time.Hour)
	later := parse(t, scrape(t, e, true))
	before := parse(t, plain)
	k := "certhash=" + r.sched.Snapshot().Certificates[0].CertHash
	if d := series(before["qualys_certview_certificate_expiry_days"])[k] - series(later["qualys_certview_certificate_expiry_days"])[k]; d < 0.999 || d > 1.001 {
		t.Fatalf("expiry_days moved by %v in a day", d)
	}
	// Scrapes never call the API.
	calls := r.srv.Sim.Requests("certificates") + r.srv.Sim.Requests("instances") + r.srv.Sim.Requests("auth")
	for i := 0; i < 5; i++ {
		scrape(t, e, i%2 == 0)
	}
	if now := r.srv.Sim.Requests("certificates") + r.srv.Sim.Requests("instances") + r.srv.Sim.Requests("auth"); now != calls {
		t.Fatalf("scrapes made %d API calls", now-calls)
	}
}

func TestInfoLabelAllowList(t *testing.T) {
	_, e := exposed(t, ExpositionOptions{PerCertificate: true, PerInstance: true,
		CertificateInfoLabels: []string{"common_name", "issuer"}, InstanceInfoLabels: []string{"asset_name", "port"}})
	mfs := parse(t, scrape(t, e, true))
	for name, want := range map[string][]string{
		"qualys_certview_certificate_info": {"certhash", "common_name", "issuer"},
		"qualys_certview_instance_info":    {"instance_id", "asset_name", "port"},
	} {
		for _, m := range mfs[name].GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName())
			}
			if strings.Join(sortedCopy(got), ",") != strings.Join(sortedCopy(want), ",") {
				t.Fatalf("%s labels %v, want %v", name, got, want)
			}
		}
	}
	if _, err := NewExposition(nil, nil, ExpositionOptions{CertificateInfoLabels: []string{"colour"}}); err == nil ||
		!strings.Contains(err.Error(), `unknown label "colour"`) {
		t.Fatalf("unknown label: %v", err)
	}
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

// Switching the per-object families off leaves the counts and the health.
func TestPerObjectFamiliesOff(t *testing.T) {
	_, e := exposed(t, ExpositionOptions{})
	mfs := parse(t, scrape(t, e, false))
	for name := range mfs {
		if strings.HasPrefix(name, "qualys_certview_certificate_") || strings.HasPrefix(name, "qualys_certview_instance_") {
			t.Fatalf("%s with the per-object families off", name)
		}
	}
	if series(mfs["qualys_certview_certificates"])[""] != 122 || mfs["qualys_certview_up"] == nil {
		t.Fatal("counts or health missing")
	}
}

func TestNoSnapshotYet(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 1, Certificates: 3}, nil)
	e, _ := NewExposition(r.sched, nil, ExpositionOptions{PerCertificate: true, PerInstance: true, Clock: r.clock})
	mfs := parse(t, scrape(t, e, true))
	if mfs["qualys_certview_up"] == nil || mfs["qualys_certview_certificates"] != nil {
		t.Fatalf("before the first snapshot: %v", mfs)
	}
}
