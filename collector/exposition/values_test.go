package exposition

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/store"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/jonboulle/clockwork"
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

// golden compares the named families that e serves with testdata/name.
func golden(t *testing.T, e *Exposition, name string, families ...string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	g := served{t, e}
	if *update {
		text := exposition(t, g, families)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(g, f, families...); err != nil {
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

// The vendor's sample records, polled through the client and rendered: every family of
// the metric contract, compared with the expected exposition.
func TestExpositionOfVendorSamples(t *testing.T) {
	r, e := exposedWith(t, certviewtest.Inventory{VendorSamples: true}, nil, Options{PerCertificate: true, PerInstance: true, InstanceScoreCategories: true})
	r.clock.Advance(90 * time.Second) // the scrape comes a while after the poll
	golden(t, e, "vendor_samples.prom", snapshotFamilies...)
}

func TestExpiryIsTrueAtScrapeTime(t *testing.T) {
	r, e := exposedWith(t, certviewtest.Inventory{Seed: 5, Certificates: 20, Instances: 20}, nil, Options{PerCertificate: true, PerInstance: true})
	c := r.loop.Snapshot().Certificates[0]
	calls := r.srv.Sim.Requests("certificates") + r.srv.Sim.Requests("instances")
	value := func() float64 {
		mfs, _ := served{t, e}.Gather()
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
	_, e := exposedWith(t, inv, nil, Options{})
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

// scrapeValues scrapes e and returns "name{labels}" -> value, labels sorted by name.
func scrapeValues(t *testing.T, e *Exposition) map[string]float64 {
	t.Helper()
	mfs, err := served{t, e}.Gather()
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
	r := newPolled(t, certviewtest.Inventory{Seed: 1, Certificates: 3}, nil)
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 400})
	if err := r.loop.Poll(context.Background()); err == nil {
		t.Fatal("poll should fail")
	}
	e, err := New(r.loop, nil, Options{PerCertificate: true, PerInstance: true, Interval: time.Hour, Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	got := scrapeValues(t, e)
	if got["qualys_certview_up"] != 0 || got["qualys_certview_poll_consecutive_failures"] != 1 {
		t.Fatalf("health: %v", got)
	}
	if _, ok := got["qualys_certview_certificates"]; ok {
		t.Fatal("counts before the first snapshot would read as an empty inventory")
	}
}

// The series that let dashboards and rules select by index instead of joining: the
// expiry histogram, each certificate's instance count (0 for a stale one) and each
// instance's grade rank with the certhash it presents, all checked against the
// simulator's records.
func TestIndexFriendlySeriesMatchInventory(t *testing.T) {
	inv := certviewtest.Inventory{Seed: 9, Certificates: 200, Instances: 500, Now: epoch}
	r, e := exposedWith(t, inv, nil, Options{PerCertificate: true, PerInstance: true})
	r.clock.Advance(12 * time.Hour)
	now := r.clock.Now()
	got := map[string]float64{}
	mfs, err := served{t, e}.Gather()
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
		for _, days := range snapshot.ExpiryBucketDays {
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
		grade := in.Grade
		if grade == "" {
			grade = snapshot.GradeNone
		}
		prefix := "qualys_certview_instance_grade_rank,certhash=" + in.Certificate.CertHash + ",grade=" + grade + ",instance_id=" + strconv.FormatInt(in.ID, 10)
		// Every instance has a rank; it orders the grades from best to worst, as Grades
		// lists them, and is 0 for none and other.
		k := slices.Index(snapshot.Grades, grade)
		if k < 0 {
			t.Fatalf("instance %d has grade %q, not one of %v", in.ID, grade, snapshot.Grades)
		}
		rank, _ := snapshot.GradeRank(grade)
		want[prefix] = rank
		if (rank == 0) != (grade == snapshot.GradeNone || grade == snapshot.GradeOther) {
			t.Fatalf("grade %s ranks %v", grade, rank)
		}
		if rank > 0 {
			for _, worse := range snapshot.Grades[k+1:] {
				if r, _ := snapshot.GradeRank(worse); r >= rank {
					t.Fatalf("grade %s ranks %v, not below %s's %v", worse, r, grade, rank)
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
	// Ungraded instances rank 0, named none.
	ungraded := 0
	for k, v := range got {
		if strings.HasPrefix(k, "qualys_certview_instance_grade_rank,") && strings.Contains(k, ",grade=none,") {
			if v != 0 {
				t.Fatalf("an ungraded instance ranks %v: %s", v, k)
			}
			ungraded++
		}
	}
	if ungraded == 0 {
		t.Fatal("no ungraded instance in the inventory")
	}
}

// The vendor samples, saved and loaded, render exactly the golden exposition.
func TestLoadedSnapshotRendersTheSame(t *testing.T) {
	r := newPolled(t, certviewtest.Inventory{VendorSamples: true}, nil)
	r.poll(t)
	path := filepath.Join(t.TempDir(), "snapshot")
	if err := store.Save(path, r.loop.Snapshot()); err != nil {
		t.Fatal(err)
	}
	loaded, err := store.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(90 * time.Second)
	e := newFixed(t, &fixed{snap: loaded, health: r.loop.Health()}, Options{PerCertificate: true, PerInstance: true, InstanceScoreCategories: true, Interval: time.Hour, Clock: r.clock})
	golden(t, e, "vendor_samples.prom", snapshotFamilies...)
}

// Time is total: a certificate valid until 9999-12-31 (RFC 5280's "no expiry" date)
// keeps that not-after time and its days to expiry, and one with a validTo of int64-max
// milliseconds saturates far in the future; neither counts as expired. UnixNano wraps
// past 2262 (9999-12-31 became -4.85e9, the year 1816) and Sub saturates at 292 years.
func TestFarFutureTimesAreServedAsTheyAre(t *testing.T) {
	var certs []certview.Certificate
	for _, rec := range []string{
		`{"id": 1, "certhash": "nine-nines", "validFrom": 1700000000000, "validTo": 253402214400000, "instanceCount": 1}`,
		`{"id": 2, "certhash": "int64-max", "validFrom": -9223372036854775808, "validTo": 9223372036854775807, "instanceCount": 1}`,
	} {
		var c certview.Certificate
		if err := json.Unmarshal([]byte(rec), &c); err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	b := snapshot.NewBuilder(snapshot.Options{Thresholds: defaults})
	b.AddCertificates(certs)
	snap := b.Build(epoch, epoch, time.Second)
	clock := clockwork.NewFakeClockAt(epoch)
	e := newFixed(t, &fixed{snap: snap, health: telemetry.Health{Up: true}}, Options{PerCertificate: true, Interval: time.Hour, Clock: clock})
	mfs := parse(t, scrape(t, e, false))
	value := func(name, certhash string) float64 {
		t.Helper()
		for _, m := range mfs[name].GetMetric() {
			if certhash == "" || m.GetLabel()[0].GetValue() == certhash {
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s for %q", name, certhash)
		return 0
	}
	const nineNines = 253402214400 // 9999-12-31T00:00:00Z
	if got := value("qualys_certview_certificate_not_after_timestamp_seconds", "nine-nines"); got != nineNines {
		t.Errorf("not_after of 9999-12-31 = %v, want %v", got, float64(nineNines))
	}
	if got, want := value("qualys_certview_certificate_expiry_days", "nine-nines"), (nineNines-float64(epoch.Unix()))/86400; math.Abs(got-want) > 1e-6 {
		t.Errorf("expiry_days of 9999-12-31 = %v, want %v", got, want)
	}
	maxSeconds := float64(certview.MaxEpochTime.Unix())
	if got := value("qualys_certview_certificate_not_after_timestamp_seconds", "int64-max"); got < maxSeconds-1 || got > maxSeconds+1 {
		t.Errorf("not_after of int64-max ms = %v, want about %v", got, maxSeconds)
	}
	if got := value("qualys_certview_certificate_not_before_timestamp_seconds", "int64-max"); got > -maxSeconds+1 {
		t.Errorf("not_before of int64-min ms = %v, want about %v", got, -maxSeconds)
	}
	if got := value("qualys_certview_certificate_expiry_days", "int64-max"); got < (maxSeconds-float64(epoch.Unix()))/86400-1 {
		t.Errorf("expiry_days of int64-max ms = %v, want about %v", got, (maxSeconds-float64(epoch.Unix()))/86400)
	}
	if got := value("qualys_certview_certificates_expired", ""); got != 0 {
		t.Errorf("certificates_expired = %v, want 0", got)
	}
	// The histogram's buckets: neither certificate expires within 730 days.
	for _, m := range mfs["qualys_certview_certificates_time_to_expiry_seconds"].GetMetric() {
		for _, bk := range m.GetHistogram().GetBucket() {
			if !math.IsInf(bk.GetUpperBound(), 1) && bk.GetCumulativeCount() != 0 {
				t.Errorf("time_to_expiry bucket le=%v holds %d", bk.GetUpperBound(), bk.GetCumulativeCount())
			}
		}
	}
}
