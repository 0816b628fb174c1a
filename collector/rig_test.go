package collector

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/go-kit/log"
	"github.com/jonboulle/clockwork"
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

// pollResult is what AfterPoll reported.
type pollResult struct {
	snap *Snapshot
	err  error
}

// rig is a simulator, a client and a scheduler on one fake clock.
type rig struct {
	t      *testing.T
	clock  *clockwork.FakeClock
	srv    *certviewtest.Server
	client *certview.Client
	sched  *Scheduler
	tel    *Telemetry
	logs   *syncBuffer
	polls  chan pollResult
}

func newRig(t *testing.T, inv certviewtest.Inventory, tweak func(*SchedulerOptions, *certview.Config)) *rig {
	t.Helper()
	r := &rig{t: t, clock: clockwork.NewFakeClockAt(epoch), logs: &syncBuffer{}, polls: make(chan pollResult, 100), tel: NewTelemetry()}
	if inv.Now.IsZero() {
		inv.Now = epoch
	}
	r.srv = certviewtest.NewServer(certviewtest.Options{Inventory: inv, Clock: r.clock, RateLimit: 100000})
	t.Cleanup(r.srv.Close)
	so := r.srv.Sim.Options()
	logger := log.NewLogfmtLogger(r.logs)
	cc := certview.Config{BaseURL: r.srv.URL, Credentials: certview.Credentials{Username: so.Username, Password: so.Password},
		Clock: r.clock, Logger: logger, Hooks: r.tel.Hooks(), MaxRetries: 1, RateLimit: certview.RateLimit{Calls: 100000, Window: time.Hour}}
	opts := SchedulerOptions{
		Interval: time.Hour, Clock: r.clock, Logger: logger, Telemetry: r.tel,
		Thresholds: Thresholds{WeakRSABits: DefaultWeakRSABits, WeakECBits: DefaultWeakECBits},
		RateLimit:  cc.RateLimit,
		AfterPoll:  func(s *Snapshot, err error) { r.polls <- pollResult{s, err} },
	}
	if tweak != nil {
		tweak(&opts, &cc)
	}
	c, err := certview.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	r.client = c
	r.sched = NewScheduler(c, opts)
	return r
}

// start runs the scheduler until the test ends.
func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.sched.Run(ctx) }()
	r.t.Cleanup(func() { cancel(); <-done })
}

// nextPoll waits for the next AfterPoll report.
func (r *rig) nextPoll() pollResult {
	r.t.Helper()
	select {
	case p := <-r.polls:
		return p
	case <-time.After(30 * time.Second):
		r.t.Fatal("no poll finished")
		return pollResult{}
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
