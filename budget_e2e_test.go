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

// The Standard tier scaled down: 10 calls per 6-second window per API, and an inventory
// whose full listing needs about four windows. The built binary is run as a user of that
// tier would configure it.
const (
	tierCalls        = 10
	tierWindow       = 6 * time.Second
	tierCertificates = 2_000
	tierInstances    = 6_000
)

// tierServer is the simulator with the tier's budget, counting calls per rolling window
// per API on the real clock.
func tierServer(t *testing.T) *certviewtest.Server {
	t.Helper()
	srv := certviewtest.NewServer(certviewtest.Options{
		Inventory: certviewtest.Inventory{Seed: 21, Certificates: tierCertificates, Instances: tierInstances, Now: time.Now()},
		RateLimit: tierCalls, RateWindow: tierWindow, Concurrency: 2,
	})
	t.Cleanup(srv.Close)
	return srv
}

// tierConfig is what a user of the tier writes: the API, the account, the budget and a
// 5-second interval; snapshot, when set, is where the snapshot is kept.
func tierConfig(t *testing.T, url, snapshot string) string {
	t.Helper()
	cfg := fmt.Sprintf("qualys:\n  api_url: %s\n  username: demo\nrate_limit:\n  calls: %d\n  window: %s\npoll:\n  interval: 5s\n",
		url, tierCalls, tierWindow)
	if snapshot != "" {
		cfg += "snapshot:\n  path: " + snapshot + "\n"
	}
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// listingCalls is the listing calls the simulator answered, both APIs.
func listingCalls(srv *certviewtest.Server) int {
	return srv.Sim.Requests("certificates") + srv.Sim.Requests("instances")
}

// waitReady waits up to limit for /-/ready.
func (p *exporterProc) waitReady(limit time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	for {
		if code, _ := p.get("/-/ready"); code == 200 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			p.t.Fatalf("not ready after %s", limit)
		}
		select {
		case <-p.exited:
			p.t.Fatalf("the exporter exited (%v)", p.waitErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// budgetTime is when the last of calls can start at the tier's rate, a window's calls
// at once.
func budgetTime(calls int) time.Duration { return time.Duration((calls-1)/tierCalls) * tierWindow }

// TestStandardTierScaledDown: the first listing needs several windows; the exporter is
// ready within about the time the budget allows, serves every record, and after its
// first throttle gets no further 429s. /metrics shows the listing's progress meanwhile.
func TestStandardTierScaledDown(t *testing.T) {
	srv := tierServer(t)
	p := startExporter(t, []string{"QUALYS_PASSWORD=demo-password"}, "--config.file="+tierConfig(t, srv.URL, ""))
	// While the listing runs: not ready, and the progress is on /metrics.
	p.eventually("the listing's progress on /metrics", func() bool {
		if code, _ := p.get("/-/ready"); code == 200 {
			t.Fatal("ready before the first listing ended")
		}
		_, body := p.get("/metrics")
		return strings.Contains(body, "qualys_certview_full_listing_in_progress 1") &&
			strings.Contains(body, `qualys_certview_full_listing_api_calls{endpoint="instances"}`)
	})
	took := p.waitReady(2 * time.Minute)
	instanceCalls := srv.Sim.Requests("instances")
	allowed := budgetTime(instanceCalls)
	t.Logf("ready after %s; the budget allows the %d instance calls after %s; %d listing calls in all",
		took.Round(100*time.Millisecond), instanceCalls, allowed, listingCalls(srv))
	if took > allowed+allowed/4+5*time.Second {
		t.Errorf("ready after %s; the budget allows %s", took, allowed)
	}
	mfs := p.scrape()
	if got := sample(mfs, "qualys_certview_certificates", nil); got != tierCertificates {
		t.Errorf("%v certificates served, want %d", got, tierCertificates)
	}
	if got := len(mfs["qualys_certview_instance_info"].GetMetric()); got != tierInstances {
		t.Errorf("%d instances served, want %d", got, tierInstances)
	}
	t.Logf("429s: certificates %d, instances %d", srv.Sim.Throttled("certificates"), srv.Sim.Throttled("instances"))
	for _, ep := range []string{"certificates", "instances"} {
		if n := srv.Sim.Throttled(ep); n > 1 {
			t.Errorf("%s: %d calls answered 429; at most the first throttle is allowed", ep, n)
		}
	}
	if strings.Contains(p.logs.String(), "poll failed") {
		t.Errorf("a poll failed:\n%s", p.logs.String())
	}
}

// TestKilledHalfwayThroughTheFirstListing: SIGKILL halfway and a start again finish the
// listing with at most 1.5 times one listing's calls in all.
func TestKilledHalfwayThroughTheFirstListing(t *testing.T) {
	srv := tierServer(t)
	cfg := tierConfig(t, srv.URL, filepath.Join(t.TempDir(), "snapshot"))
	env := []string{"QUALYS_PASSWORD=demo-password"}
	minimum := tierCertificates/200 + 1 + tierInstances/200 + 1
	p := startExporter(t, env, "--config.file="+cfg)
	deadline := time.Now().Add(time.Minute)
	for listingCalls(srv) < minimum/2 {
		if time.Now().After(deadline) {
			t.Fatal("the listing never got halfway")
		}
		select { // a child process: nothing to wait on but its calls
		case <-p.exited:
			t.Fatalf("the exporter exited (%v)", p.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	cut := listingCalls(srv)
	again := startExporter(t, env, "--config.file="+cfg)
	again.waitReady(2 * time.Minute)
	total := listingCalls(srv)
	t.Logf("killed after %d calls; %d calls in all; one listing needs at least %d", cut, total, minimum)
	if float64(total) > 1.5*float64(minimum) {
		t.Errorf("%d calls in all, more than 1.5 times the %d of one listing", total, minimum)
	}
	if !strings.Contains(again.logs.String(), "going on with the full listing cut short") {
		t.Errorf("the second start did not take up the listing:\n%s", again.logs.String())
	}
	mfs := again.scrape()
	if got := sample(mfs, "qualys_certview_certificates", nil); got != tierCertificates {
		t.Errorf("%v certificates served, want %d", got, tierCertificates)
	}
}
