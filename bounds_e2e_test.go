//go:build e2e

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

// hostileRun is one run of the binary against a simulator inventory.
type hostileRun struct {
	name            string
	rssMiB, heapMiB float64
	cutDN, cutSANs  float64
}

// TestOversizedRecordsAtTheBinary runs the built exporter, owners on, over 10,000
// certificates and 20,000 instances three times in one test: as generated (the
// baseline), with a 50 KB DN on every certificate (the attack, with 60 KB, kept 718 MB of
// heap; the simulator's pages of 60 KB DNs pass the page limit only split, and a listing
// splits at most 4 pages), and with every string and list the exporter keeps padded past
// its bound (1,200-byte names, 120 SANs, 40 tags of 512 bytes an asset). The hostile
// runs count the cuts; the DN attack must stay within 1.5 times the baseline's peak RSS.
func TestOversizedRecordsAtTheBinary(t *testing.T) {
	const certs, instances = 10_000, 20_000
	runs := []struct {
		name string
		inv  certviewtest.Inventory
	}{
		{"as generated", certviewtest.Inventory{}},
		{"50 KB DN", certviewtest.Inventory{HugeDN: 50_000}},
		{"every field past its bound", certviewtest.Inventory{Oversized: 1_200}},
	}
	var out []hostileRun
	for _, r := range runs {
		inv := r.inv
		inv.Seed, inv.Certificates, inv.Instances = 5, certs, instances
		out = append(out, runHostile(t, r.name, inv))
	}
	base := out[0]
	var b strings.Builder
	fmt.Fprintf(&b, "\n| inventory (%d certificates / %d instances, owners on) | peak RSS | heap in use after the poll | DN cuts | SAN list cuts |\n|---|---|---|---|---|\n", certs, instances)
	for _, r := range out {
		fmt.Fprintf(&b, "| %s | %.0f MiB (%.2fx) | %.0f MiB (%.2fx) | %.0f | %.0f |\n", r.name, r.rssMiB, r.rssMiB/base.rssMiB, r.heapMiB, r.heapMiB/base.heapMiB, r.cutDN, r.cutSANs)
	}
	t.Log(b.String())
	// The attack: a 50 KB DN on every certificate costs about what ordinary ones do (the
	// binary before the bounds peaked at 552 MiB here, with 571 MiB of heap).
	if dn := out[1]; dn.rssMiB > 1.5*base.rssMiB || dn.cutDN < certs {
		t.Errorf("%s: peak RSS %.0f MiB (baseline %.0f MiB, bound 1.5x), %v DNs cut (want one a certificate at least)", dn.name, dn.rssMiB, base.rssMiB, dn.cutDN)
	}
	// Every field at its bound keeps more, by design: up to about 1.6 KB a certificate and
	// 0.7 KB an instance more than a generated record (about 29 MB here), never the
	// padding itself (1,200 bytes a field, 120 SANs and 40 tags a record).
	if all := out[2]; all.rssMiB > 3*base.rssMiB || all.cutDN < certs || all.cutSANs < certs {
		t.Errorf("%s: peak RSS %.0f MiB (baseline %.0f MiB, bound 3x), %v DNs and %v SAN lists cut (want one a certificate at least)",
			all.name, all.rssMiB, base.rssMiB, all.cutDN, all.cutSANs)
	}
}

func runHostile(t *testing.T, name string, inv certviewtest.Inventory) hostileRun {
	t.Helper()
	srv := certviewtest.NewServer(certviewtest.Options{Inventory: inv, RateLimit: 1 << 30, Concurrency: 8})
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "config.yml")
	content := fmt.Sprintf("qualys:\n  api_url: %s\n  username: demo\n  password: demo-password\npoll:\n  interval: 1h\n  timeout: 30m\n"+
		"rate_limit:\n  calls: 1000000000\n  window: 1h\n  concurrency: 8\nowners:\n  labels:\n    - name: team\n      tag_regex: '^Team-(.+)$'\n", srv.URL)
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startExporter(t, nil, "--config.file="+cfg, "--log.level=info")
	p.waitReady(10 * time.Minute)
	mfs := p.scrape()
	run := hostileRun{name: name, rssMiB: peakRSSOf(t, p.cmd.Process.Pid) / 1024}
	if h := mfs["go_memstats_heap_inuse_bytes"]; h != nil {
		run.heapMiB = h.GetMetric()[0].GetGauge().GetValue() / (1 << 20)
	}
	for _, m := range mfs["qualys_certview_api_values_cut_total"].GetMetric() {
		switch labels(m)["field"] {
		case "dn":
			run.cutDN = m.GetCounter().GetValue()
		case "subject_alternative_names":
			run.cutSANs = m.GetCounter().GetValue()
		}
	}
	if up := mfs["qualys_certview_up"]; up == nil || up.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("%s: the poll did not succeed:\n%s", name, p.logs.String())
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	return run
}
