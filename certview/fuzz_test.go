package certview

import (
	"bytes"
	"testing"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

// FuzzDecodePage feeds arbitrary bodies to the page decoder: it must never panic, and
// what it accepts must be records it could key.
func FuzzDecodePage(f *testing.F) {
	for _, name := range []string{"certificates_v2.json", "certificates_v1_sans.json", "instances_v2.json", "assets_v1.json"} {
		f.Add(certviewtest.Sample(name))
	}
	f.Add([]byte(`[{"id": "x"}, 1, null, {"certhash": "a", "validTo": "2030-01-01"}]`))
	f.Add([]byte(`[{"id": 1, "gradeSummary": {"protocolSupportInfo": {"TLSv1.2": true}, "warnings": [1, 2]}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		certs, raw, err := decodePage[Certificate](bytes.NewReader(body), 0, func(int, error) {})
		if err == nil {
			if len(certs) > raw {
				t.Fatalf("%d records from %d elements", len(certs), raw)
			}
			for _, c := range certs {
				if c.CertHash == "" {
					t.Fatal("a certificate without certhash was accepted")
				}
			}
		}
		ins, _, err := decodePage[Instance](bytes.NewReader(body), 0, func(int, error) {})
		if err == nil {
			for _, in := range ins {
				if in.ID == 0 {
					t.Fatal("an instance without id was accepted")
				}
			}
		}
		_, _, _ = decodePage[Asset](bytes.NewReader(body), 0, func(int, error) {})
	})
}
