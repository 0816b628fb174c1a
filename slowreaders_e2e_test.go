//go:build e2e

package main

import (
	"net/http"
	"testing"
	"time"
)

// TestSlowReadersAtScale is issue 25's item 2 at the binary level, at a size where a
// plain scrape is tens of megabytes (20,000 certificates, 50,000 instances): with eight
// clients that ask for /metrics and never read, a normal scrape is served within 5 s,
// and the eight are cut off after the write stall timeout (10 s by default).
func TestSlowReadersAtScale(t *testing.T) {
	p := startExporter(t, nil, "--demo", "--demo.certificates=20000", "--demo.instances=50000", "--log.level=info")
	ready := time.Now()
	deadline := time.Now().Add(5 * time.Minute)
	for code, _ := p.get("/-/ready"); code != http.StatusOK; code, _ = p.get("/-/ready") {
		if time.Now().After(deadline) {
			t.Fatal("not ready after 5 minutes")
		}
		select {
		case <-p.exited:
			t.Fatalf("the exporter exited: %v", p.waitErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Logf("ready after %s", time.Since(ready).Round(time.Millisecond))
	took, size, connected := scrapeWhileEightNeverRead(t, p)
	if size < 20e6 {
		t.Fatalf("a scrape of %d bytes: too small to fill the socket buffers many times over", size)
	}
	if connected > 30*time.Second {
		t.Fatalf("the eight non-readers stayed connected %s; the stall timeout is 10s", connected)
	}
	t.Logf("a scrape of %.1f MB took %s while eight clients never read; they stayed connected %s; peak RSS %.0f MB",
		float64(size)/1e6, took.Round(time.Millisecond), connected.Round(time.Millisecond), peakRSSOf(t, p.cmd.Process.Pid)/1024)
}
