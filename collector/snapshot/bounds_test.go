package snapshot

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/certview-exporter/certview_exporter/certview"
)

// counted records what a builder reported, by field.
type counted struct{ cut, outOfRange map[string]int }

func countingOptions() (Options, *counted) {
	c := &counted{cut: map[string]int{}, outOfRange: map[string]int{}}
	return Options{Thresholds: defaults, Owners: mustRules(), Cut: func(f string) { c.cut[f]++ },
		OutOfRange: func(f string) { c.outOfRange[f]++ }}, c
}

func mustRules() *OwnerRules {
	r, err := NewOwnerRules([]OwnerLabel{{Name: "team", TagRegex: "^Team-(.+)$"}})
	if err != nil {
		panic(err)
	}
	return r
}

// hostile is a certificate and an instance whose every string and list is far past its
// bound, as an API could send them: 60 KB names, thousands of SANs and tags.
func hostile(i int) (certview.Certificate, certview.Instance) {
	big := func(what string, n int) string { return fmt.Sprintf("%s-%d-", what, i) + strings.Repeat("x", n) }
	var sans []string
	for k := range 300 {
		sans = append(sans, fmt.Sprintf("host%d-%d.example.com", k, i))
	}
	sans = append(sans, big("long", 300)) // past a DNS name's 253 bytes
	var tags certview.Tags
	for k := range 100 {
		tags = append(tags, certview.Tag{Name: big(fmt.Sprintf("tag%d", k), 1_000)})
	}
	tags = append(tags, certview.Tag{Name: "Team-payments"}) // the one tag the owner rule reads
	cert := certview.Certificate{
		ID: int64(i + 1), CertHash: big("hash", 60_000), SerialNumber: big("serial", 60_000), DN: "CN=" + big("dn", 60_000),
		ValidFrom: ts(epoch.Add(-time.Hour)), ValidTo: ts(epoch.Add(time.Duration(i+1) * time.Hour)),
		SignatureAlgorithm: big("alg", 60_000), PublicKeyAlgorithm: big("pka", 60_000), Type: big("type", 60_000),
		IssuerCategory:          big("cat", 60_000),
		Subject:                 certview.Name{Name: big("cn", 60_000), Organization: big("o", 60_000)},
		Issuer:                  certview.Name{Name: big("issuer", 60_000), CertHash: big("ih", 60_000)},
		RootIssuer:              certview.Name{Name: big("root", 60_000), CertHash: big("rh", 60_000)},
		SubjectAlternativeNames: map[string][]string{"dnsNames": sans},
		Assets: []certview.Asset{{ID: int64(100 + i), Tags: tags, HostInstances: []certview.HostInstance{
			{ID: int64(1000 + i), FQDN: big("fqdn", 60_000)}}}},
	}
	in := certview.Instance{ID: int64(1000 + i), Port: 443, Protocol: big("tcp", 60_000), Service: big("svc", 60_000),
		Asset:        certview.InstanceAsset{ID: int64(100 + i), Name: big("asset", 60_000), PrimaryIP: big("ip", 60_000)},
		Certificate:  certview.InstanceCertificate{ID: int64(i + 1), CertHash: cert.CertHash},
		GradeSummary: certview.GradeSummary{Grade: "Z" + big("g", 60_000), GradeWithTrustIgnored: "Q", CertificateScore: certview.OptFloat{Value: 1e308, Valid: true}, ProtocolSupportScore: certview.OptFloat{Value: -1, Valid: true}, KeyExchangeScore: certview.OptFloat{Value: 90, Valid: true}},
	}
	return cert, in
}

// keptBytes sums the bytes of every string a certificate and an instance keep.
func keptBytes(c *Certificate, in *Instance) int {
	n := 0
	for _, s := range []string{c.CertHash, c.CommonName, c.Organization, c.Issuer, c.RootIssuer, c.IssuerCategory,
		c.SignatureAlgorithm, c.KeyAlgorithm, c.Type, c.SerialNumber, c.DN, c.SANs, c.IssuerCertHash, c.RootIssuerCertHash,
		in.CertHash, in.AssetName, in.IP, in.Protocol, in.Service, in.FQDN, in.Grade, in.GradeTrustIgnored} {
		n += len(s)
	}
	return n
}

// Every string a snapshot keeps of a record is bounded, every list counted: 100
// certificates with 60 KB values everywhere keep at most a few KiB each, each cut is
// reported once per record and field, an unknown grade is "other" and a score outside
// 0-100 is dropped. Before the bounds, such a record kept about 1 MB (and 10,000 of
// them with a 60 KB DN kept 718 MB of heap in the exporter).
func TestEveryKeptStringIsBounded(t *testing.T) {
	opts, got := countingOptions()
	b := NewBuilder(opts)
	const n = 100
	for i := range n {
		c, in := hostile(i)
		b.AddCertificates([]certview.Certificate{c})
		b.AddInstances([]certview.Instance{in})
	}
	for k := range b.shared {
		if len(k.raw) > maxHostBytes {
			t.Fatalf("the shared map keeps a key of %d bytes", len(k.raw))
		}
	}
	s := b.Build(epoch, epoch, 0)
	if len(s.Certificates) != n || len(s.Instances) != n {
		t.Fatalf("%d certificates, %d instances", len(s.Certificates), len(s.Instances))
	}
	// The most a record can keep: each field at its bound.
	const perRecord = 2*maxCertHashBytes + 4*maxNameBytes + 6*maxShortBytes + MaxDNBytes + MaxSANBytes + 2*maxCertHashBytes +
		maxHostBytes + 2*maxShortBytes + maxHostBytes + 2*len(GradeOther)
	for i := range s.Certificates {
		c := &s.Certificates[i]
		in := &s.Instances[i]
		if kept := keptBytes(c, in); kept > perRecord {
			t.Fatalf("record %d keeps %d bytes, more than the %d its bounds allow", i, kept, perRecord)
		}
		for _, v := range []string{c.CommonName, c.SerialNumber, in.AssetName, in.IP, in.FQDN} {
			if !utf8.ValidString(v) {
				t.Fatalf("a cut value is not UTF-8: %q", v)
			}
		}
		if !strings.HasPrefix(c.DN, "sha256:") || len(c.DN) != MaxDNBytes {
			t.Fatalf("a 60 KB DN is kept as %q", c.DN)
		}
		if names := strings.Split(c.SANs, "\n"); len(c.SANs) > MaxSANBytes || !slices.IsSorted(names) || slices.ContainsFunc(names, func(s string) bool { return len(s) > MaxSANNameBytes }) {
			t.Fatalf("SANs of %d bytes, %d names", len(c.SANs), len(names))
		}
		if in.Grade != GradeOther || in.GradeTrustIgnored != "" || in.HasScore != [4]bool{false, false, true, false} || in.Scores[2] != 90 {
			t.Fatalf("instance %d: grade %q/%q, scores %v %v", i, in.Grade, in.GradeTrustIgnored, in.Scores, in.HasScore)
		}
	}
	// With owner rules, an asset keeps only the tags they read: of 101, the one team tag
	// (the last), and the owner resolves from it.
	for id, tags := range s.AssetTags {
		if !slices.Equal(tags, []string{"Team-payments"}) {
			t.Fatalf("asset %d keeps %d tags: %.80q", id, len(tags), tags)
		}
	}
	if s.Owners == nil || s.Owners.Instance[0] == 0 || s.Owners.Combos[s.Owners.Instance[0]][0] != "payments" {
		t.Fatal("the owner tag was not kept")
	}
	// Without rules (a saved snapshot restored), an asset keeps its first MaxTagsPerAsset
	// tags, each bounded.
	r := s.Records
	c, _ := hostile(0)
	r.AssetTags = map[uint64][]string{7: c.Assets[0].Tags.Names()}
	for _, tag := range Restore(r, nil).AssetTags[7] {
		if len(tag) > maxHostBytes {
			t.Fatalf("a restored tag of %d bytes", len(tag))
		}
	}
	if n := len(Restore(r, nil).AssetTags[7]); n != MaxTagsPerAsset {
		t.Fatalf("a restored asset keeps %d tags", n)
	}
	wantCut := map[string]int{FieldCertHash: 3 * n, FieldCommonName: n, FieldOrganization: n, FieldIssuer: 2 * n,
		FieldIssuerCategory: n, FieldSignatureAlgorithm: n, FieldType: n, FieldSerialNumber: n, FieldDN: n, FieldSANs: n,
		FieldAssetName: n, FieldIP: n, FieldProtocol: n, FieldService: n, FieldFQDN: n,
		FieldKeyAlgorithm: n}
	// The instance's certhash is the certificate's: cut again where the instance names it.
	wantCut[FieldCertHash] += n
	if !maps.Equal(got.cut, wantCut) {
		t.Errorf("cuts reported %v\nwant %v", got.cut, wantCut)
	}
	if want := map[string]int{FieldGrade: 2 * n, FieldScore: 2 * n}; !maps.Equal(got.outOfRange, want) {
		t.Errorf("out of range %v, want %v", got.outOfRange, want)
	}
	for f := range got.cut {
		if !slices.Contains(CutFields, f) {
			t.Errorf("field %q is not in CutFields", f)
		}
	}
	if s.GradeCounts[GradeOther] != n {
		t.Errorf("grade counts %v", s.GradeCounts)
	}
}

// A DN kept as its digest still tells renewals apart: the same long DN matches, another
// does not. A SAN list cut to its bound keeps a sorted prefix, so a renewal with the same
// names still succeeds the old certificate.
func TestBoundedSubjectsStillMatchRenewals(t *testing.T) {
	long := "CN=www.example.com, O=" + strings.Repeat("Example ", 100)
	var sans []string
	for k := range 200 {
		sans = append(sans, fmt.Sprintf("h%03d.example.com", k))
	}
	cert := func(id int64, dn string, from time.Time) certview.Certificate {
		return certview.Certificate{ID: id, CertHash: fmt.Sprint("h", id), DN: dn, Subject: certview.Name{Name: "www.example.com"},
			ValidFrom: ts(from), ValidTo: ts(from.Add(90 * 24 * time.Hour)), SubjectAlternativeNames: map[string][]string{"dnsNames": sans}}
	}
	b := NewBuilder(Options{Thresholds: defaults})
	b.AddCertificates([]certview.Certificate{cert(1, long, epoch), cert(2, long, epoch.Add(24*time.Hour)),
		cert(3, long+"X", epoch.Add(48*time.Hour))})
	s := b.Build(epoch, epoch, 0)
	if s.Certificates[0].DN != s.Certificates[1].DN || s.Certificates[1].DN == s.Certificates[2].DN {
		t.Fatal("digests of equal DNs differ, or of different DNs match")
	}
	if next, ok := s.Successor(0); !ok || next.CertHash != "h2" {
		t.Fatalf("the renewal with the same long DN and SANs is not the successor: %v", next)
	}
	// Saved and restored, the records are bounded again and the digest is kept as it is.
	r := s.Records
	r.Certificates = slices.Clone(r.Certificates)
	r.Certificates[0].DN = long
	restored := Restore(r, nil)
	if restored.Certificates[0].DN != s.Certificates[1].DN {
		t.Fatal("a restored long DN is not bounded as a polled one")
	}
}

// One value named by fields of different bounds is bounded for each, and a value that
// cleaning makes longer (each invalid byte becomes a three-byte U+FFFD) is cut to its
// field's bound and counted, every time a record names it.
func TestSharedValuesKeepEachFieldsBound(t *testing.T) {
	opts, got := countingOptions()
	b := NewBuilder(opts)
	dirty := strings.Repeat("\xffa", 32) // 64 bytes raw, 128 once made valid
	if v := b.boundedShare(FieldFQDN, dirty, maxHostBytes); len(v) != 128 {
		t.Fatalf("fqdn: %d bytes", len(v))
	}
	for range 2 {
		if v := b.boundedShare(FieldProtocol, dirty, maxShortBytes); len(v) > maxShortBytes || !utf8.ValidString(v) {
			t.Fatalf("protocol: %d bytes, valid %v", len(v), utf8.ValidString(v))
		}
	}
	if got.cut[FieldProtocol] != 2 || got.cut[FieldFQDN] != 0 {
		t.Fatalf("cuts %v: want the protocol cut twice, the fqdn never", got.cut)
	}
}
