package certview

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

func decodeSample[T any, P record[T]](t *testing.T, name string) []T {
	t.Helper()
	recs, raw, err := decodePage[T, P](bytes.NewReader(certviewtest.Sample(name)), 0, func(i int, err error) {
		t.Fatalf("%s: record %d skipped: %v", name, i, err)
	})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if raw != len(recs) {
		t.Fatalf("%s: %d raw, %d decoded", name, raw, len(recs))
	}
	return recs
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func TestDecodeVendorCertificateSamples(t *testing.T) {
	certs := decodeSample[Certificate](t, "certificates_v2.json")
	if len(certs) != 2 {
		t.Fatalf("%d certificates", len(certs))
	}
	c := certs[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"id", c.ID, int64(30029)},
		{"certhash", c.CertHash, "192a86240c5ec5d87dd108f17e2543e78439101f193c99c53193f60d115b885d"},
		{"keySize", c.KeySize, 2048},
		{"validTo", c.ValidTo.Time, ms(1707868799000)},
		{"validFrom", c.ValidFrom.Time, ms(1676246400000)},
		{"validToDate", c.ValidToDate.Time, time.Date(2024, 2, 13, 23, 59, 59, 0, time.UTC)},
		{"signatureAlgorithm", c.SignatureAlgorithm, "SHA256withRSA"},
		{"publicKeyAlgorithm (absent in v2)", c.PublicKeyAlgorithm, ""},
		{"extendedValidation", c.ExtendedValidation, true},
		{"selfSigned", c.SelfSigned, false},
		{"subject", c.Subject.Name, "www.qualys.com"},
		{"subject org", c.Subject.Organization, "Qualys, Inc."},
		{"issuer", c.Issuer.Name, "DigiCert SHA2 Extended Validation Server CA"},
		{"issuer OU", strings.Join(c.Issuer.OrganizationUnit, ","), "www.digicert.com"},
		{"rootissuer", c.RootIssuer.Name, "DigiCert High Assurance EV Root CA"},
		{"rootissuer certhash", c.RootIssuer.CertHash, "7431e5f4c3c1ce4690774f0b61e05440883ba9a01ed00ba6abd7806ed3b118cf"},
		{"issuerCategory", c.IssuerCategory, "DigiCert SHA2 Extended Validation Server CA"},
		{"instanceCount", c.InstanceCount, 2},
		{"assetCount", c.AssetCount, 2},
		{"sources", strings.Join(c.Sources, ","), "VM,QAGENT"},
		{"lastFound", c.LastFound.Time, ms(1680256865000)},
		{"created", c.Created.Time, time.Date(2023, 3, 29, 11, 16, 15, 0, time.UTC)},
		{"assets", len(c.Assets), 2},
		{"asset 0 id", c.Assets[0].ID, int64(21045704)},
		{"asset 0 os", c.Assets[0].OperatingSystem, "NetScaler"},
		{"asset 0 ip", c.Assets[0].PrimaryIP, "64.39.xx.xxx"},
		{"host instance", c.Assets[0].HostInstances[0], HostInstance{ID: 6404, Port: 443, Protocol: "tcp", Service: "http", Grade: "A"}},
		{"asset 1 interface", c.Assets[1].Interfaces[0], Interface{Hostname: "qualys.com", Address: "64.39.xx.xxx"}},
		{"dn", strings.HasPrefix(c.DN, `CN=www.qualys.com, O="Qualys, Inc."`), true},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	was := certs[1]
	if was.Type != "Leaf" || was.IssuerCategory != "unapproved" || was.Assets[0].WASURL != "https://api.example.com" ||
		was.Assets[0].HostInstances[0].Grade != "C" || was.Sources[0] != "WAS" || !was.ValidTo.Equal(ms(1726271999000)) {
		t.Errorf("WAS sample decoded as %+v", was)
	}
}

func TestDecodeVendorV1CertificateWithSANs(t *testing.T) {
	c := decodeSample[Certificate](t, "certificates_v1_sans.json")[0]
	dns := c.SubjectAlternativeNames["DNS Name"]
	if len(dns) != 23 || dns[0] != "www.qualys.com" || dns[22] != "www.qualysguard.eu" {
		t.Errorf("DNS SANs %v", dns)
	}
	if ip, ok := c.SubjectAlternativeNames["IP Address"]; !ok || ip != nil {
		t.Errorf("IP SANs %v (present %v), want present and null", ip, ok)
	}
	a := c.Assets[0]
	if a.AssetID != "99f29795-4c11-49e1-8898-82e9982b0710" || a.Tags[0].Name != "Internet Facing Assets" ||
		a.HostInstances[0].SSLProtocols[0] != "TLSv1.2" || !a.Created.Equal(ms(1680247510486)) {
		t.Errorf("v1 asset decoded as %+v", a)
	}
	if !c.LastFound.Equal(ms(1680256864611)) {
		t.Errorf("lastFound %v", c.LastFound)
	}
}

func TestDecodeVendorInstanceSamples(t *testing.T) {
	ins := decodeSample[Instance](t, "instances_v2.json")
	if len(ins) != 2 || ins[0].ID != 3247 || ins[1].ID != 3177 {
		t.Fatalf("instances %+v", ins)
	}
	in := ins[0]
	g := in.GradeSummary
	if in.EffectiveGrade() != "C" || g.GradeWithTrustIgnored != "C" || in.Port != 443 || in.Service != "http" || in.Protocol != "tcp" {
		t.Errorf("instance %+v", in)
	}
	scores := []OptFloat{g.CertificateScore, g.ProtocolSupportScore, g.KeyExchangeScore, g.CipherStrengthScore}
	for i, want := range []float64{100, 90, 65, 65} {
		if !scores[i].Valid || scores[i].Value != want {
			t.Errorf("score %d = %+v, want %v", i, scores[i], want)
		}
	}
	if g.Warnings != 4 || g.Errors != 2 || g.Notices != 0 || g.Highlights != 2 {
		t.Errorf("counts: %d warnings, %d errors, %d notices, %d highlights", g.Warnings, g.Errors, g.Notices, g.Highlights)
	}
	if g.KeyExchangeWeightage.Value != 19.5 {
		t.Errorf("keyExchangeWeightage %v", g.KeyExchangeWeightage)
	}
	ps := g.ProtocolSupport
	for p, want := range map[Protocol]bool{SSLv2: false, SSLv3: false, TLSv1: true, TLSv11: true, TLSv12: true, TLSv13: false} {
		if !ps.Reported(p) || ps.Supports(p) != want {
			t.Errorf("%s: reported %v supported %v, want %v", p, ps.Reported(p), ps.Supports(p), want)
		}
	}
	if in.Asset.PrimaryIP != "10.10.10.10" || in.Asset.Name != "joe.dough.example.com" ||
		in.Certificate.CertHash != "88be9dcfba0e89ae97c58ac6f1030c4a3a05e9e4b26f03daf3c260ec8e0daf71" ||
		!in.Certificate.LastFound.Equal(ms(1667445018000)) || !in.ScannedDate.Equal(time.Date(2022, 11, 3, 2, 46, 31, 0, time.UTC)) {
		t.Errorf("instance summary %+v", in)
	}
}

func TestVendorSamplesThroughTheSimulator(t *testing.T) {
	opts := inventory(3, 3)
	opts.Inventory.VendorSamples = true
	r := newRig(t, opts, nil)
	_, certs, err := r.listCertificates()
	if err != nil || len(certs) != 5 || certs[0].ID != 30029 || certs[1].ID != 461017 {
		t.Fatalf("certificates: %d, err %v", len(certs), err)
	}
	_, ins, err := r.listInstances()
	if err != nil || len(ins) != 5 || ins[0].ID != 3247 {
		t.Fatalf("instances: %d, err %v", len(ins), err)
	}
	var assets []Asset
	err = r.run(func(ctx context.Context) error {
		_, err := r.c.ListCertificateAssets(ctx, certs[0].CertHash, "", func(p []Asset) error { assets = append(assets, p...); return nil })
		return err
	})
	if err != nil || len(assets) != 2 || assets[0].AssetID != "8d6d19b5-9201-445b-87c2-b61aeb3f4fa5" || assets[0].Interfaces[0].Hostname != "ABC.COM" {
		t.Fatalf("assets %+v, err %v", assets, err)
	}
}

func TestGeneratedInventoryDecodesWithoutSkips(t *testing.T) {
	r := newRig(t, inventory(400, 1000), nil)
	_, certs, err := r.listCertificates()
	if err != nil {
		t.Fatal(err)
	}
	_, ins, err := r.listInstances()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.skips) != 0 {
		t.Fatalf("skipped %+v", r.skips)
	}
	grades := map[string]int{}
	for _, in := range ins {
		grades[in.EffectiveGrade()]++
	}
	for _, g := range []string{"A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M", ""} {
		if grades[g] == 0 {
			t.Errorf("no instance graded %q in %v", g, grades)
		}
	}
	var expired, selfSigned, ec, sha1, stale int
	for _, c := range certs {
		if c.ValidTo.Before(epoch) {
			expired++
		}
		if c.SelfSigned {
			selfSigned++
		}
		if strings.Contains(c.SignatureAlgorithm, "ECDSA") {
			ec++
		}
		if strings.HasPrefix(c.SignatureAlgorithm, "SHA1") {
			sha1++
		}
		switch {
		case c.InstanceCount == 0:
			// Stale: replaced everywhere, expired or about to.
			if stale++; c.ValidTo.After(epoch.Add(30 * 24 * time.Hour)) {
				t.Errorf("stale certificate %s is valid for more than 30 days", c.CertHash)
			}
		case c.InstanceCount < 2:
			t.Fatalf("certificate %s has %d instances, want several", c.CertHash, c.InstanceCount)
		}
	}
	if expired != 20 || selfSigned != 20 || ec != 80 || sha1 != 20 || stale != 45 {
		t.Errorf("spread: %d expired, %d self-signed, %d EC, %d SHA-1, %d stale", expired, selfSigned, ec, sha1, stale)
	}
	// Odd instances carry lastFound in seconds, even ones in milliseconds; both decode alike.
	for _, in := range ins[:4] {
		if d := epoch.Sub(in.Certificate.LastFound.Time); d < 0 || d > 8*24*time.Hour {
			t.Fatalf("instance %d lastFound %v is not near now", in.ID, in.Certificate.LastFound)
		}
	}
}

func TestLenientFields(t *testing.T) {
	page := `[
	 {"id": 1, "certhash": "a", "validTo": null, "validToDate": "2030-01-02T03:04:05.000+00:00", "subject": null, "sources": "VM",
	  "issuer": {"organizationUnit": "Ops"}},
	 {"id": 2, "certhash": "b", "validTo": 1893456000, "keySize": null},
	 {"id": 3, "certhash": "c", "validTo": "1893456000000"},
	 {"id": 4, "certhash": "d", "keySize": "big"},
	 {"id": 5},
	 "not an object",
	 {"id": 7, "certhash": "g", "validTo": true},
	 {"id": 8, "certhash": "h", "validTo": "next tuesday"}
	]`
	var skipped []int
	recs, raw, err := decodePage[Certificate](strings.NewReader(page), 0, func(i int, err error) { skipped = append(skipped, i) })
	if err != nil {
		t.Fatal(err)
	}
	if raw != 8 || len(recs) != 3 || len(skipped) != 5 {
		t.Fatalf("raw %d, %d decoded, skipped %v", raw, len(recs), skipped)
	}
	want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if !recs[0].ValidTo.Equal(want) || recs[0].Sources[0] != "VM" || recs[0].Issuer.OrganizationUnit[0] != "Ops" {
		t.Errorf("record 1: %+v", recs[0])
	}
	if !recs[1].ValidTo.Equal(time.Unix(1893456000, 0)) || !recs[2].ValidTo.Equal(time.Unix(1893456000, 0)) {
		t.Errorf("seconds %v and milliseconds %v should match", recs[1].ValidTo, recs[2].ValidTo)
	}
}

func TestStreamErrorsFailThePage(t *testing.T) {
	for name, body := range map[string]string{
		"truncated": `[{"id": 1, "certhash": "a"}, {"id": 2, "cert`,
		"malformed": `[{"id": 1,, }]`,
		"html":      `<html>Bad Gateway</html>`,
	} {
		_, _, err := decodePage[Certificate](strings.NewReader(body), 0, func(int, error) {})
		if err == nil || !isStream(err) {
			t.Errorf("%s: err = %v, want a stream error", name, err)
		}
	}
	_, _, err := decodePage[Certificate](strings.NewReader(`{"errorCode": 500}`), 0, func(int, error) {})
	if err == nil || isStream(err) || !strings.Contains(err.Error(), "not a JSON array") {
		t.Errorf("object body: err = %v", err)
	}
	recs, raw, err := decodePage[Certificate](strings.NewReader(""), 0, nil)
	if err != nil || raw != 0 || recs != nil {
		t.Errorf("empty body: %v %d %v", recs, raw, err)
	}
}

// A score of "NaN" or "Inf" (strings ParseFloat takes) is refused like any other
// non-number: one such record would turn every fleet sum or average of scores to NaN.
func TestOptFloatRefusesNaNAndInf(t *testing.T) {
	for _, in := range []string{`"NaN"`, `"nan"`, `"Inf"`, `"-Infinity"`, `"+inf"`, `1e400`} {
		var f OptFloat
		err := json.Unmarshal([]byte(in), &f)
		if err == nil {
			t.Errorf("%s: accepted as %+v", in, f)
		}
	}
}

func TestCustomTypesRoundTrip(t *testing.T) {
	var v struct {
		T Timestamp       `json:"t"`
		F OptFloat        `json:"f"`
		N OptFloat        `json:"n"`
		P ProtocolSupport `json:"p"`
	}
	in := `{"t": 1700000000123, "f": "2.5", "n": null, "p": {"TLSv1.2": true, "SSLv3": false, "QUIC": true}}`
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	if v.T.UnixMilli() != 1700000000123 || v.F != (OptFloat{2.5, true}) || v.N.Valid || !v.P.Supports(TLSv12) || v.P.Supports(SSLv3) || !v.P.Reported(SSLv3) {
		t.Fatalf("decoded %+v", v)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"t":1700000000123,"f":2.5,"n":null,"p":{"SSLv3":false,"TLSv1.2":true}}` {
		t.Fatalf("encoded %s", out)
	}
	if TLSv13.String() != "TLSv1.3" || Protocol(99).String() != "unknown" || len(AllProtocols()) != 6 {
		t.Fatal("protocol names")
	}
}

// Tags come in the v1 sample's shape, in other Qualys APIs' shape, or as plain names; a
// shape nobody documents decodes as no tags and keeps the certificate.
func TestDecodeTagsTolerantly(t *testing.T) {
	for _, tc := range []struct {
		json string
		want []string
	}{
		{`[{"name":"Team-Payments","uuid":"d2ba3be1"},{"name":"Production","uuid":"x"}]`, []string{"Team-Payments", "Production"}},
		{`[{"tagId":12,"name":"Team-Payments"}]`, []string{"Team-Payments"}},
		{`["Team-Payments","Staging"]`, []string{"Team-Payments", "Staging"}},
		{`[{"uuid":"no name"},42,{"name":"Production","tagId":"not a number"}]`, []string{"Production"}},
		{`null`, []string{}},
		{`{"list":[{"name":"Team-Payments"}]}`, []string{}},
		{`"Team-Payments"`, []string{}},
	} {
		rec := `{"certhash":"abc","assets":[{"id":7,"tags":` + tc.json + `}]}`
		var c Certificate
		if err := json.Unmarshal([]byte(rec), &c); err != nil {
			t.Errorf("tags %s: %v", tc.json, err)
			continue
		}
		if got := c.Assets[0].Tags.Names(); !slices.Equal(got, tc.want) {
			t.Errorf("tags %s decoded as %q, want %q", tc.json, got, tc.want)
		}
	}
	var tags Tags
	_ = json.Unmarshal([]byte(`[{"tagId":12,"name":"Team-Payments"},{"name":"B","uuid":"u-1"}]`), &tags)
	if tags[0].ID != 12 || tags[1].UUID != "u-1" {
		t.Errorf("tag ids decoded as %+v", tags)
	}
}
