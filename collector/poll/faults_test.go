package poll

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/exposition"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/go-kit/log"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
)

// TestFaultMatrix injects each fault into a poll and checks, for every one: no crash;
// the last good snapshot stays served; up is 0 and the reason shows in a log line and
// in qualys_certview_poll_failures_total; the next poll recovers; no goroutine leaks.
// Faults are held for the whole poll (the client retries a passing one by itself).
func TestFaultMatrix(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	release := make(chan struct{})
	srv := certviewtest.NewServer(certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 5, Certificates: 250, Instances: 500}, RateLimit: 100000, Concurrency: 8})
	defer srv.Close()
	var logs syncBuffer
	tel := telemetry.New()
	client, err := certview.New(certview.Config{
		BaseURL: srv.URL, Credentials: certview.Credentials{Username: "demo", Password: "demo-password"},
		// The timeout cases wait it out twice (MaxRetries 1). It must still be far above
		// what a healthy page takes under -race on a loaded machine: at 300 ms a recovery
		// poll once timed out reading a page's body.
		Timeout: 2 * time.Second, MaxRetries: 1, MaxThrottleRetries: 1,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		RateLimit: certview.RateLimit{Calls: 100000, Window: time.Hour, Concurrency: 8},
		Logger:    log.NewLogfmtLogger(&logs), Hooks: tel.Hooks(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	loop := New(client, Options{Interval: time.Hour, Logger: log.NewLogfmtLogger(&logs), Telemetry: tel,
		Thresholds: snapshot.Thresholds{WeakRSABits: 2048, WeakECBits: 224}})
	expo, _ := exposition.New(loop, nil, exposition.Options{PerCertificate: true, PerInstance: true})
	loop.opts.Publish = expo.Publish

	if err := loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	good := loop.Snapshot()
	served := func() string {
		rec := httptest.NewRecorder()
		expo.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	goodBody := served()

	const many = 1000
	toWait := map[string]string{"X-RateLimit-ToWait-Sec": "1"}
	faults := []struct {
		name   string
		fault  certviewtest.Fault
		reason string
	}{
		{"500", certviewtest.Fault{Kind: certviewtest.FaultStatus, Status: 500}, "http_5xx"},
		{"502 HTML", certviewtest.Fault{Kind: certviewtest.FaultHTML}, "http_5xx"},
		{"malformed JSON", certviewtest.Fault{Kind: certviewtest.FaultMalformed}, "transport"},
		{"truncated body", certviewtest.Fault{Kind: certviewtest.FaultTruncated}, "transport"},
		{"connection reset", certviewtest.Fault{Kind: certviewtest.FaultReset}, "transport"},
		{"timeout", certviewtest.Fault{Kind: certviewtest.FaultSlow, Release: release}, "timeout"},
		{"slow body", certviewtest.Fault{Kind: certviewtest.FaultSlowBody, Release: release}, "timeout"},
		{"401 mid-poll", certviewtest.Fault{Kind: certviewtest.FaultExpireTokens, Page: 1}, "auth"},
		{"403", certviewtest.Fault{Kind: certviewtest.FaultStatus, Status: 403}, "http_4xx"},
		{"409 with ToWait-Sec", certviewtest.Fault{Kind: certviewtest.FaultStatus, Status: 409, Header: toWait}, "throttled"},
		{"409 without", certviewtest.Fault{Kind: certviewtest.FaultStatus, Status: 409}, "throttled"},
		{"429 with ToWait-Sec", certviewtest.Fault{Kind: certviewtest.FaultStatus, Status: 429, Header: toWait}, "throttled"},
		{"429 without", certviewtest.Fault{Kind: certviewtest.FaultStatus, Status: 429}, "throttled"},
		{"503", certviewtest.Fault{Kind: certviewtest.FaultStatus, Status: 503}, "throttled"},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			before := telemetryValue(t, tel, "qualys_certview_poll_failures_total", "reason", f.reason)
			logged := strings.Count(logs.String(), "reason="+f.reason)
			fault := f.fault
			fault.Endpoint, fault.Times = "certificates", many
			if fault.Page == 0 && f.name != "401 mid-poll" {
				fault.Page = -1
			}
			srv.Sim.Inject(fault)
			if err := loop.Poll(context.Background()); err == nil {
				t.Fatal("the poll succeeded through the fault")
			}
			srv.Sim.ClearFaults()
			h := loop.Health()
			if h.Up || h.LastErrorReason != f.reason {
				t.Fatalf("health %+v, want up 0 and reason %s", h, f.reason)
			}
			if loop.Snapshot() != good || served() == "" || !strings.Contains(served(), "qualys_certview_certificates 250") {
				t.Fatal("the last good snapshot is not served")
			}
			if got := telemetryValue(t, tel, "qualys_certview_poll_failures_total", "reason", f.reason); got != before+1 {
				t.Fatalf("poll_failures_total{reason=%q} went from %v to %v", f.reason, before, got)
			}
			if strings.Count(logs.String(), "reason="+f.reason) <= logged {
				t.Fatal("no log line gives the reason")
			}
			if err := loop.Poll(context.Background()); err != nil || !loop.Health().Up {
				t.Fatalf("the next poll did not recover: %v", err)
			}
			good = loop.Snapshot()
		})
	}

	// Pages that shift between calls: the listing de-duplicates what repeats, and a
	// record pushed past a page boundary is missed, which the API gives no way to see.
	// The poll completes; no series is duplicated.
	t.Run("shifting pages", func(t *testing.T) {
		srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 1, Kind: certviewtest.FaultShift, Shift: 7})
		srv.Sim.Inject(certviewtest.Fault{Endpoint: "instances", Page: 1, Kind: certviewtest.FaultShift, Shift: -5})
		if err := loop.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := loop.Snapshot()
		if len(s.Certificates) != 250 || len(s.Instances) != 495 {
			t.Fatalf("%d certificates and %d instances; want 250 (7 repeated, dropped) and 495 (5 skipped)", len(s.Certificates), len(s.Instances))
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		if _, err := p.TextToMetricFamilies(strings.NewReader(served())); err != nil {
			t.Fatalf("the exposition does not parse (a duplicate series?): %v", err)
		}
	})
	if !strings.Contains(goodBody, "qualys_certview_certificates 250") {
		t.Fatal("the first snapshot was not served")
	}
	close(release)
	client.Close()
	srv.Close()
}

// TestScrapeDoesNotWaitForAPoll holds a poll inside a slow API response and scrapes
// meanwhile, at the demo's size: the scrape is answered from the previous snapshot.
func TestScrapeDoesNotWaitForAPoll(t *testing.T) {
	srv := certviewtest.NewServer(certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 1, Certificates: 2000, Instances: 5000}, RateLimit: 100000})
	defer srv.Close()
	client, _ := certview.New(certview.Config{BaseURL: srv.URL, Credentials: certview.Credentials{Username: "demo", Password: "demo-password"},
		RateLimit: certview.RateLimit{Calls: 100000, Window: time.Hour}})
	defer client.Close()
	loop := New(client, Options{Interval: time.Hour})
	expo, _ := exposition.New(loop, nil, exposition.Options{PerCertificate: true, PerInstance: true})
	loop.opts.Publish = expo.Publish

	if err := loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	hold, arrived := make(chan struct{}), make(chan struct{})
	srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 3, Kind: certviewtest.FaultSlow, Release: hold, Arrived: arrived})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = loop.Poll(context.Background()) }()
	<-arrived // the poll is inside the held page
	start := time.Now()
	for i := 0; i < 5; i++ {
		rec := httptest.NewRecorder()
		expo.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if !bytes.Contains(rec.Body.Bytes(), []byte("qualys_certview_certificates 2000")) {
			t.Fatal("the scrape did not serve the previous snapshot")
		}
	}
	t.Logf("5 scrapes of %d certificates during a held poll: %s each", 2000, time.Since(start)/5)
	close(hold)
	wg.Wait()
}
