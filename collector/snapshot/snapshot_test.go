package snapshot

import (
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
)

var defaults = Thresholds{WeakRSABits: 2048, WeakECBits: 224}

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestKeyAlgorithmAndWeakKey(t *testing.T) {
	cases := []struct {
		pub, sig string
		bits     int
		th       Thresholds
		alg      string
		weak     bool
	}{
		{"", "SHA256withRSA", 2048, defaults, "RSA", false},
		{"", "SHA256withRSA", 1024, defaults, "RSA", true},
		{"", "SHA256withECDSA", 256, defaults, "EC", false},    // a strong EC key that RSA rules would call broken
		{"", "SHA256withECDSA", 192, defaults, "EC", true},     // EC from the signature when publicKeyAlgorithm is missing
		{"EC", "SHA256withRSA", 256, defaults, "EC", false},    // v2.1's field wins: an EC key signed by an RSA CA
		{"RSA", "SHA256withECDSA", 256, defaults, "RSA", true}, // and the other way round
		{"", "SHA1withDSA", 1024, defaults, "DSA", true},
		{"", "SHA256withRSA", 0, defaults, "RSA", false}, // unknown size is not weak
		{"", "SHA256withRSA", 2048, Thresholds{WeakRSABits: 3072, WeakECBits: 224}, "RSA", true},
		{"", "SHA256withECDSA", 256, Thresholds{WeakRSABits: 2048, WeakECBits: 384}, "EC", true},
		{"ecPublicKey", "", 384, defaults, "EC", false},
		{"", "Ed25519", 256, defaults, "EdDSA", false},
	}
	for _, c := range cases {
		alg := KeyAlgorithm(c.pub, c.sig)
		if alg != c.alg || WeakKey(alg, c.bits, c.th) != c.weak {
			t.Errorf("%q/%q %d bits %+v: %s weak=%v, want %s weak=%v", c.pub, c.sig, c.bits, c.th, alg, WeakKey(alg, c.bits, c.th), c.alg, c.weak)
		}
	}
}

func TestWeakSignature(t *testing.T) {
	for alg, weak := range map[string]bool{
		"SHA1withRSA": true, "sha1WithRSAEncryption": true, "MD5withRSA": true, "SHA-1withECDSA": true, "MD2withRSA": true,
		"SHA256withRSA": false, "SHA384withECDSA": false, "": false,
	} {
		if WeakSignature(alg) != weak {
			t.Errorf("%q: weak=%v", alg, !weak)
		}
	}
}

func TestLabelSanitising(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                  "plain",
		"with\x00nul":            "withnul",
		"bad\xff\xfeutf8":        "bad\uFFFDutf8",
		"new\nline":              "new line",
		"  ünïcødé  ":            "ünïcødé",
		strings.Repeat("x", 300): strings.Repeat("x", 256),
	} {
		if got := label(in); got != want {
			t.Errorf("label(%q) = %q, want %q", in, got, want)
		}
	}
	for g, want := range map[string]string{"": "none", " a+ ": "A+", "b": "B", "T": "T", "m": "M", "Z": "other", "A++": "other", "none": "other"} {
		got, known := NormalizeGrade(g)
		if got != want || known != (want != "other") {
			t.Errorf("grade %q -> %q (known %v), want %q", g, got, known, want)
		}
	}
}

func ts(t time.Time) certview.Timestamp { return certview.Timestamp{Time: t} }

func TestBuildDedupesCountsAndExpiry(t *testing.T) {
	b := NewBuilder(Options{Thresholds: defaults})
	now := epoch
	b.AddCertificates([]certview.Certificate{
		{ID: 1, CertHash: "bb", ValidTo: ts(now.Add(-time.Hour)), SelfSigned: true, KeySize: 1024, SignatureAlgorithm: "SHA1withRSA"},
		{ID: 2, CertHash: "aa", ValidTo: ts(now.Add(5 * 24 * time.Hour)), KeySize: 2048, SignatureAlgorithm: "SHA256withRSA"},
		{ID: 3, CertHash: "cc", ValidTo: ts(now.Add(40 * 24 * time.Hour)), KeySize: 256, SignatureAlgorithm: "SHA256withECDSA",
			Subject: certview.Name{Name: "evil\x00name"}},
	})
	b.AddCertificates([]certview.Certificate{{ID: 4, CertHash: "aa", ValidTo: ts(now)}}) // same certhash, another id
	b.AddInstances([]certview.Instance{
		{ID: 9, Grade: "F", GradeSummary: certview.GradeSummary{Grade: "F", CertificateScore: certview.OptFloat{Value: 100, Valid: true}}},
		{ID: 7},
	})
	s := b.Build(now, now, time.Second)
	if len(s.Certificates) != 3 || s.Certificates[0].CertHash != "aa" || s.Certificates[2].CommonName != "evilname" {
		t.Fatalf("certificates %+v", s.Certificates)
	}
	if s.Certificates[0].NotAfter != now.Add(5*24*time.Hour) {
		t.Fatal("the first record of a certhash must be kept")
	}
	if s.SelfSigned != 1 || s.WeakKey != 1 || s.WeakSignature != 1 {
		t.Fatalf("counts %d %d %d", s.SelfSigned, s.WeakKey, s.WeakSignature)
	}
	if s.Expired(now) != 1 || s.ExpiringWithin(now, 7*24*time.Hour) != 1 || s.ExpiringWithin(now, 60*24*time.Hour) != 2 {
		t.Fatalf("expiry counts %d %d %d", s.Expired(now), s.ExpiringWithin(now, 7*24*time.Hour), s.ExpiringWithin(now, 60*24*time.Hour))
	}
	// A week later the 5-day certificate has expired too, without a new poll.
	if s.Expired(now.Add(7*24*time.Hour)) != 2 {
		t.Fatal("expired is not computed at the given time")
	}
	if s.Instances[0].ID != 7 || s.Instances[0].Grade != "none" || s.GradeCounts["F"] != 1 || s.GradeCounts["none"] != 1 || s.GradeCounts["A"] != 0 {
		t.Fatalf("instances %+v counts %v", s.Instances, s.GradeCounts)
	}
	if len(s.GradeCounts) != len(Grades) {
		t.Fatalf("grade counts %v must hold every grade", s.GradeCounts)
	}
}

// The instances listing carries no fqdn; the certificates listing names it for each host
// instance, and an instance takes it from there, or keeps the one it had when an
// incremental poll lists it again without its certificate.
func TestInstanceFQDNFromTheCertificatesHostInstances(t *testing.T) {
	cert := certview.Certificate{ID: 1, CertHash: "aa", Assets: []certview.Asset{{ID: 9, HostInstances: []certview.HostInstance{
		{ID: 70, FQDN: "www.example.com"}, {ID: 71}}}}}
	b := NewBuilder(Options{Thresholds: defaults})
	b.AddInstances([]certview.Instance{{ID: 70}, {ID: 71}, {ID: 72}})
	b.AddCertificates([]certview.Certificate{cert}) // after the instances: the order does not matter
	full := b.Build(epoch, epoch, 0)
	if got := []string{full.Instances[0].FQDN, full.Instances[1].FQDN, full.Instances[2].FQDN}; got[0] != "www.example.com" || got[1] != "" || got[2] != "" {
		t.Fatalf("fqdns %q", got)
	}
	inc := NewBuilder(Options{Thresholds: defaults})
	inc.AddInstances([]certview.Instance{{ID: 70, Grade: "B"}}) // rescanned, its certificate not listed again
	merged := inc.Merge(full, false, false, epoch, epoch.Add(time.Hour), 0)
	if merged.Instances[0].FQDN != "www.example.com" || merged.Instances[0].Grade != "B" {
		t.Fatalf("after an incremental poll: %+v", merged.Instances[0])
	}
}
