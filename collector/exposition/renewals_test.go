package exposition

import (
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
)

// What /metrics serves of renewals, the issuer chain and lifetimes: successor_info only
// for renewed certificates, issuer_served_leaves only for an issuer in the inventory
// with served certificates under it, and the lifetime counts against the caps; the same
// as the reference collector says.
func TestRenewalsChainAndLifetimesAreServed(t *testing.T) {
	day := 24 * time.Hour
	at := func(d time.Duration) certview.Timestamp { return certview.Timestamp{Time: epoch.Add(d)} }
	rec := func(hash, cn string, from time.Duration, days, served int, issuer string) certview.Certificate {
		return certview.Certificate{CertHash: hash, Subject: certview.Name{Name: cn, Organization: "Example Org"},
			DN: "CN=" + cn + ", O=Example Org", ValidFrom: at(from), ValidTo: at(from + time.Duration(days)*day),
			InstanceCount: served, Issuer: certview.Name{Name: "Example CA", CertHash: issuer},
			RootIssuer:              certview.Name{Name: "Example Root", CertHash: "root"},
			SubjectAlternativeNames: map[string][]string{"DNS Name": {cn}}}
	}
	b := snapshot.NewBuilder(snapshot.Options{})
	b.AddCertificates([]certview.Certificate{
		rec("old", "www.example.com", -80*day, 90, 2, "int"),    // renewed, still served
		rec("new", "www.example.com", -5*day, 47, 1, "int"),     // its successor
		rec("lone", "api.example.com", -300*day, 398, 1, "int"), // not renewed
		rec("int", "Example CA", -1000*day, 1826, 0, "root"),
		rec("root", "Example Root", -3000*day, 7300, 0, "root"),
	})
	clock := clockwork.NewFakeClockAt(epoch)
	f := &fixed{snap: b.Build(epoch, epoch, 0)}
	e := newFixed(t, f, Options{PerCertificate: true, Clock: clock})
	mfs := parse(t, scrape(t, e, true))
	ref := prometheus.NewPedanticRegistry()
	ref.MustRegister(NewExporter(f, ExporterOptions{PerCertificate: true, Clock: clock}))
	want, err := ref.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sameAsReference(t, "renewals", mfs, want)
	check := func(name string, want map[string]float64) {
		t.Helper()
		got := series(mfs[name])
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s{%s}: %v, want %v (all: %v)", name, k, got[k], v, got)
			}
		}
	}
	check("qualys_certview_certificate_successor_info", map[string]float64{"certhash=old,successor_certhash=new": 1})
	// The three served leaves under int, and under root through it (int itself is not served).
	check("qualys_certview_issuer_served_leaves", map[string]float64{"certhash=int": 3, "certhash=root": 3})
	check("qualys_certview_certificates_over_lifetime_cap", map[string]float64{"cap_days=200": 3, "cap_days=100": 3, "cap_days=47": 4})
	if mfs["qualys_certview_certificate_successor_info"].GetHelp() == "" {
		t.Error("successor_info has no HELP")
	}

	// Nothing renewed, no issuer in the inventory: neither family is served at all.
	b = snapshot.NewBuilder(snapshot.Options{})
	b.AddCertificates([]certview.Certificate{rec("lone", "api.example.com", -300*day, 398, 1, "int")})
	f = &fixed{snap: b.Build(epoch, epoch, 0)}
	mfs = parse(t, scrape(t, newFixed(t, f, Options{PerCertificate: true}), false))
	for _, name := range []string{"qualys_certview_certificate_successor_info", "qualys_certview_issuer_served_leaves"} {
		if _, ok := mfs[name]; ok {
			t.Errorf("%s is served without a series", name)
		}
	}
}

// The simulator's renewal families, listed and served as a subscription's: every renewal
// found (and nothing else taken for one), the intermediate's served certificates
// counted, and each family certificate served by the instances its case says.
func TestRenewalFamiliesAreServed(t *testing.T) {
	inv := certviewtest.Inventory{Seed: 7, Certificates: 260, Instances: 650, RenewalFamilies: true}
	p, e := exposedWith(t, inv, nil, Options{PerCertificate: true})
	mfs := parse(t, scrape(t, e, false))
	cases := inv.RenewalCases()
	// Blocks 1 and 11 of the thirteen (the last full block, 12, never is one).
	if len(cases) != 40 {
		t.Fatalf("%d family certificates, want two blocks of twenty", len(cases))
	}
	successors := map[string]float64{}
	leaves := map[string]float64{}
	instances := series(mfs["qualys_certview_certificate_instances"])
	kinds := map[certviewtest.Alert]int{}
	for _, c := range cases {
		if c.Successor != "" {
			successors["certhash="+c.CertHash+",successor_certhash="+c.Successor] = 1
		}
		if c.ServedLeaves > 0 {
			leaves["certhash="+c.CertHash] = float64(c.ServedLeaves)
		}
		if got := instances["certhash="+c.CertHash]; got != float64(c.Instances) {
			t.Errorf("%s (%s): served by %v instances, its case says %d", c.CommonName, c.CertHash, got, c.Instances)
		}
		kinds[c.Alert]++
	}
	if got, want := series(mfs["qualys_certview_certificate_successor_info"]), successors; len(got) != len(want) || len(want) != 2*6 {
		t.Errorf("successor_info %v, want the %d renewals %v", got, len(want), want)
	} else {
		for k := range want {
			if got[k] != 1 {
				t.Errorf("successor_info lacks %s", k)
			}
		}
	}
	if got := series(mfs["qualys_certview_issuer_served_leaves"]); len(got) != 2 || len(leaves) != 2 {
		t.Errorf("issuer_served_leaves %v, want %v", got, leaves)
	} else {
		for k, v := range leaves {
			if got[k] != v || v != 2 {
				t.Errorf("issuer_served_leaves{%s} = %v, want %v (2)", k, got[k], v)
			}
		}
	}
	// Each block: three renewed-not-deployed alerts (soon, critical, expired), four not
	// renewed (one critical), one issuer alert; twelve quiet certificates.
	want := map[certviewtest.Alert]int{certviewtest.NoAlert: 24, certviewtest.AlertExpiringSoon: 8,
		certviewtest.AlertExpiringCritical: 4, certviewtest.AlertExpired: 2, certviewtest.AlertIssuerSoon: 2}
	for a, n := range want {
		if kinds[a] != n {
			t.Errorf("%d family certificates must raise %q, want %d (%v)", kinds[a], a, n, kinds)
		}
	}
	// Churn removes instances, never a family's: their cases hold while the demo runs.
	family := map[string]bool{}
	for _, c := range cases {
		family[c.CertHash] = true
	}
	sim := p.srv.Sim.Inventory()
	base := sim.Instance(0).ID
	res := p.srv.Sim.Churn(certviewtest.Churn{Remove: 300})
	if len(res.Removed) < 250 {
		t.Fatalf("churn removed %d instances, want about 300", len(res.Removed))
	}
	for _, id := range res.Removed {
		if in := sim.Instance(int(id - base)); family[in.Certificate.CertHash] {
			t.Errorf("churn removed instance %d of family certificate %s", id, in.Certificate.Name)
		}
	}
}

// A large inventory holds ten family blocks, no more: the share of certificates that
// need action stays that of a fleet.
func TestRenewalFamiliesAtScale(t *testing.T) {
	for _, n := range []int{59, 60, 2000, 100000} {
		inv := certviewtest.Inventory{Seed: 1, Certificates: n, Instances: 3 * n, RenewalFamilies: true}
		want := map[int]int{59: 0, 60: 20, 2000: 200, 100000: 200}[n]
		if got := len(inv.RenewalCases()); got != want {
			t.Errorf("%d certificates: %d family certificates, want %d", n, got, want)
		}
	}
}
