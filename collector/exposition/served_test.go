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
// the collector was split into packages (issue 18), which changed not one byte of it. A
// change to the snapshot's families changes them on purpose, and says so.
var servedHashes = map[string]string{
	"owners off": "94f08dc75c6c6ab02722db14716e97f473ebdf299686d48e8b81980a76027acc",
	"owners on":  "f6b34ac349b84b22daefadd1307c0dc96fa99b4ac01f3725c2ed919a1268ee57",
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
