package exposition

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// servedHashes are the SHA-256 of what the exposition writes for /metrics at demo size
// (the demo's inventory, polled on the fake clock, scraped 90 minutes later): the
// snapshot's families and the poll health, without the registry's (Go, process and the
// exporter's own metrics, which grow with features on purpose). They were recorded before
// the collector was split into packages (issue 18), which changed not one byte of it:
// 94f08dc7… (owners off) and f6b34ac3… (owners on). A change to the snapshot's families
// changes them on purpose, and says so. Since then: instance_info's fqdn is filled from
// the certificates' host instances (issue 20): 76cb3fd3… and 0082ae95…. Then (issue 21)
// the families qualys_certview_certificates_over_lifetime_cap (3 series, after
// certificates_weak_signature) and, with owners on,
// qualys_certview_owner_certificates_over_lifetime_cap (3 per owner combination, after
// owner_certificates) were added; a diff of the two scrapes showed no other line
// changed. The demo inventory holds no renewal and no issuer of its certificates, so
// certificate_successor_info and issuer_served_leaves are not served in it. (The
// lifetime families were first named ..._lifetime_over_days, which promtool's unit lint
// refuses; only the names and the label, cap_days, changed.) Then (issue 25) the grade
// "other", for grades CertView does not document: one series
// qualys_certview_instances{grade="other"} 0 after grade="M" and, with owners on, one
// qualys_certview_owner_instances{grade="other",...} 0 per owner combination; a diff of
// the two scrapes showed no other line changed. Then (issue 26, the series budget) the
// value-1 family instance_grade, instance_owner_info and certificate_owner_info went,
// instance_score became opt-in, instance_grade_rank gained a series of value 0 for each
// ungraded instance (grade="none", from instance_grade) and lost its owner labels, as did
// instance_grade_trust_ignored_rank, and instance_info gained the owner labels: a script
// applying exactly these moves to the old scrapes gave the new ones line for line, 44,324
// series to 20,564 (owners off) and 54,118 to 20,804 (owners on).
var servedHashes = map[string]string{
	"owners off": "9e95727ddf81d8fa40a60d031ecfb855073587bfaa9c71c0a9d4b8e32dff6fc6",
	"owners on":  "e19eecef5a0c4290aa86ba219ab0d204fc7121d3548dae3ad54f68098552abbc",
}

func TestServedExpositionIsUnchanged(t *testing.T) {
	for name, owned := range map[string]bool{"owners off": false, "owners on": true} {
		t.Run(name, func(t *testing.T) {
			inv := certviewtest.Inventory{Seed: 1, Certificates: 2000, Instances: 5000, VendorSamples: true}
			var owners []snapshot.OwnerLabel
			if owned {
				owners = exampleOwners
			}
			r, e := exposedWith(t, inv, owners, Options{PerCertificate: true, PerInstance: true})
			r.clock.Advance(90 * time.Minute)
			plain, gz := scrape(t, e, false), scrape(t, e, true)
			if !bytes.Equal(plain, gz) {
				t.Fatal("the gzip scrape differs from the plain one")
			}
			sum := sha256.Sum256(plain)
			if got := hex.EncodeToString(sum[:]); got != servedHashes[name] {
				t.Errorf("the served exposition changed: sha256 %s, %d bytes; want %s", got, len(plain), servedHashes[name])
			}
		})
	}
}
