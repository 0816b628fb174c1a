package snapshot

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
)

// ownedSnapshot builds a snapshot from certificates whose assets carry tags, and
// instances on those assets.
func ownedSnapshot(t *testing.T, rules *OwnerRules, certs []certview.Certificate, ins []certview.Instance) *Snapshot {
	t.Helper()
	b := NewBuilder(Options{Thresholds: defaults, Owners: rules})
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
	rules, err := NewOwnerRules([]OwnerLabel{
		{Name: "team", TagRegex: "^Team-(.+)$"}, {Name: "environment", TagValues: []string{"Production", "Staging"}}})
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
	s := ownedSnapshot(t, rules, certs, ins)
	o := s.Owners
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
	if n := o.Instances[OwnerGrade{Combo: o.Instance[0], Grade: "A"}]; n != 2 {
		t.Errorf("Payments/Production instances graded A: %d, want 2", n)
	}
	if n := o.Instances[OwnerGrade{Combo: 0, Grade: "F"}]; n != 2 {
		t.Errorf("unowned instances graded F: %d, want 2", n)
	}
	if o.Certificates[0] != 2 || o.Certificates[o.Instance[0]] != 1 {
		t.Errorf("certificates per owner %v", o.Certificates)
	}
	if s.WithOwners(nil).Owners != nil {
		t.Error("owners resolved with no rules")
	}
	if s.Owners != o {
		t.Error("WithOwners changed the snapshot it was called on")
	}
	untagged := NewBuilder(Options{})
	untagged.AddCertificates(certs)
	if snap := untagged.Build(s.Taken, s.Taken, 0); snap.WithOwners(rules).Owners != nil {
		t.Error("owners resolved from a listing that did not ask for tags")
	}
}

// The cap keeps each label's values on the most instances, and counts what it drops.
func TestOwnerValueCap(t *testing.T) {
	rules, _ := NewOwnerRules([]OwnerLabel{{Name: "team", TagRegex: "^Team-(.+)$", MaxValues: 2}})
	var certs []certview.Certificate
	var ins []certview.Instance
	for i, team := range []string{"A", "B", "B", "C", "C", "C", "D"} {
		id := int64(i + 1)
		certs = append(certs, certview.Certificate{CertHash: fmt.Sprint("h", i), Assets: []certview.Asset{taggedAsset(id, "Team-"+team)}})
		ins = append(ins, instanceOn(100+id, id, fmt.Sprint("h", i), "A"))
	}
	o := ownedSnapshot(t, rules, certs, ins).Owners
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
