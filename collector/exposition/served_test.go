package exposition

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/prometheus/client_golang/prometheus"
)

// servedHashes are the SHA-256 of the exposition /metrics served at demo size (the demo's
// inventory, polled on the fake clock, scraped 90 minutes later, with the telemetry),
// recorded before the collector was split into packages (issue 18). The split must not
// change one byte; a change to what is served changes them on purpose.
var servedHashes = map[string]string{
	"owners off": "1255a250f133274daf5a76b940eccc6c16f7edb93caf2fbe8c9d2ce462c5246d",
	"owners on":  "f0937cfa949453ab20d6570b921a62ac6f62c0336bac9bb669b9f0fdf5adc920",
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
			reg := prometheus.NewRegistry()
			reg.MustRegister(r.tel.Collectors()...)
			e.gatherer = reg
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
