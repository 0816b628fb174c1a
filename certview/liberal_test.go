package certview

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// Values of an unexpected but readable type are coerced, not the record dropped; what
// the exporter does not use is decoded leniently; all of it is counted.
func TestLiberalCertificateDecoding(t *testing.T) {
	page := `[
	 {"id": "17", "certhash": "a", "keySize": "2048", "instanceCount": " 3 ", "selfSigned": "false", "validTo": "1893456000000",
	  "subjectAlternativeNames": "a.example.com, b.example.com",
	  "assets": [{"id": "21045704", "hostInstances": [{"id": "6404", "port": "443", "fqdn": "www.example.com"},
	                                                  {"id": "x", "port": 8443, "fqdn": "lost.example.com"}]}]},
	 {"id": 18, "certhash": "b", "keySize": 2048.0, "serialNumber": 123456789012345678901234567890,
	  "subjectAlternativeNames": "{\"DNS Name\": [\"c.example.com\"], \"IP Address\": \"10.0.0.1\"}"},
	 {"id": 19, "certhash": "c", "keySize": null, "subject": null, "assets": null, "validTo": null, "sources": null,
	  "subjectAlternativeNames": null, "issuer": {"name": null, "organizationUnit": null}},
	 {"id": 20, "certhash": "d", "subject": {"name": "www.bank.example\u0000.evil.example", "organization": "Bank\u0000"}},
	 {"id": 21, "certhash": "e", "extendedValidation": {"yes": 1}, "createdDate": true, "dn": ["CN=x"], "imported": "maybe",
	  "assets": [{"id": 5, "operatingSystem": {"name": "Linux"}, "hostInstances": {"id": 9, "port": 443}}]},
	 {"id": 22, "certhash": "f", "keySize": "big"},
	 {"id": 23, "certhash": "g", "keySize": 1e30},
	 {"id": 24, "certhash": "h", "subject": "CN=www.example.com"},
	 {"id": 25, "certhash": "i", "validTo": {"when": "soon"}}
	]`
	type coerceNote struct {
		idx, values int
		first       string
	}
	var notes []coerceNote
	var skipped []int
	recs, raw, err := decodeRecords[Certificate](strings.NewReader(page), 0,
		func(i int, err error) { skipped = append(skipped, i) },
		func(i, n int, first string) { notes = append(notes, coerceNote{i, n, first}) })
	if err != nil {
		t.Fatal(err)
	}
	if raw != 9 || len(recs) != 5 || !reflect.DeepEqual(skipped, []int{5, 6, 7, 8}) {
		t.Fatalf("raw %d, %d kept, skipped %v; want 9, 5 and [5 6 7 8]", raw, len(recs), skipped)
	}
	a := recs[0]
	if a.ID != 17 || a.KeySize != 2048 || a.InstanceCount != 3 || a.SelfSigned || !a.ValidTo.Equal(time.UnixMilli(1893456000000)) {
		t.Errorf("record a: %+v", a)
	}
	if got := a.SubjectAlternativeNames[""]; !reflect.DeepEqual(got, []string{"a.example.com", "b.example.com"}) {
		t.Errorf("SANs as a string: %q", a.SubjectAlternativeNames)
	}
	// The host instance with an unreadable id is dropped; its sibling is kept.
	if len(a.Assets) != 1 || a.Assets[0].ID != 21045704 || !reflect.DeepEqual(a.Assets[0].HostInstances, []HostInstance{{ID: 6404, Port: 443, FQDN: "www.example.com"}}) {
		t.Errorf("assets %+v", a.Assets)
	}
	fqdns := map[int64]string{}
	a.HostInstanceFQDNs(fqdns)
	if !reflect.DeepEqual(fqdns, map[int64]string{6404: "www.example.com"}) {
		t.Errorf("fqdns %v", fqdns)
	}
	b := recs[1]
	if b.KeySize != 2048 || b.SerialNumber != "123456789012345678901234567890" ||
		!reflect.DeepEqual(b.SubjectAlternativeNames, map[string][]string{"DNS Name": {"c.example.com"}, "IP Address": {"10.0.0.1"}}) {
		t.Errorf("record b: keySize %d, serial %q, SANs %q", b.KeySize, b.SerialNumber, b.SubjectAlternativeNames)
	}
	if c := recs[2]; c.KeySize != 0 || !c.ValidTo.IsZero() || c.Assets != nil || !reflect.DeepEqual(c.Subject, Name{}) {
		t.Errorf("record c (nulls): %+v", c)
	}
	if d := recs[3]; d.Subject.Name != "www.bank.example\x00.evil.example" || d.Subject.Organization != "Bank\x00" {
		t.Errorf("record d (NUL): %q %q", d.Subject.Name, d.Subject.Organization)
	}
	e := recs[4]
	if e.ExtendedValidation || !e.Created.IsZero() || e.DN != "" || e.Imported || len(e.Assets) != 1 || e.Assets[0].OperatingSystem != "" ||
		!reflect.DeepEqual(e.Assets[0].HostInstances, []HostInstance{{ID: 9, Port: 443}}) {
		t.Errorf("record e (unused fields of any shape): %+v", e)
	}
	want := []coerceNote{{0, 9, ""}, {1, 4, ""}, {4, 6, ""}} // a: 8 coerced and a host instance dropped; b: 3 and a SAN wrapped in a list
	if len(notes) != len(want) {
		t.Fatalf("coercions %+v, want records 0, 1 and 4", notes)
	}
	for i, n := range notes {
		if n.idx != want[i].idx || n.values != want[i].values || n.first == "" {
			t.Errorf("coercion %d: %+v, want record %d with %d values", i, n, want[i].idx, want[i].values)
		}
	}
}

func TestLiberalInstanceDecoding(t *testing.T) {
	page := `[
	 {"id": "3247", "port": "443", "scannedDate": "2022-11-03T02:46:31Z", "asset": {"id": "7", "name": "srv", "primaryIp": "10.0.0.1"},
	  "certificate": {"id": "30029", "certhash": "ab"},
	  "gradeSummary": {"grade": "B", "certificateScore": "100", "warnings": "none", "protocolSupportInfo": {"TLSv1.2": true}}},
	 {"id": 3248, "port": "https"},
	 {"id": 3249, "asset": {"id": "seven", "name": "srv"}}
	]`
	recs, raw, err := decodeRecords[Instance](strings.NewReader(page), 0, func(i int, err error) {
		if i != 1 || !strings.Contains(err.Error(), "port") {
			t.Errorf("skipped %d: %v", i, err)
		}
	}, nil)
	if err != nil || raw != 3 || len(recs) != 2 {
		t.Fatalf("raw %d, %d kept, err %v", raw, len(recs), err)
	}
	in := recs[0]
	if in.ID != 3247 || in.Port != 443 || in.Asset.ID != 7 || in.Certificate.ID != 30029 || in.EffectiveGrade() != "B" ||
		in.GradeSummary.CertificateScore != (OptFloat{100, true}) || in.GradeSummary.Warnings != 0 || !in.GradeSummary.ProtocolSupport.Supports(TLSv12) {
		t.Errorf("instance %+v", in)
	}
	// An asset whose id cannot be read is dropped whole: no owner is better than a wrong one.
	if recs[1].ID != 3249 || recs[1].Asset != (InstanceAsset{}) {
		t.Errorf("instance with an unreadable asset id: %+v", recs[1])
	}
}

// Through a listing, coercions are counted in ListStats and reported per page.
func TestCoercionsAreCountedPerPage(t *testing.T) {
	var mu sync.Mutex
	var events []CoerceEvent
	r, _ := newHTTPRig(t, pagedHandler(t,
		`[{"id": 1, "certhash": "a", "keySize": "2048"}, {"id": 2, "certhash": "b"}, {"id": 3, "certhash": "c", "assets": [{"id": 1, "hostInstances": [{"id": 5, "port": "443"}]}]}]`),
		func(c *Config) {
			c.Hooks.Coerce = func(e CoerceEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }
		})
	st, certs, err := r.listCertificates()
	if err != nil || len(certs) != 3 {
		t.Fatalf("%d records, err %v", len(certs), err)
	}
	if st.Coerced != 2 || st.Skipped != 0 {
		t.Fatalf("stats %+v, want 2 coerced", st)
	}
	want := CoerceEvent{Endpoint: EndpointCertificates, Page: 0, Records: 2, Values: 2, FirstIndex: 0, First: "keySize"}
	if len(events) != 1 || events[0] != want {
		t.Fatalf("events %+v, want %+v", events, want)
	}
	var sum ListStats
	sum.Add(st)
	sum.Add(st)
	if sum.Coerced != 4 {
		t.Fatalf("Add: %+v", sum)
	}
}

// The simulator, like the API, lists fqdn only inside certificates; it reaches the
// caller there, by instance id.
func TestHostInstanceFQDNsFromTheSimulator(t *testing.T) {
	r := newRig(t, inventory(20, 40), nil)
	_, certs, err := r.listCertificates()
	if err != nil {
		t.Fatal(err)
	}
	_, ins, err := r.listInstances()
	if err != nil {
		t.Fatal(err)
	}
	fqdns := map[int64]string{}
	for i := range certs {
		certs[i].HostInstanceFQDNs(fqdns)
	}
	matched := 0
	for j, in := range ins {
		if in.FQDN != "" {
			t.Fatalf("instance %d has fqdn %q in the instances listing", in.ID, in.FQDN)
		}
		if f, ok := fqdns[in.ID]; ok {
			matched++
			if f != r.srv.Sim.Inventory().InstanceFQDN(j) {
				t.Errorf("instance %d: fqdn %q, want %q", in.ID, f, r.srv.Sim.Inventory().InstanceFQDN(j))
			}
		}
	}
	if matched == 0 {
		t.Fatal("no instance found its fqdn in the certificates")
	}
}

// Integers come as numbers, numeric strings or integral floats, under any case of
// their key; a fraction or a value past int64 is not an integer.
func TestLiberalIntegers(t *testing.T) {
	for _, tc := range []struct {
		rec     string
		keySize int
		kept    bool
	}{
		{`{"certhash": "a", "KEYSIZE": "2048"}`, 2048, true},
		{`{"certhash": "a", "keySize": "2.048e3"}`, 2048, true},
		{`{"certhash": "a", "keySize": " 4096 "}`, 4096, true},
		{`{"certhash": "a", "keySize": ""}`, 0, true},
		{`{"certhash": "a", "keySize": 256, "instanceCount": "-3"}`, 256, true},
		{`{"certhash": "a", "keySize": "12.5"}`, 0, false},
		{`{"certhash": "a", "keySize": "1e19"}`, 0, false},
		{`{"certhash": "a", "keySize": "NaN"}`, 0, false},
		{`{"certhash": "a", "keySize": true}`, 0, false},
		{`{"certhash": "a", "keySize": [2048]}`, 0, false},
	} {
		recs, _, err := decodePage[Certificate](strings.NewReader("["+tc.rec+"]"), 0, func(int, error) {})
		if err != nil {
			t.Fatalf("%s: %v", tc.rec, err)
		}
		if kept := len(recs) == 1; kept != tc.kept || (kept && recs[0].KeySize != tc.keySize) {
			t.Errorf("%s: kept %v %+v, want kept %v with keySize %d", tc.rec, kept, recs, tc.kept, tc.keySize)
		}
	}
}
