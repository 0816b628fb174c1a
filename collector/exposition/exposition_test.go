package exposition

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gunzipOneMember inflates a gzip body that must be one member.
func gunzipOneMember(t *testing.T, body []byte) []byte {
	t.Helper()
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
	r, _ := exposed(t, Options{})
	// Add a certificate whose name needs escaping.
	s := r.loop.Snapshot()
	records := s.Records
	records.Certificates = append(slices.Clone(s.Certificates), snapshot.Certificate{ID: 1, CertHash: "ffff",
		CommonName: "a \"quoted\" \\ name\nwith a newline", NotAfter: epoch.Add(time.Hour)})
	records.Instances = slices.Clone(s.Instances)
	source := &fixed{snap: snapshot.Restore(records, nil), health: r.loop.Health()}
	e := newFixed(t, source, Options{PerCertificate: true, PerInstance: true, Interval: time.Hour, Clock: r.clock})
	r.clock.Advance(3 * time.Hour)

	ref := prometheus.NewPedanticRegistry()
	ref.MustRegister(NewExporter(source, ExporterOptions{Interval: time.Hour, PerCertificate: true, PerInstance: true, Clock: r.clock}))
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
	r, e := exposed(t, Options{PerCertificate: true, PerInstance: true})
	if p := e.served.Load(); p == nil || p.snap != r.loop.Snapshot() || p.static == nil {
		t.Fatal("the published snapshot's static families were not compressed")
	}
	plain, gz := scrape(t, e, false), scrape(t, e, true)
	if !bytes.Equal(plain, gz) {
		t.Fatalf("gzip and plain scrapes differ (%d and %d bytes)", len(gz), len(plain))
	}
	// expiry_days follows the clock between scrapes while the cached part stays.
	r.clock.Advance(24 * time.Hour)
	later := parse(t, scrape(t, e, true))
	before := parse(t, plain)
	k := "certhash=" + r.loop.Snapshot().Certificates[0].CertHash
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
	_, e := exposed(t, Options{PerCertificate: true, PerInstance: true,
		CertificateInfoLabels: []string{"common_name", "issuer"}, InstanceInfoLabels: []string{"asset_name", "port"}})
	mfs := parse(t, scrape(t, e, true))
	for name, want := range map[string][]string{
		"qualys_certview_certificate_info": {"certhash", "common_name", "issuer"},
		"qualys_certview_instance_info":    {"instance_id", "certhash", "asset_name", "port"},
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
	if _, err := New(nil, nil, Options{CertificateInfoLabels: []string{"colour"}}); err == nil ||
		!strings.Contains(err.Error(), `unknown label "colour"`) {
		t.Fatalf("unknown label: %v", err)
	}
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

// Switching the per-object families off leaves the counts and the health.
func TestPerObjectFamiliesOff(t *testing.T) {
	_, e := exposed(t, Options{})
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
	r := newPolled(t, certviewtest.Inventory{Seed: 1, Certificates: 3}, nil)
	e, _ := New(r.loop, nil, Options{PerCertificate: true, PerInstance: true, Clock: r.clock})
	mfs := parse(t, scrape(t, e, true))
	if mfs["qualys_certview_up"] == nil || mfs["qualys_certview_certificates"] != nil {
		t.Fatalf("before the first snapshot: %v", mfs)
	}
}

// The category scores are opt-in: none by default, the four of each graded instance with
// InstanceScoreCategories; the grade rank is served either way.
func TestInstanceScoresAreOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		r, e := exposed(t, Options{PerCertificate: true, PerInstance: true, InstanceScoreCategories: on})
		mfs := parse(t, scrape(t, e, false))
		want := 0
		if on {
			for _, in := range r.loop.Snapshot().Instances {
				for _, has := range in.HasScore {
					if has {
						want++
					}
				}
			}
		}
		if got := len(mfs["qualys_certview_instance_score"].GetMetric()); got != want || (on && want == 0) {
			t.Errorf("instance_score_categories %v: %d score series, want %d", on, got, want)
		}
		if got, want := len(mfs["qualys_certview_instance_grade_rank"].GetMetric()), len(r.loop.Snapshot().Instances); got != want {
			t.Errorf("instance_score_categories %v: %d grade ranks for %d instances", on, got, want)
		}
	}
}
