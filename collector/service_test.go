package collector

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/config"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func serviceConfig(t *testing.T, url, interval string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("c.yml", []byte("qualys:\n  api_url: "+url+"\n  username: demo\n  password: demo-password\npoll:\n  interval: "+interval+"\nrate_limit:\n  calls: 100000\n  window: 1h\n"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startService runs a service against a small simulator until the test ends, and
// returns after its first poll; polls reports every poll after that.
func startService(t *testing.T, interval string) (*certviewtest.Server, *Service, chan error) {
	t.Helper()
	srv := certviewtest.NewServer(certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 2, Certificates: 30, Instances: 60}, RateLimit: 100000})
	t.Cleanup(srv.Close)
	svc, polls := runService(t, serviceConfig(t, srv.URL, interval), ServiceOptions{})
	return srv, svc, polls
}

// runService runs a service of cfg until the test ends, and returns after its first
// poll; polls reports every poll after that. opts.AfterPoll is its own.
func runService(t *testing.T, cfg *config.Config, opts ServiceOptions) (*Service, chan error) {
	t.Helper()
	polls := make(chan error, 10)
	opts.AfterPoll = func(_ *snapshot.Snapshot, err error) { polls <- err }
	svc, err := NewService(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := <-polls; err != nil {
		t.Fatal(err)
	}
	return svc, polls
}

// A reload swaps the configuration without an API call or a gap; a configuration that
// does not load keeps the running one and says so.
func TestServiceReload(t *testing.T) {
	srv, svc, _ := startService(t, "1h")
	first := svc.Loop()
	calls := srv.Sim.Requests("certificates")

	// A good configuration: a new interval and per-instance families off.
	good := serviceConfig(t, srv.URL, "2h")
	off := false
	good.Metrics.Instances = &off
	if err := svc.Reload(good); err != nil {
		t.Fatal(err)
	}
	if svc.Loop() == first || svc.Loop().Interval() != 2*time.Hour || !svc.Ready() || !svc.Loop().Health().Up {
		t.Fatalf("after the reload: interval %s, ready %v, health %+v", svc.Loop().Interval(), svc.Ready(), svc.Loop().Health())
	}
	if srv.Sim.Requests("certificates") != calls {
		t.Fatal("the reload made API calls")
	}
	rec := httptest.NewRecorder()
	svc.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if body := rec.Body.String(); !strings.Contains(body, "qualys_certview_certificate_info{") || strings.Contains(body, "qualys_certview_instance_info{") {
		t.Fatal("the reloaded configuration's families are not what is served")
	}
	if testutil.ToFloat64(svc.reloadOK) != 1 {
		t.Fatal("reload not reported as successful")
	}

	// A configuration that does not load: the running one stays.
	err := svc.ReloadFrom(func() (*config.Config, error) { return nil, errors.New("c.yml:3: qualys.username: required") })
	if err == nil || svc.Loop().Interval() != 2*time.Hour || testutil.ToFloat64(svc.reloadOK) != 0 {
		t.Fatalf("bad reload: err %v, interval %s, metric %v", err, svc.Loop().Interval(), testutil.ToFloat64(svc.reloadOK))
	}
	bad := serviceConfig(t, srv.URL, "1h")
	bad.Metrics.CertificateInfoLabels = []string{"colour"}
	if err := svc.Reload(bad); err == nil || svc.Loop().Interval() != 2*time.Hour {
		t.Fatalf("invalid exposition options were accepted: %v", err)
	}

	// POST /-/reload.
	h := svc.ReloadHandler(func() (*config.Config, error) { return serviceConfig(t, srv.URL, "3h"), nil })
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/-/reload", nil))
	if rec.Code != 405 {
		t.Fatalf("GET /-/reload: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/-/reload", nil))
	if rec.Code != 200 || svc.Loop().Interval() != 3*time.Hour || testutil.ToFloat64(svc.reloadOK) != 1 {
		t.Fatalf("POST /-/reload: %d %s", rec.Code, rec.Body)
	}
	// A failed reload answers without the error: it may quote the file.
	failing := svc.ReloadHandler(func() (*config.Config, error) {
		return nil, errors.New(`c.yml: poll.interval: "hunter2-value" is not a duration (line 6)`)
	})
	rec = httptest.NewRecorder()
	failing.ServeHTTP(rec, httptest.NewRequest("POST", "/-/reload", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "poll.interval") ||
		!strings.Contains(rec.Body.String(), "the previous configuration stays in use") {
		t.Fatalf("failed POST /-/reload: %d %q", rec.Code, rec.Body)
	}
}

// A reload during a slow poll cancels that poll; the new loop takes over, no two polls
// overlap, and the served snapshot stays.
func TestReloadDuringAPoll(t *testing.T) {
	srv, svc, polls := startService(t, "1s")
	snap := svc.Loop().Snapshot()
	hold, arrived := make(chan struct{}), make(chan struct{})
	defer close(hold)
	srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: -1, Kind: certviewtest.FaultSlow, Release: hold, Arrived: arrived})
	<-arrived // the next poll (a second later) is stuck in the fault
	if err := svc.Reload(serviceConfig(t, srv.URL, "1h")); err != nil {
		t.Fatal(err)
	}
	if err := <-polls; !errors.Is(err, context.Canceled) {
		t.Fatalf("the stuck poll ended with %v, want it cancelled", err)
	}
	if got := svc.Loop().Snapshot(); got == nil || len(got.Certificates) != len(snap.Certificates) {
		t.Fatal("the snapshot did not carry over")
	}
}
