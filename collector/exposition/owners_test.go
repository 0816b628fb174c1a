package exposition

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/prometheus/client_golang/prometheus"
)

// Every instance's info carries its asset's owner labels, read by the rules; a
// certificate's owners, found from the info series of the instances presenting it, are
// its serving assets' tags; the grade ranks carry no owner labels.
func TestOwnersMatchTheInventory(t *testing.T) {
	inv := certviewtest.Inventory{Seed: 9, Certificates: 200, Instances: 500}
	r, e := ownedRig(t, inv)
	inv.Now = epoch
	mfs := parse(t, scrape(t, e, true))

	want := map[string]bool{}     // certhash and owners
	wantInst := map[string]bool{} // instance_id and owners
	for j := 0; j < inv.Instances; j++ {
		team, env := "team=", "environment="
		for _, tag := range inv.AssetTags(j) { // the first match of each, read here by hand
			if name, ok := strings.CutPrefix(tag, "Team-"); ok && team == "team=" {
				team += name
			}
			if (tag == "Production" || tag == "Staging") && env == "environment=" {
				env += tag
			}
		}
		in := inv.Instance(j)
		cert, id := "certhash="+in.Certificate.CertHash, "instance_id="+strconv.FormatInt(in.ID, 10)
		want[key(cert, team, env)] = true
		wantInst[key(id, team, env)] = true
	}
	// The owners of each certificate, as the shipped rules group them: instance_info
	// without the instance's own labels.
	got, gotInst := map[string]float64{}, map[string]float64{}
	for _, m := range mfs["qualys_certview_instance_info"].GetMetric() {
		var certOwners, instOwners []string
		for _, l := range m.GetLabel() {
			pair := l.GetName() + "=" + l.GetValue()
			switch l.GetName() {
			case "certhash":
				certOwners = append(certOwners, pair)
			case "instance_id":
				instOwners = append(instOwners, pair)
			case "team", "environment":
				certOwners, instOwners = append(certOwners, pair), append(instOwners, pair)
			}
		}
		got[key(certOwners...)], gotInst[key(instOwners...)] = 1, 1
	}
	perCert := map[string]int{}
	for k := range got {
		perCert[strings.SplitN(k, ",", 2)[0]]++
	}
	multi := 0
	for _, n := range perCert {
		if n > 1 {
			multi++
		}
	}
	if !sameKeys(got, want) || multi == 0 {
		t.Errorf("certificate owners from instance_info: %d, want %d (%d certificates with several owners)", len(got), len(want), multi)
	}
	if !sameKeys(gotInst, wantInst) {
		t.Errorf("instance owners from instance_info: %d, want %d", len(gotInst), len(wantInst))
	}
	for _, name := range []string{"qualys_certview_instance_grade_rank", "qualys_certview_instance_grade_trust_ignored_rank"} {
		for k := range series(mfs[name]) {
			if strings.Contains(k, "team=") || strings.Contains(k, "environment=") {
				t.Fatalf("%s carries owner labels: %s", name, k)
			}
		}
	}
	for _, gone := range []string{"qualys_certview_certificate_owner_info", "qualys_certview_instance_owner_info", "qualys_certview_instance_grade"} {
		if mfs[gone] != nil {
			t.Errorf("%s is served; its series moved to instance_info and instance_grade_rank", gone)
		}
	}
	// The per-owner counts add up to the fleet's.
	var sum float64
	for k, v := range series(mfs["qualys_certview_owner_instances"]) {
		sum += v
		if strings.Contains(k, "team=Payments") && strings.Contains(k, "environment=Production") && strings.Contains(k, "grade=F") && v == 0 {
			t.Errorf("no Payments/Production instance graded F: %s", k)
		}
	}
	if int(sum) != len(r.loop.Snapshot().Instances) {
		t.Errorf("owner_instances sum to %v, the snapshot has %d instances", sum, len(r.loop.Snapshot().Instances))
	}
	if len(r.loop.Snapshot().AssetTags) == 0 {
		t.Error("no asset tags in the snapshot: ASSET_TAGS was not asked for, or not decoded")
	}
}

// key is a series key as series() makes it: label pairs sorted.
func key(pairs ...string) string { return strings.Join(sortedCopy(pairs), ",") }

func sameKeys[V any](got map[string]float64, want map[string]V) bool {
	if len(got) != len(want) {
		return false
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			return false
		}
	}
	return true
}

// Without owners, the listing asks for no tags and no owner family is exposed.
func TestNoOwnersNoTags(t *testing.T) {
	r, e := exposed(t, Options{PerCertificate: true, PerInstance: true})
	if s := r.loop.Snapshot(); s.TagsListed || s.AssetTags != nil || s.Owners != nil {
		t.Fatal("owners off, but the snapshot kept tags or owners")
	}
	for name := range parse(t, scrape(t, e, false)) {
		if strings.Contains(name, "owner") {
			t.Errorf("%s exposed with owners off", name)
		}
	}
}

// With owners on, the fast exposition still says what the reference collector says.
func TestOwnedExpositionMatchesTheReferenceCollector(t *testing.T) {
	r, e := ownedRig(t, certviewtest.Inventory{Seed: 12, Certificates: 120, Instances: 300, VendorSamples: true})
	ref := prometheus.NewPedanticRegistry()
	ref.MustRegister(NewExporter(servedWith{e, r.loop}, ExporterOptions{Interval: time.Hour, PerCertificate: true, PerInstance: true, OwnerLabels: []string{"team", "environment"}, Clock: r.clock}))
	want, err := ref.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sameAsReference(t, "owners on", parse(t, scrape(t, e, true)), want)
}

// gradeWithTrustIgnored is exposed where it differs from the grade: the simulator's T
// instances are A with trust set aside.
func TestTrustIgnoredGrade(t *testing.T) {
	inv := certviewtest.Inventory{Seed: 9, Certificates: 200, Instances: 500}
	_, e := ownedRig(t, inv)
	inv.Now = epoch
	got := series(parse(t, scrape(t, e, false))["qualys_certview_instance_grade_trust_ignored_rank"])
	want := 0
	for j := 0; j < inv.Instances; j++ {
		in := inv.Instance(j)
		if in.GradeSummary == nil || in.GradeSummary.GradeWithTrustIgnored == in.Grade {
			continue
		}
		want++
		found := false
		for k, v := range got {
			if strings.Contains(k, "instance_id="+strconv.FormatInt(in.ID, 10)+",") || strings.HasSuffix(k, "instance_id="+strconv.FormatInt(in.ID, 10)) {
				rank, _ := snapshot.GradeRank(in.GradeSummary.GradeWithTrustIgnored)
				found = v == rank && strings.Contains(k, "grade="+in.GradeSummary.GradeWithTrustIgnored+",")
			}
		}
		if !found {
			t.Fatalf("instance %d (grade %s, %s with trust ignored) has no right trust-ignored rank", in.ID, in.Grade, in.GradeSummary.GradeWithTrustIgnored)
		}
	}
	if want == 0 || len(got) != want {
		t.Fatalf("%d trust-ignored ranks, want %d", len(got), want)
	}
}
