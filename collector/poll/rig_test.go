package poll

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/go-kit/log"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// reported is what AfterPoll reported.
type reported struct {
	snap *snapshot.Snapshot
	err  error
}

// rig is a simulator, a client and a poll loop on one fake clock.
type rig struct {
	t      *testing.T
	clock  *clockwork.FakeClock
	srv    *certviewtest.Server
	client *certview.Client
	loop   *Loop
	tel    *telemetry.Telemetry
	logs   *syncBuffer
	polls  chan reported
}

func newRig(t *testing.T, inv certviewtest.Inventory, tweak func(*Options, *certview.Config)) *rig {
	t.Helper()
	r := &rig{t: t, clock: clockwork.NewFakeClockAt(epoch), logs: &syncBuffer{}, polls: make(chan reported, 100), tel: telemetry.New()}
	if inv.Now.IsZero() {
		inv.Now = epoch
	}
	r.srv = certviewtest.NewServer(certviewtest.Options{Inventory: inv, Clock: r.clock, RateLimit: 100000})
	t.Cleanup(r.srv.Close)
	so := r.srv.Sim.Options()
	logger := log.NewLogfmtLogger(r.logs)
	activity := NewActivity(r.clock)
	cc := certview.Config{BaseURL: r.srv.URL, Credentials: certview.Credentials{Username: so.Username, Password: so.Password},
		Clock: r.clock, Logger: logger, Hooks: certview.JoinHooks(r.tel.Hooks(), activity.Hooks()), MaxRetries: 1,
		RateLimit: certview.RateLimit{Calls: 100000, Window: time.Hour}}
	opts := Options{
		Interval: time.Hour, Clock: r.clock, Logger: logger, Telemetry: r.tel, Activity: activity,
		Thresholds: snapshot.Thresholds{WeakRSABits: 2048, WeakECBits: 224},
		RateLimit:  cc.RateLimit,
		AfterPoll:  func(s *snapshot.Snapshot, err error) { r.polls <- reported{s, err} },
	}
	if tweak != nil {
		tweak(&opts, &cc)
	}
	c, err := certview.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	r.client = c
	r.loop = New(c, opts)
	return r
}

// start runs the poll loop until the test ends.
func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.loop.Run(ctx) }()
	r.t.Cleanup(func() { cancel(); <-done })
}

// nextPoll waits for the next AfterPoll report.
func (r *rig) nextPoll() reported {
	r.t.Helper()
	select {
	case p := <-r.polls:
		return p
	case <-time.After(30 * time.Second):
		r.t.Fatal("no poll finished")
		return reported{}
	}
}

// advanceToNextPoll waits until the loop sleeps, then moves the clock by d.
func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.clock.BlockUntilContext(ctx, 1); err != nil {
		r.t.Fatalf("the poll loop never slept: %v", err)
	}
	r.clock.Advance(d)
}

var defaults = snapshot.Thresholds{WeakRSABits: 2048, WeakECBits: 224}

// exampleOwners are config.example.yml's owner labels.
var exampleOwners = []snapshot.OwnerLabel{{Name: "team", TagRegex: "^Team-(.+)$"}, {Name: "environment", TagValues: []string{"Production", "Staging"}}}

// telemetryValue is the value of a telemetry series: name, then label name and value
// pairs.
func telemetryValue(t *testing.T, tel *telemetry.Telemetry, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(tel.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s %v", name, labels)
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// fixed is a poll health that never changes, for an exposition of a given snapshot.
type fixed struct{}

func (fixed) Health() telemetry.Health { return telemetry.Health{} }

func writeFile(path string) error { return os.WriteFile(path, []byte("partial"), 0o600) }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
