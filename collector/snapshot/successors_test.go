package snapshot

import (
	"fmt"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
)

// cert makes a certificate record valid from from for the given days, with a subject, a
// DN and SANs (nil: none), served by instances.
func cert(hash, cn, org, dn string, from time.Time, days int, sans []string, instances int) certview.Certificate {
	c := certview.Certificate{CertHash: hash, DN: dn, Subject: certview.Name{Name: cn, Organization: org},
		ValidFrom: ts(from), ValidTo: ts(from.Add(time.Duration(days) * 24 * time.Hour)), InstanceCount: instances}
	if sans != nil {
		c.SubjectAlternativeNames = map[string][]string{"DNS Name": sans, "IP Address": nil}
	}
	return c
}

// successorsOf builds a snapshot of the records and maps each certhash to its
// successor's ("" for none).
func successorsOf(t *testing.T, recs ...certview.Certificate) map[string]string {
	t.Helper()
	b := NewBuilder(Options{Thresholds: defaults})
	b.AddCertificates(recs)
	s := b.Build(epoch, epoch, 0)
	out := map[string]string{}
	for i := range s.Certificates {
		out[s.Certificates[i].CertHash] = ""
		if succ, ok := s.Successor(i); ok {
			out[s.Certificates[i].CertHash] = succ.CertHash
		}
	}
	return out
}

func TestSuccessors(t *testing.T) {
	day := 24 * time.Hour
	dn := "CN=www.example.com, O=Example Org, C=US"
	www := []string{"www.example.com", "example.com"}
	cases := []struct {
		name string
		recs []certview.Certificate
		want map[string]string
	}{
		{"renewed: the newest later certificate of the same DN succeeds both older ones", []certview.Certificate{
			cert("old", "www.example.com", "Example Org", dn, epoch.Add(-80*day), 90, www, 1),
			cert("mid", "www.example.com", "Example Org", dn, epoch.Add(-20*day), 90, www, 1),
			cert("new", "www.example.com", "Example Org", dn, epoch.Add(-1*day), 90, append([]string{"api.example.com"}, www...), 0),
		}, map[string]string{"old": "new", "mid": "new", "new": ""}},
		{"not renewed: another subject, or not later at both ends", []certview.Certificate{
			cert("a", "www.example.com", "Example Org", dn, epoch.Add(-80*day), 90, www, 1),
			cert("b", "shop.example.com", "Example Org", "CN=shop.example.com, O=Example Org, C=US", epoch.Add(-1*day), 90, www, 1),
			cert("c", "www.example.com", "Example Org", dn, epoch.Add(-70*day), 30, www, 1),                       // starts later, ends sooner
			cert("d", "www.example.com", "Example Org", dn, epoch.Add(-80*day), 398, www, 1),                      // the same start
			cert("e", "www.example.com", "Other Org", "CN=www.example.com, O=Other Org, C=US", epoch, 90, www, 1), // another organization
		}, map[string]string{"a": "", "b": "", "c": "", "d": "", "e": ""}},
		{"SAN mismatch: a newer certificate that drops a name is no renewal; without SANs on one side, the subject decides", []certview.Certificate{
			cert("old", "www.example.com", "Example Org", dn, epoch.Add(-80*day), 90, www, 1),
			cert("narrow", "www.example.com", "Example Org", dn, epoch.Add(-1*day), 90, []string{"WWW.example.com"}, 1),
			cert("wider", "www.example.com", "Example Org", dn, epoch.Add(-10*day), 90, []string{"EXAMPLE.COM", "www.example.com", "x.example.com"}, 0),
			cert("nosans", "www.example.com", "Example Org", dn, epoch.Add(-2*day), 10, nil, 1), // ends before old
		}, map[string]string{"old": "wider", "narrow": "", "wider": "", "nosans": "narrow"}},
		{"DN missing: name and organization decide; DNs that differ do not match", []certview.Certificate{
			cert("old", "www.example.com", "Example Org", "", epoch.Add(-80*day), 90, nil, 1),
			cert("new", "www.example.com", "Example Org", dn, epoch.Add(-1*day), 90, nil, 1),
			cert("ou", "www.example.com", "Example Org", dn+", OU=Other", epoch.Add(-60*day), 90, nil, 1),
			cert("older", "www.example.com", "Example Org", dn+", OU=Other", epoch.Add(-90*day), 90, nil, 1),
		}, map[string]string{"old": "new", "new": "", "ou": "", "older": "ou"}},
		{"no subject at all, or no validity: never matched", []certview.Certificate{
			cert("x", "", "", "", epoch.Add(-80*day), 90, nil, 1),
			cert("y", "", "", "", epoch.Add(-1*day), 90, nil, 1),
			{CertHash: "z", Subject: certview.Name{Name: "www.example.com", Organization: "Example Org"}, ValidTo: ts(epoch.Add(90 * day))},
			cert("w", "www.example.com", "Example Org", "", epoch, 200, nil, 1),
		}, map[string]string{"x": "", "y": "", "z": "", "w": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := successorsOf(t, c.recs...)
			for h, want := range c.want {
				if got[h] != want {
					t.Errorf("successor of %s: %q, want %q (all: %v)", h, got[h], want, got)
				}
			}
		})
	}
}

// A saved record's SANs, written in any order, are put in order again, and successors
// are found again in a restored snapshot.
func TestSuccessorsSurviveRestore(t *testing.T) {
	day := 24 * time.Hour
	b := NewBuilder(Options{Thresholds: defaults})
	b.AddCertificates([]certview.Certificate{
		cert("old", "www.example.com", "Example Org", "", epoch.Add(-80*day), 90, []string{"b.example.com", "a.example.com"}, 1),
		cert("new", "www.example.com", "Example Org", "", epoch.Add(-1*day), 90, []string{"a.example.com", "b.example.com", "c.example.com"}, 0),
	})
	r := b.Build(epoch, epoch, 0).Records
	r.Certificates = append([]Certificate(nil), r.Certificates...)
	r.Certificates[0].SANs, r.Certificates[1].SANs = "c.example.com\na.example.com\nb.example.com", "b.example.com\na.example.com"
	s := Restore(r, nil)
	if succ, ok := s.Successor(1); !ok || succ.CertHash != "new" {
		t.Fatalf("after a restore: successor %v %v", succ, ok)
	}
}

func TestServedLeavesAndLifetimes(t *testing.T) {
	day := 24 * time.Hour
	leaf := func(hash string, served int, issuer, root string, days int) certview.Certificate {
		c := cert(hash, hash+".example.com", "Example Org", "", epoch.Add(-10*day), days, nil, served)
		c.Issuer.CertHash, c.RootIssuer.CertHash = issuer, root
		return c
	}
	b := NewBuilder(Options{Thresholds: defaults})
	b.AddCertificates([]certview.Certificate{
		leaf("l1", 2, "int", "root", 47),
		leaf("l2", 1, "int", "root", 90),
		leaf("l3", 0, "int", "root", 398), // not served: it breaks nothing
		leaf("l4", 1, "other", "root", 101),
		leaf("self", 1, "self", "self", 3650), // self-signed: not its own leaf
		leaf("int", 0, "root", "root", 1826),  // the intermediate, under the root once
		leaf("root", 0, "root", "root", 7300),
		{CertHash: "nodates", InstanceCount: 1},
	})
	s := b.Build(epoch, epoch, 0)
	want := map[string]int{"int": 2, "root": 3, "l1": 0, "self": 0, "nodates": 0}
	for i := range s.Certificates {
		if w, ok := want[s.Certificates[i].CertHash]; ok && s.ServedLeaves(i) != w {
			t.Errorf("%s: %d served leaves, want %d", s.Certificates[i].CertHash, s.ServedLeaves(i), w)
		}
	}
	// Over 200 days: l3, self, int, root; over 100: and l4; over 47: and l2 (l1 is exactly 47).
	if s.LifetimeOver != [3]int{4, 5, 6} {
		t.Errorf("lifetimes over %v days: %v", LifetimeCapDays, s.LifetimeOver)
	}
}

// A subject shared by many certificates whose SANs all differ tries at most
// successorScan candidates each, and still finds a renewal within them.
func TestSuccessorScanIsBounded(t *testing.T) {
	var recs []certview.Certificate
	for i := 0; i < 500; i++ {
		recs = append(recs, cert(fmt.Sprintf("h%03d", i), "localhost", "", "", epoch.Add(time.Duration(i)*time.Hour), 365,
			[]string{fmt.Sprintf("n%d.local", i)}, 1))
	}
	recs = append(recs, cert("renewal", "localhost", "", "", epoch.Add(1000*time.Hour), 365, []string{"n499.local", "n498.local"}, 0))
	got := successorsOf(t, recs...)
	if got["h499"] != "renewal" || got["h498"] != "renewal" || got["h000"] != "" {
		t.Fatalf("h499 %q, h498 %q, h000 %q", got["h499"], got["h498"], got["h000"])
	}
}
