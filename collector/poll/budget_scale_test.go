//go:build scale

package poll

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// TestIncrementalBudgetTable measures, against the simulator in one run, the calls of a
// full poll and of hourly incremental polls at several rescan rates, and what hourly
// incremental polls plus one full listing a day cost per hour on each API. Each rate
// runs two churned hours and measures the second, so that the 1h overlap holds a
// previous hour's rescans as it does in steady state. BUDGET_SIZE=1000,3000 sets the
// size (default 100,000 certificates and 300,000 instances).
func TestIncrementalBudgetTable(t *testing.T) {
	nc, ni := 100_000, 300_000
	if s := os.Getenv("BUDGET_SIZE"); s != "" {
		parts := strings.Split(s, ",")
		nc, _ = strconv.Atoi(parts[0])
		ni, _ = strconv.Atoi(parts[1])
	}
	const newPerHour, removedPerHour = 20, 20
	r := newRig(t, certviewtest.Inventory{Seed: 21, Certificates: nc, Instances: ni}, func(o *Options, _ *certview.Config) {
		o.FullInterval = 24 * time.Hour
		o.Timeout = 24 * time.Hour
	})
	calls := func() (int, int) {
		return r.srv.Sim.Requests("certificates"), r.srv.Sim.Requests("instances")
	}
	wall := time.Now()
	r.pollAt(0)
	fullCerts, fullInst := calls()
	fullTook := time.Since(wall)
	var b strings.Builder
	fmt.Fprintf(&b, "\n| %s certificates / %s instances, hourly | certificate calls | instance calls | calls per poll | instances fetched | calls per hour per API with a daily full listing (certificates / instances) | under 300 |\n",
		thousands(nc), thousands(ni))
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| full poll | %d | %d | %d | %s | %d / %d (hourly full polls) | %v |\n",
		fullCerts, fullInst, fullCerts+fullInst, thousands(ni), fullCerts, fullInst, fullInst <= 300 && fullCerts <= 300)
	for _, rate := range []float64{0.001, 0.01, 0.05} {
		var certCalls, instCalls int
		var snap *snapshot.Snapshot
		for hour := 0; hour < 2; hour++ {
			r.clock.Advance(time.Hour)
			r.srv.Sim.Churn(certviewtest.Churn{Rescan: rate, Add: newPerHour, Remove: removedPerHour})
			c0, i0 := calls()
			snap = r.pollAt(0)
			c1, i1 := calls()
			certCalls, instCalls = c1-c0, i1-i0
			if snap.Kind != snapshot.PollIncremental {
				t.Fatalf("rate %v: poll %s, want incremental", rate, snap.Kind)
			}
		}
		perHour := func(full, inc int) float64 {
			return CallsPerWindow(float64(full), float64(inc), time.Hour, 24*time.Hour, time.Hour, true)
		}
		hc, hi := perHour(fullCerts, certCalls), perHour(fullInst, instCalls)
		fmt.Fprintf(&b, "| %.1f%% rescanned, %d new and %d removed an hour | %d | %d | %d (%.3fx the full poll) | %s | %.0f / %.0f | %v |\n",
			rate*100, newPerHour, removedPerHour, certCalls, instCalls, certCalls+instCalls, float64(certCalls+instCalls)/float64(fullCerts+fullInst),
			thousands(int(testutilGauge(r, "instances"))), hc, hi, hc <= 300 && hi <= 300)
	}
	fmt.Fprintf(&b, "\n(full poll against the in-process simulator: %s)\n", fullTook.Round(100*time.Millisecond))
	t.Log(b.String())
	fmt.Println(b.String())
}

func testutilGauge(r *rig, endpoint string) float64 {
	return telemetryValue(r.t, r.tel, "qualys_certview_last_poll_records_fetched", "endpoint", endpoint)
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
