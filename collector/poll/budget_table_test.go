//go:build scale

package poll

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// TestFullListingBudgetTable measures on the fake clock, against the simulator with a
// tier's budget per API, how long the first full listing takes until the first snapshot
// (the rate-limit waits; the API's answer time comes on top) and what it costs, then
// what the daily full listing costs when it shares the budget with the hourly incremental
// polls (1% of the instances rescanned and 2 certificates added an hour): the polls it
// spans, its calls and theirs. make bench prints it for the README.
func TestFullListingBudgetTable(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| certificates / instances | calls an hour per API | first snapshot after | its calls (minimum) | daily full listing: hourly polls it spans | its calls | the incremental polls' calls meanwhile |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|\n")
	for _, size := range [][2]int{{10_000, 30_000}, {100_000, 300_000}} {
		for _, perHour := range []int{300, 2000} {
			row := measureBudget(t, size[0], size[1], perHour)
			fmt.Fprintf(&b, "| %s / %s | %s | %s | %s (%s) | %d | %s | %s |\n", thousands(size[0]), thousands(size[1]), thousands(perHour),
				row.first, thousands(row.firstCalls), thousands(minimumCalls(size[0], size[1])), row.dailyPolls, thousands(row.dailyCalls),
				thousands(row.incrementalCalls))
		}
	}
	t.Log(b.String())
	fmt.Println(b.String())
}

type budgetRow struct {
	first                  time.Duration
	firstCalls, dailyPolls int
	dailyCalls             int // the full listing's own
	incrementalCalls       int // the incremental polls' beside it
}

func measureBudget(t *testing.T, certs, instances, perHour int) budgetRow {
	t.Helper()
	r := budgetRig(t, certs, instances, perHour, time.Hour, func(o *Options) { o.FullInterval = 24 * time.Hour })
	start := r.clock.Now()
	if err := r.drive(context.Background(), time.Second, 3, r.loop.Poll); err != nil {
		t.Fatal(err)
	}
	row := budgetRow{first: r.clock.Since(start).Round(time.Minute), firstCalls: r.calls()}
	// A day later the full listing falls due; hourly polls until it has ended.
	r.clock.Advance(24*time.Hour - r.clock.Since(r.loop.Snapshot().FullStarted))
	before := r.calls()
	for {
		row.dailyPolls++
		r.srv.Sim.Churn(certviewtest.Churn{Rescan: 0.01, Add: 2})
		pollStart := r.clock.Now()
		if err := r.drive(context.Background(), time.Second, 3, r.loop.Poll); err != nil {
			t.Fatal(err)
		}
		if r.loop.full == nil && r.loop.Snapshot().Kind == snapshot.PollFull {
			break
		}
		if row.dailyPolls > 48 {
			t.Fatal("the daily full listing did not end in 48 polls")
		}
		r.clock.Advance(time.Hour - r.clock.Since(pollStart)%time.Hour)
	}
	row.dailyCalls = int(telemetryValue(t, r.tel, "qualys_certview_full_listing_api_calls", "endpoint", "certificates") +
		telemetryValue(t, r.tel, "qualys_certview_full_listing_api_calls", "endpoint", "instances"))
	row.incrementalCalls = r.calls() - before - row.dailyCalls
	return row
}
