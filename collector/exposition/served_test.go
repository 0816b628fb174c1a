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
// the certificates' host instances (issue 20), the only difference.
var servedHashes = map[string]string{
	"owners off": "76cb3fd3607cb13c415f263f27883663c2df4a58c00f7abce9fcd27f8de7aae5",
	"owners on":  "0082ae958e920d075ba79a2862121134659fae97c2b7facc6d85c632a4f1cc56",
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
