package exposition

import (
	"bytes"
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/poll"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/telemetry"
	"github.com/jonboulle/clockwork"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

var defaults = snapshot.Thresholds{WeakRSABits: 2048, WeakECBits: 224}

// exampleOwners are config.example.yml's owner labels.
var exampleOwners = []snapshot.OwnerLabel{{Name: "team", TagRegex: "^Team-(.+)$"}, {Name: "environment", TagValues: []string{"Production", "Staging"}}}

// polled is a simulator and a poll loop on one fake clock, as the service wires them.
type polled struct {
	clock *clockwork.FakeClock
	srv   *certviewtest.Server
	loop  *poll.Loop
	tel   *telemetry.Telemetry
}

// newPolled makes the simulator of inv and a loop over it; owners, when set, are the
// owner rules (the listing then asks for the assets' tags). It does not poll.
func newPolled(t *testing.T, inv certviewtest.Inventory, owners []snapshot.OwnerLabel) *polled {
	t.Helper()
	p := &polled{clock: clockwork.NewFakeClockAt(epoch), tel: telemetry.New()}
	if inv.Now.IsZero() {
		inv.Now = epoch
	}
	p.srv = certviewtest.NewServer(certviewtest.Options{Inventory: inv, Clock: p.clock, RateLimit: 100000})
	t.Cleanup(p.srv.Close)
	so := p.srv.Sim.Options()
	cc := certview.Config{BaseURL: p.srv.URL, Credentials: certview.Credentials{Username: so.Username, Password: so.Password},
		Clock: p.clock, Hooks: p.tel.Hooks(), MaxRetries: 1, RateLimit: certview.RateLimit{Calls: 100000, Window: time.Hour}}
	rules, err := snapshot.NewOwnerRules(owners)
	if err != nil {
		t.Fatal(err)
	}
	if rules != nil {
		cc.Includes = []string{"ASSET_TAGS"}
	}
	c, err := certview.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	p.loop = poll.New(c, poll.Options{Interval: time.Hour, Clock: p.clock, Telemetry: p.tel, Thresholds: defaults,
		RateLimit: cc.RateLimit, Owners: rules})
	return p
}

// poll runs one poll, which must succeed.
func (p *polled) poll(t *testing.T) {
	t.Helper()
	if err := p.loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// exposedWith polls inv once and returns the exposition over the loop.
func exposedWith(t *testing.T, inv certviewtest.Inventory, owners []snapshot.OwnerLabel, opts Options) (*polled, *Exposition) {
	t.Helper()
	p := newPolled(t, inv, owners)
	p.poll(t)
	opts.Clock = p.clock
	if opts.Interval == 0 {
		opts.Interval = time.Hour
	}
	e, err := New(p.loop, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.Publish(p.loop.Snapshot())
	return p, e
}

// exposed polls a small inventory (with the vendor samples) and returns the exposition.
func exposed(t *testing.T, opts Options) (*polled, *Exposition) {
	t.Helper()
	return exposedWith(t, certviewtest.Inventory{Seed: 12, Certificates: 120, Instances: 300, VendorSamples: true}, nil, opts)
}

// ownedRig polls inv with the example owners on.
func ownedRig(t *testing.T, inv certviewtest.Inventory) (*polled, *Exposition) {
	t.Helper()
	return exposedWith(t, inv, exampleOwners, Options{PerCertificate: true, PerInstance: true})
}

// fixed is one snapshot and a poll health, for an exposition and its reference.
type fixed struct {
	snap   *snapshot.Snapshot
	health telemetry.Health
}

func (f *fixed) Snapshot() *snapshot.Snapshot { return f.snap }
func (f *fixed) Health() telemetry.Health     { return f.health }

// newFixed makes an exposition that serves f.
func newFixed(t *testing.T, f *fixed, opts Options) *Exposition {
	t.Helper()
	e, err := New(f, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.Publish(f.snap)
	return e
}

// servedWith pairs an exposition's snapshot with a poll health, for the reference.
type servedWith struct {
	*Exposition
	PollHealth
}

func scrape(t *testing.T, e *Exposition, gz bool) []byte {
	t.Helper()
	return scrapeURL(t, e, "/metrics", gz)
}

// scrapeURL is scrape of a target with parameters, such as a shard's.
func scrapeURL(t *testing.T, e *Exposition, target string, gz bool) []byte {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip, deflate")
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.Bytes()
	if !gz {
		return body
	}
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatal("no gzip encoding")
	}
	return gunzipOneMember(t, body)
}

func parse(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	return mfs
}

// served gathers what e serves on /metrics, as a registry would report it: families
// sorted by name, series by their label values, and each series' labels by name (the
// text format does not order them; the exposition writes them in the contract's order,
// key first).
type served struct {
	t *testing.T
	e *Exposition
}

func (s served) Gather() ([]*dto.MetricFamily, error) {
	mfs := parse(s.t, scrape(s.t, s.e, false))
	out := make([]*dto.MetricFamily, 0, len(mfs))
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
		// Series in the order of their label values, as a registry sorts them.
		slices.SortStableFunc(mf.Metric, func(a, b *dto.Metric) int {
			for i := range min(len(a.Label), len(b.Label)) {
				if c := strings.Compare(a.Label[i].GetValue(), b.Label[i].GetValue()); c != 0 {
					return c
				}
			}
			return len(a.Label) - len(b.Label)
		})
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}
