package collector

import (
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// snapshotFamilies are the metric names dashboards, alerts and outside checks rely on.
var snapshotFamilies = []string{
	"qualys_certview_certificate_not_after_timestamp_seconds",
	"qualys_certview_certificate_not_before_timestamp_seconds",
	"qualys_certview_certificate_expiry_days",
	"qualys_certview_certificate_info",
	"qualys_certview_instance_grade",
	"qualys_certview_instance_score",
	"qualys_certview_instance_grade_rank",
	"qualys_certview_certificate_instances",
	"qualys_certview_certificates_time_to_expiry_seconds",
	"qualys_certview_instance_info",
	"qualys_certview_certificates",
	"qualys_certview_certificates_expired",
	"qualys_certview_certificates_expiring",
	"qualys_certview_certificates_self_signed",
	"qualys_certview_certificates_weak_key",
	"qualys_certview_certificates_weak_signature",
	"qualys_certview_instances",
	"qualys_certview_instances_protocol_supported",
	"qualys_certview_up",
	"qualys_certview_last_poll_success_timestamp_seconds",
	"qualys_certview_poll_consecutive_failures",
	"qualys_certview_snapshot_age_seconds",
	"qualys_certview_poll_interval_seconds",
}

// golden compares the exposition of c with testdata/name.
func golden(t *testing.T, c prometheus.Collector, name string, families ...string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		text := exposition(t, reg, families)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.CollectAndCompare(c, f, families...); err != nil {
		t.Fatal(err)
	}
}

func exposition(t *testing.T, g prometheus.Gatherer, families []string) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	keep := map[string]bool{}
	for _, f := range families {
		keep[f] = true
	}
	for _, mf := range mfs {
		if keep[mf.GetName()] {
			if _, err := writeFamily(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b.String()
}

// polledExporter polls the simulator once and returns the exporter over it.
func polledExporter(t *testing.T, inv certviewtest.Inventory, opts ExporterOptions) (*rig, *Exporter) {
	t.Helper()
	r := newRig(t, inv, nil)
	if err := r.sched.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	opts.Clock = r.clock
	return r, NewExporter(r.sched, opts)
}

// The vendor's sample records, polled through the client and rendered: every family of
// the metric contract, compared with the expected exposition.
func TestExpositionOfVendorSamples(t *testing.T) {
	r, e := polledExporter(t, certviewtest.Inventory{VendorSamples: true}, ExporterOptions{PerCertificate: true, PerInstance: true})
	r.clock.Advance(90 * time.Second) // the scrape comes a while after the poll
	golden(t, e, "vendor_samples.prom", snapshotFamilies...)
}

func TestExpiryIsTrueAtScrapeTime(t *testing.T) {
	r, e := polledExporter(t, certviewtest.Inventory{Seed: 5, Certificates: 20, Instances: 20}, ExporterOptions{PerCertificate: true, PerInstance: true})
	c := r.sched.Snapshot().Certificates[0]
	calls := r.srv.Sim.Requests("certificates") + r.srv.Sim.Requests("instances")
	value := func() float64 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(e)
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "qualys_certview_certificate_expiry_days" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == c.CertHash {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatal("no expiry series")
		return 0
	}
	before := value()
	if want := c.NotAfter.Sub(epoch).Hours() / 24; before != want {
		t.Fatalf("expiry_days %v, want %v", before, want)
	}
	r.clock.Advance(36 * time.Hour)
	if after := value(); after != before-1.5 {
		t.Fatalf("after 36h expiry_days went from %v to %v, want %v", before, after, before-1.5)
	}
	if now := r.srv.Sim.Requests("certificates") + r.srv.Sim.Requests("instances"); now != calls {
		t.Fatalf("scrapes made %d API calls", now-calls)
	}
}

func TestCountsMatchInventory(t *testing.T) {
	inv := certviewtest.Inventory{Seed: 9, Certificates: 200, Instances: 500, Now: epoch}
	_, e := polledExporter(t, inv, ExporterOptions{})
	// Expected values, worked out from the simulator's records by their documented rules.
	var expired, expiring30, selfSigned, weakKey, weakSig int
	for i := 0; i < inv.Certificates; i++ {
		c := inv.Certificate(i)
		to := time.UnixMilli(c.ValidTo)
		switch {
		case to.Before(epoch):
			expired++
		case to.Before(epoch.Add(30 * 24 * time.Hour)):
			expiring30++
		}
		if c.SelfSigned {
			selfSigned++
		}
		ec := c.PublicKeyAlgorithm == "EC"
		if (ec && c.KeySize < 224) || (!ec && c.KeySize < 2048) {
			weakKey++
		}
		if strings.HasPrefix(c.SignatureAlgorithm, "SHA1") || strings.HasPrefix(c.SignatureAlgorithm, "MD5") {
			weakSig++
		}
	}
	grades := map[string]int{}
	for j := 0; j < inv.Instances; j++ {
		g := inv.Instance(j).Grade
		if g == "" {
			g = "none"
		}
		grades[g]++
	}
	checks := map[string]float64{
		"qualys_certview_certificates":                                   200,
		"qualys_certview_certificates_expired":                           float64(expired),
		`qualys_certview_certificates_expiring{within_days="30"}`:        float64(expiring30),
		"qualys_certview_certificates_self_signed":                       float64(selfSigned),
		"qualys_certview_certificates_weak_key":                          float64(weakKey),
		"qualys_certview_certificates_weak_signature":                    float64(weakSig),
		`qualys_certview_instances{grade="F"}`:                           float64(grades["F"]),
		`qualys_certview_instances{grade="none"}`:                        float64(grades["none"]),
		`qualys_certview_instances{grade="T"}`:                           float64(grades["T"]),
		`qualys_certview_instances{grade="A+"}`:                          float64(grades["A+"]),
		`qualys_certview_instances_protocol_supported{protocol="SSLv3"}`: float64(grades["F"]),
	}
	got := scrapeValues(t, e)
	for k, v := range checks {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if expired == 0 || weakKey == 0 || weakSig == 0 || selfSigned == 0 || grades["T"] == 0 {
		t.Fatalf("the inventory lacks a case: %v %v %v %v %v", expired, weakKey, weakSig, selfSigned, grades)
	}
	// Per-object families are off here; the counts stay.
	for k := range got {
		if strings.HasPrefix(k, "qualys_certview_certificate_") || strings.HasPrefix(k, "qualys_certview_instance_") {
			t.Fatalf("per-object series %s with the families switched off", k)
		}
	}
}

// scrapeValues gathers e and returns "name{labels}" -> value.
func scrapeValues(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var parts []string
				for _, l := range m.GetLabel() {
					parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
				}
				key += "{" + strings.Join(parts, ",") + "}"
			}
			out[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}

func TestNoSnapshotMeansOnlyHealth(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 1, Certificates: 3}, nil)
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 400})
	if err := r.sched.Poll(context.Background()); err == nil {
		t.Fatal("poll should fail")
	}
	got := scrapeValues(t, NewExporter(r.sched, ExporterOptions{PerCertificate: true, PerInstance: true, Clock: r.clock}))
	if got["qualys_certview_up"] != 0 || got["qualys_certview_poll_consecutive_failures"] != 1 {
		t.Fatalf("health: %v", got)
	}
	if _, ok := got["qualys_certview_certificates"]; ok {
		t.Fatal("counts before the first snapshot would read as an empty inventory")
	}
}

func TestTelemetryCountsRequests(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 1, Certificates: 450, Instances: 10}, nil)
	if err := r.sched.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.tel.Collectors()...)
	want := `
# HELP qualys_certview_api_requests_total HTTP requests the exporter made to the CertView API, by endpoint and status code (0: no response). Counted live by the exporter.
# TYPE qualys_certview_api_requests_total counter
qualys_certview_api_requests_total{code="200",endpoint="certificates"} 3
qualys_certview_api_requests_total{code="200",endpoint="instances"} 1
qualys_certview_api_requests_total{code="201",endpoint="auth"} 1
# HELP qualys_certview_api_rate_limit_remaining Calls left in the current rate-limit window per API, from the last X-RateLimit-Remaining header the API sent. Cached from the last response.
# TYPE qualys_certview_api_rate_limit_remaining gauge
qualys_certview_api_rate_limit_remaining{endpoint="certificates"} 99997
qualys_certview_api_rate_limit_remaining{endpoint="instances"} 99999
# HELP qualys_certview_api_rate_limit_limit Calls allowed per rate-limit window per API: the last X-RateLimit-Limit header, or the configured rate_limit.calls until one arrives. Cached from the last response.
# TYPE qualys_certview_api_rate_limit_limit gauge
qualys_certview_api_rate_limit_limit{endpoint="certificates"} 100000
qualys_certview_api_rate_limit_limit{endpoint="instances"} 100000
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "qualys_certview_api_requests_total", "qualys_certview_api_rate_limit_remaining", "qualys_certview_api_rate_limit_limit"); err != nil {
		t.Fatal(err)
	}
}

func TestTelemetryShowsTheAPIVersionAndItsDeprecation(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{Seed: 1, Certificates: 20, Instances: 10}, nil)
	r.srv.Sim.Retire("v2.2", 404)
	r.srv.Sim.Deprecate("v2.1", time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))
	if err := r.sched.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.tel.Collectors()...)
	want := `
# HELP qualys_certview_api_version_info The CertView API version in use per endpoint (1): the configured one, or the newest that answered under certificates_api_version auto. Set by the last successful listing.
# TYPE qualys_certview_api_version_info gauge
qualys_certview_api_version_info{endpoint="certificates",version="v2.1"} 1
qualys_certview_api_version_info{endpoint="instances",version="v2"} 1
# HELP qualys_certview_api_deprecated 1 when the CertView API answered an API version's calls with a Deprecation or Sunset header (RFC 9745, RFC 8594). Cached from the last response.
# TYPE qualys_certview_api_deprecated gauge
qualys_certview_api_deprecated{endpoint="certificates",version="v2.1"} 1
# HELP qualys_certview_api_sunset_timestamp_seconds When the CertView API said an API version stops answering (its Sunset header), as a Unix timestamp. Cached from the last response.
# TYPE qualys_certview_api_sunset_timestamp_seconds gauge
qualys_certview_api_sunset_timestamp_seconds{endpoint="certificates",version="v2.1"} 1.7986752e+09
`
	names := []string{"qualys_certview_api_version_info", "qualys_certview_api_deprecated", "qualys_certview_api_sunset_timestamp_seconds"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// The vendor retires v2.1: the next poll negotiates down, and the version series moves.
	r.srv.Sim.Retire("v2.1", 410)
	if err := r.sched.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP qualys_certview_api_version_info The CertView API version in use per endpoint (1): the configured one, or the newest that answered under certificates_api_version auto. Set by the last successful listing.
# TYPE qualys_certview_api_version_info gauge
qualys_certview_api_version_info{endpoint="certificates",version="v2"} 1
qualys_certview_api_version_info{endpoint="instances",version="v2"} 1
`), names[0]); err != nil {
		t.Fatal(err)
	}
}

// The series that let dashboards and rules select by index instead of joining: the
// expiry histogram, each certificate's instance count (0 for a stale one) and each
// instance's grade rank with the certhash it presents, all checked against the
// simulator's records.
func TestIndexFriendlySeriesMatchInventory(t *testing.T) {
	inv := certviewtest.Inventory{Seed: 9, Certificates: 200, Instances: 500, Now: epoch}
	r, e := polledExporter(t, inv, ExporterOptions{PerCertificate: true, PerInstance: true})
	r.clock.Advance(12 * time.Hour)
	now := r.clock.Now()
	got := map[string]float64{}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
			if h := m.GetHistogram(); h != nil {
				for _, b := range h.GetBucket() {
					got[key+",le="+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)] = float64(b.GetCumulativeCount())
				}
				got[key+",count"], got[key+",sum"] = float64(h.GetSampleCount()), h.GetSampleSum()
			}
		}
	}
	want := map[string]float64{}
	hist := "qualys_certview_certificates_time_to_expiry_seconds"
	var sum float64
	stale := 0
	for i := 0; i < inv.Certificates; i++ {
		c := inv.Certificate(i)
		left := time.UnixMilli(c.ValidTo).Sub(now).Seconds()
		sum += left
		for _, days := range ExpiryBucketDays {
			if left <= days*86400 {
				want[hist+",le="+strconv.FormatFloat(days*86400, 'g', -1, 64)]++
			}
		}
		want["qualys_certview_certificate_instances,certhash="+c.CertHash] = float64(c.InstanceCount)
		if c.InstanceCount == 0 {
			stale++
		}
	}
	want[hist+",count"] = float64(inv.Certificates)
	for j := 0; j < inv.Instances; j++ {
		in := inv.Instance(j)
		prefix := "qualys_certview_instance_grade_rank,certhash=" + in.Certificate.CertHash + ",grade=" + in.Grade + ",instance_id=" + strconv.FormatInt(in.ID, 10)
		// The rank orders the grades from best to worst, as Grades lists them.
		if k := slices.Index(Grades, in.Grade); k >= 0 && in.Grade != "none" {
			rank, _ := GradeRank(in.Grade)
			want[prefix] = rank
			for _, worse := range Grades[k+1 : len(Grades)-1] {
				if r, _ := GradeRank(worse); r >= rank {
					t.Fatalf("grade %s ranks %v, not below %s's %v", worse, r, in.Grade, rank)
				}
			}
		}
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if s := got[hist+",sum"]; math.Abs(s-sum) > 1 {
		t.Errorf("%s_sum = %v, want %v", hist, s, sum)
	}
	if stale == 0 || want[hist+",le=0"] == 0 {
		t.Fatalf("the inventory has %d stale and %v expired certificates", stale, want[hist+",le=0"])
	}
	// Ungraded instances have no rank.
	for k := range got {
		if strings.HasPrefix(k, "qualys_certview_instance_grade_rank,") && strings.Contains(k, ",grade=none,") {
			t.Fatalf("an ungraded instance has a rank: %s", k)
		}
	}
}
