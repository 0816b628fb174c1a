package certview

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/jonboulle/clockwork"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// rig is a simulator and a client on one fake clock, recording the client's hooks.
type rig struct {
	t     *testing.T
	srv   *certviewtest.Server
	clock *clockwork.FakeClock
	c     *Client

	mu       sync.Mutex
	requests []RequestEvent
	waits    []WaitEvent
	skips    []SkipEvent
	waitCh   chan WaitEvent
}

func newRig(t *testing.T, opts certviewtest.Options, tweak func(*Config)) *rig {
	t.Helper()
	r := &rig{t: t, clock: clockwork.NewFakeClockAt(epoch), waitCh: make(chan WaitEvent, 1000)}
	opts.Clock = r.clock
	if opts.Inventory.Now.IsZero() {
		opts.Inventory.Now = epoch
	}
	r.srv = certviewtest.NewServer(opts)
	t.Cleanup(r.srv.Close)
	so := r.srv.Sim.Options()
	cfg := Config{
		BaseURL:     r.srv.URL,
		Credentials: Credentials{Username: so.Username, Password: so.Password},
		Clock:       r.clock,
		Timeout:     30 * time.Second,
		Hooks: Hooks{
			Request: func(e RequestEvent) { r.mu.Lock(); r.requests = append(r.requests, e); r.mu.Unlock() },
			Wait: func(e WaitEvent) {
				r.mu.Lock()
				r.waits = append(r.waits, e)
				r.mu.Unlock()
				r.waitCh <- e
			},
			Skip: func(e SkipEvent) { r.mu.Lock(); r.skips = append(r.skips, e); r.mu.Unlock() },
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.c = c
	return r
}

// run calls fn on its own goroutine and, each time the client announces a wait, lets
// the fake clock run out that wait once the client sleeps on it.
func (r *rig) run(fn func(ctx context.Context) error) error {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	for {
		select {
		case err := <-done:
			return err
		case e := <-r.waitCh:
			if e.Duration <= 0 {
				continue
			}
			if err := r.clock.BlockUntilContext(ctx, 1); err != nil {
				r.t.Fatalf("client never slept on its %s wait: %v", e.Reason, err)
			}
			r.clock.Advance(e.Duration)
		}
	}
}

func (r *rig) listCertificates() (ListStats, []Certificate, error) {
	var all []Certificate
	var st ListStats
	err := r.run(func(ctx context.Context) error {
		var err error
		st, err = r.c.ListCertificates(ctx, func(p []Certificate) error { all = append(all, p...); return nil })
		return err
	})
	return st, all, err
}

func (r *rig) listInstances() (ListStats, []Instance, error) {
	var all []Instance
	var st ListStats
	err := r.run(func(ctx context.Context) error {
		var err error
		st, err = r.c.ListInstances(ctx, func(p []Instance) error { all = append(all, p...); return nil })
		return err
	})
	return st, all, err
}

func (r *rig) statuses() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, e := range r.requests {
		out = append(out, e.Status)
	}
	return out
}

func (r *rig) waitEvents() []WaitEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]WaitEvent(nil), r.waits...)
}
