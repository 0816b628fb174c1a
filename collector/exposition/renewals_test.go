package exposition

import (
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
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
