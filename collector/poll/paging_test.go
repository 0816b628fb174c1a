package poll

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

// An API that starts ignoring pageNumber fails the poll with reason paging after one
// wasted call; the log line says why, and the last good snapshot stays.
func TestIgnoredPageNumberFailsThePoll(t *testing.T) {
	if got := failureReason(fmt.Errorf("listing: %w", &certview.RepeatedPageError{Endpoint: "certificates", Page: 1})); got != "paging" {
		t.Fatalf("failureReason(RepeatedPageError) = %s, want paging", got)
	}
	r := newRig(t, certviewtest.Inventory{Seed: 3, Certificates: 500, Instances: 20}, nil)
	r.start()
	good := r.nextPoll().snap
	if good == nil || len(good.Certificates) != 500 {
		t.Fatal("the first poll did not list the inventory")
	}
	r.srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: -1, Kind: certviewtest.FaultIgnorePageNumber, Times: certviewtest.Always})
	before := r.srv.Sim.Requests("certificates")
	r.advance(time.Hour)
	p := r.nextPoll()
	var rep *certview.RepeatedPageError
	if !errors.As(p.err, &rep) || rep.Endpoint != "certificates" {
		t.Fatalf("err %v, want a RepeatedPageError of certificates", p.err)
	}
	if calls := r.srv.Sim.Requests("certificates") - before; calls != 2 {
		t.Fatalf("%d certificate calls in the failed poll, want 2 (page 0 and its repeat)", calls)
	}
	if h := r.loop.Health(); h.Up || h.LastErrorReason != "paging" || r.loop.Snapshot() != good {
		t.Fatalf("health %+v; want down with reason paging, the last good snapshot kept", h)
	}
	logs := r.logs.String()
	var line string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "poll failed") {
			line = l
		}
	}
	for _, want := range []string{"reason=paging", "certificates page 1", "repeats the previous page", "ignore pageNumber"} {
		if !strings.Contains(line, want) {
			t.Fatalf("the failure log line does not say %q:\n%s", want, line)
		}
	}
	if got := telemetryValue(t, r.tel, "qualys_certview_poll_failures_total", "reason", "paging"); got != 1 {
		t.Fatalf("poll_failures_total{reason=paging} = %v, want 1", got)
	}
}
