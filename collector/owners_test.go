package collector

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/prometheus/client_golang/prometheus"
)

const ownersYAML = `owners:
  labels:
    - name: team
      tag_regex: '^Team-(.+)$'
    - name: environment
      tag_values: [Production, Staging]
`

func TestOwnersConfig(t *testing.T) {
	c, err := ParseConfig("c.yml", []byte(minimal+ownersYAML), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if inc := c.ClientConfig().Includes; !slices.Equal(inc, []string{"ASSET_TAGS"}) {
		t.Errorf("includes with owners: %q, want ASSET_TAGS", inc)
	}
	plain, err := ParseConfig("c.yml", []byte(strings.Replace(minimal, "qualys:\n", "qualys:\n  includes: [ASSET_INTERFACES]\n", 1)), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if inc := plain.ClientConfig().Includes; !slices.Equal(inc, []string{"ASSET_INTERFACES"}) {
		t.Errorf("includes without owners: %q, want only what is configured", inc)
	}
	r, err := CompileOwners(c.Owners)
	if err != nil || !slices.Equal(r.Names(), []string{"team", "environment"}) {
		t.Fatalf("compiled %v, %v", r, err)
	}
	for _, tc := range []struct {
		tags []string
		want []string
	}{
		{[]string{"Internet Facing Assets", "Team-Payments", "Production"}, []string{"Payments", "Production"}},
		{[]string{"Staging", "Team-Search", "Team-Legacy", "Production"}, []string{"Search", "Staging"}}, // first match in tag order
		{[]string{"Team-", "production", "Cloud Agent"}, []string{"", ""}},                               // an empty capture, another spelling
		{nil, []string{"", ""}},
	} {
		if got := r.Values(tc.tags); !slices.Equal(got, tc.want) {
			t.Errorf("tags %q: values %q, want %q", tc.tags, got, tc.want)
		}
	}
	if r, err := CompileOwners(OwnersConfig{}); r != nil || err != nil {
		t.Errorf("no owners: %v, %v", r, err)
	}
}

func TestOwnersConfigErrorsNameTheLabel(t *testing.T) {
	item := func(s string) string {
		return minimal + "owners:\n  labels:\n    - name: team\n      tag_regex: '^Team-(.+)$'\n" + s
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"reserved", item("    - name: instance\n      tag_values: [Production]\n"), `owners.labels[1].name: "instance" is a label the exporter or its rules already use (line 14)`},
		{"existing", item("    - name: common_name\n      tag_values: [Production]\n"), `owners.labels[1].name: "common_name" is a label`},
		{"invalid", item("    - name: env-name\n      tag_values: [Production]\n"), `owners.labels[1].name: "env-name" is not a valid label name (line 14)`},
		{"dunder", item("    - name: __env\n      tag_values: [Production]\n"), `reserved by Prometheus`},
		{"twice", item("    - name: team\n      tag_values: [Production]\n"), `owners.labels[1].name: "team" is configured twice`},
		{"neither", item("    - name: env\n"), `owners.labels[1]: give tag_regex or tag_values (one of them) (line 14)`},
		{"both", item("    - name: env\n      tag_regex: '(.*)'\n      tag_values: [Production]\n"), `give tag_regex or tag_values`},
		{"no group", item("    - name: env\n      tag_regex: '^Env-.+$'\n"), `owners.labels[1].tag_regex: "^Env-.+$" has no capture group; the first one is the value (line 15)`},
		{"bad regex", item("    - name: env\n      tag_regex: '^Env-(.+$'\n"), `owners.labels[1].tag_regex: error parsing regexp`},
		{"empty value", item("    - name: env\n      tag_values: [Production, '']\n"), `owners.labels[1].tag_values[1]: an empty tag name`},
		{"cap", item("    - name: env\n      tag_values: [Production]\n      max_values: -1\n"), `owners.labels[1].max_values: must not be negative (line 16)`},
		{"unknown key", item("    - name: env\n      tag_value: [Production]\n"), `unknown key tag_value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("c.yml", []byte(tc.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// ownedSnapshot builds a snapshot from certificates whose assets carry tags, and
// instances on those assets.
func ownedSnapshot(t *testing.T, certs []certview.Certificate, ins []certview.Instance) *Snapshot {
	t.Helper()
	b := NewBuilder(Thresholds{WeakRSABits: 2048, WeakECBits: 224})
	b.KeepAssetTags()
	b.AddCertificates(certs)
	b.AddInstances(ins)
	now := time.Unix(1.7e9, 0)
	return b.Build(now, now, time.Second)
}

func taggedAsset(id int64, tags ...string) certview.Asset {
	a := certview.Asset{ID: id}
	for _, t := range tags {
		a.Tags = append(a.Tags, certview.Tag{Name: t})
	}
	return a
}

func instanceOn(id, asset int64, certhash, grade string) certview.Instance {
	in := certview.Instance{ID: id, Grade: grade}
	in.Asset.ID, in.Certificate.CertHash = asset, certhash
	return in
}

func TestResolveOwners(t *testing.T) {
	rules, err := CompileOwners(OwnersConfig{Labels: []OwnerLabel{
		{Name: "team", TagRegex: "^Team-(.+)$"}, {Name: "environment", TagValues: []string{"Production", "Staging"}}}})
	if err != nil {
		t.Fatal(err)
	}
	certs := []certview.Certificate{
		{CertHash: "aa", Assets: []certview.Asset{taggedAsset(1, "Team-Payments", "Production"), taggedAsset(2, "Cloud Agent", "Team-Search", "Staging")}},
		{CertHash: "bb", Assets: []certview.Asset{taggedAsset(3, "Internet Facing Assets")}},
		{CertHash: "cc"}, // stale: no instance serves it
	}
	ins := []certview.Instance{
		instanceOn(10, 1, "aa", "A"), instanceOn(11, 2, "aa", "T"), instanceOn(12, 1, "aa", "A"),
		instanceOn(13, 3, "bb", "F"), instanceOn(14, 99, "bb", "F"), // asset 99's tags are unknown
	}
	s := ownedSnapshot(t, certs, ins)
	o := ResolveOwners(s, rules)
	combo := func(c uint32) string { return strings.Join(o.Combos[c], "/") }
	got := map[string][]string{}
	for i, c := range s.Certificates {
		for _, k := range o.Certificate[i] {
			got[c.CertHash] = append(got[c.CertHash], combo(k))
		}
	}
	want := map[string][]string{"aa": {"Payments/Production", "Search/Staging"}, "bb": {"/"}, "cc": {"/"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("certificate owners %v, want %v", got, want)
	}
	var inst []string
	for i := range s.Instances {
		inst = append(inst, combo(o.Instance[i]))
	}
	if want := []string{"Payments/Production", "Search/Staging", "Payments/Production", "/", "/"}; !slices.Equal(inst, want) {
		t.Errorf("instance owners %q, want %q", inst, want)
	}
	if n := o.Instances[OwnerGrade{o.Instance[0], "A"}]; n != 2 {
		t.Errorf("Payments/Production instances graded A: %d, want 2", n)
	}
	if n := o.Instances[OwnerGrade{0, "F"}]; n != 2 {
		t.Errorf("unowned instances graded F: %d, want 2", n)
	}
	if o.Certificates[0] != 2 || o.Certificates[o.Instance[0]] != 1 {
		t.Errorf("certificates per owner %v", o.Certificates)
	}
	if ResolveOwners(s, nil) != nil {
		t.Error("owners resolved with no rules")
	}
	untagged := NewBuilder(Thresholds{})
	untagged.AddCertificates(certs)
	if snap := untagged.Build(s.Taken, s.Taken, 0); ResolveOwners(snap, rules) != nil {
		t.Error("owners resolved from a listing that did not ask for tags")
	}
}

// The cap keeps each label's values on the most instances, and counts what it drops.
func TestOwnerValueCap(t *testing.T) {
	rules, _ := CompileOwners(OwnersConfig{Labels: []OwnerLabel{{Name: "team", TagRegex: "^Team-(.+)$", MaxValues: 2}}})
	var certs []certview.Certificate
	var ins []certview.Instance
	for i, team := range []string{"A", "B", "B", "C", "C", "C", "D"} {
		id := int64(i + 1)
		certs = append(certs, certview.Certificate{CertHash: fmt.Sprint("h", i), Assets: []certview.Asset{taggedAsset(id, "Team-"+team)}})
		ins = append(ins, instanceOn(100+id, id, fmt.Sprint("h", i), "A"))
	}
	o := ResolveOwners(ownedSnapshot(t, certs, ins), rules)
	var teams []string
	for i := range ins {
		teams = append(teams, o.Combos[o.Instance[i]][0])
	}
	if want := []string{"", "B", "B", "C", "C", "C", ""}; !slices.Equal(teams, want) {
		t.Errorf("capped teams %q, want %q", teams, want)
	}
	if !slices.Equal(o.Dropped, []int{2}) {
		t.Errorf("dropped %v, want [2]", o.Dropped)
	}
}

var exampleOwners = OwnersConfig{Labels: []OwnerLabel{
	{Name: "team", TagRegex: "^Team-(.+)$"}, {Name: "environment", TagValues: []string{"Production", "Staging"}}}}

// ownedRig polls inv with the example owners on, as the service wires them.
func ownedRig(t *testing.T, inv certviewtest.Inventory) (*rig, *Exposition) {
	t.Helper()
	rules, err := CompileOwners(exampleOwners)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, inv, func(o *SchedulerOptions, cc *certview.Config) {
		o.Owners = rules
		cc.Includes = (&Config{Owners: exampleOwners}).includes()
	})
	e, err := NewExposition(r.sched, nil, ExpositionOptions{PerCertificate: true, PerInstance: true, Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	r.sched.SetPrepare(e.Prepare)
	if err := r.sched.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r, e
}

// Every certificate's owner pairs are its serving assets' tags, read by the rules; a
// certificate no instance serves has one pair, empty; every instance carries its asset's.
func TestOwnersMatchTheInventory(t *testing.T) {
	inv := certviewtest.Inventory{Seed: 9, Certificates: 200, Instances: 500}
	r, e := ownedRig(t, inv)
	inv.Now = epoch
	mfs := parse(t, scrape(t, e, true))

	want := map[string]bool{}
	wantInst := map[string]bool{}
	ranks := map[string]bool{}
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
		if in.Grade != "" {
			ranks[key(cert, team, env, "grade="+in.Grade, id)] = true
		}
	}
	stale, multi := 0, 0
	for i := 0; i < inv.Certificates; i++ {
		if inv.Stale(i) {
			want["certhash="+inv.Certificate(i).CertHash+",environment=,team="] = true
			stale++
		}
	}
	got := series(mfs["qualys_certview_certificate_owner_info"])
	perCert := map[string]int{}
	for k := range got {
		perCert[strings.SplitN(k, ",", 2)[0]]++
	}
	for _, n := range perCert {
		if n > 1 {
			multi++
		}
	}
	if !sameKeys(got, want) || stale == 0 || multi == 0 {
		t.Errorf("certificate_owner_info: %d series, want %d (%d stale, %d certificates with several owners)", len(got), len(want), stale, multi)
	}
	if got := series(mfs["qualys_certview_instance_owner_info"]); !sameKeys(got, wantInst) {
		t.Errorf("instance_owner_info: %d series, want %d", len(got), len(wantInst))
	}
	if got := series(mfs["qualys_certview_instance_grade_rank"]); !sameKeys(got, ranks) {
		t.Errorf("instance_grade_rank with owner labels: %d series, want %d", len(got), len(ranks))
	}
	// The per-owner counts add up to the fleet's.
	var sum float64
	for k, v := range series(mfs["qualys_certview_owner_instances"]) {
		sum += v
		if strings.Contains(k, "team=Payments") && strings.Contains(k, "environment=Production") && strings.Contains(k, "grade=F") && v == 0 {
			t.Errorf("no Payments/Production instance graded F: %s", k)
		}
	}
	if int(sum) != len(r.sched.Snapshot().Instances) {
		t.Errorf("owner_instances sum to %v, the snapshot has %d instances", sum, len(r.sched.Snapshot().Instances))
	}
	if len(r.sched.Snapshot().AssetTags) == 0 {
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
	r, e := exposed(t, ExpositionOptions{PerCertificate: true, PerInstance: true})
	if s := r.sched.Snapshot(); s.TagsListed || s.AssetTags != nil || s.Owners != nil {
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
	ref.MustRegister(NewExporter(r.sched, ExporterOptions{PerCertificate: true, PerInstance: true, OwnerLabels: []string{"team", "environment"}, Clock: r.clock}))
	want, err := ref.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sameAsReference(t, "owners on", parse(t, scrape(t, e, true)), want)
}

// Incremental polls keep the owners the full listing read, a restart keeps the tags, and
// a snapshot without tags makes the next poll with owners on full.
func TestOwnersAcrossIncrementalPollsAndRestarts(t *testing.T) {
	rules, _ := CompileOwners(exampleOwners)
	path := t.TempDir() + "/snapshot"
	r := newRig(t, certviewtest.Inventory{Seed: 3, Certificates: 200, Instances: 500}, func(o *SchedulerOptions, cc *certview.Config) {
		o.Owners, o.FullInterval, o.SnapshotPath = rules, 24*time.Hour, path
		cc.Includes = []string{"ASSET_TAGS"}
	})
	full := r.pollAt(0)
	inc := r.pollAt(time.Hour)
	if full.Kind != PollFull || inc.Kind != PollIncremental {
		t.Fatalf("polls %s, %s; want full, incremental", full.Kind, inc.Kind)
	}
	owners := func(s *Snapshot) string {
		var b strings.Builder
		for i := range s.Instances {
			fmt.Fprintf(&b, "%d=%v;", s.Instances[i].ID, s.Owners.Combos[s.Owners.Instance[i]])
		}
		return b.String()
	}
	if inc.Owners == nil || owners(inc) != owners(full) {
		t.Fatal("the incremental poll lost or changed the owners")
	}
	loaded, err := LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.TagsListed || len(loaded.AssetTags) != len(inc.AssetTags) || owners(&Snapshot{Instances: loaded.Instances, Owners: ResolveOwners(loaded, rules)}) != owners(inc) {
		t.Fatal("the saved snapshot lost the asset tags")
	}
	untagged := *loaded
	untagged.TagsListed, untagged.AssetTags = false, nil
	if kind, why := r.sched.pollKind(&untagged, r.clock.Now()); kind != PollFull || !strings.Contains(why, "asset tags") {
		t.Fatalf("a snapshot without tags: next poll %s (%s), want full", kind, why)
	}
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
				rank, _ := GradeRank(in.GradeSummary.GradeWithTrustIgnored)
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

// The example configuration's owners block, uncommented, is the shipped rules' owners.
func TestTheExampleOwnersAreValid(t *testing.T) {
	data, err := os.ReadFile("../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	uncommented := regexp.MustCompile(`(?m)^# (owners:|  labels:|    - name|      tag_)`).ReplaceAll(data, []byte("$1"))
	c, err := ParseConfig("config.example.yml", uncommented, env(map[string]string{EnvPassword: "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.Owners) != fmt.Sprint(exampleOwners) {
		t.Fatalf("the example's owners %+v, want %+v", c.Owners, exampleOwners)
	}
}
