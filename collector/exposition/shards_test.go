package exposition

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// shardedRig polls an inventory with owners, scores and renewals on, and serves it with a
// registry of the exporter's own metrics.
func shardedRig(t *testing.T) (*polled, *Exposition) {
	t.Helper()
	p := newPolled(t, certviewtest.Inventory{Seed: 5, Certificates: 400, Instances: 1000, VendorSamples: true}, exampleOwners)
	p.poll(t)
	return p, shardedExposition(t, p)
}

// shardedExposition serves p's snapshot as shardedRig does, on an exposition of its own.
func shardedExposition(t *testing.T, p *polled) *Exposition {
	t.Helper()
	reg := prometheus.NewRegistry()
	own := prometheus.NewGauge(prometheus.GaugeOpts{Name: "qualys_certview_test_own", Help: "One of the exporter's own metrics."})
	reg.MustRegister(own)
	e, err := New(p.loop, reg, Options{PerCertificate: true, PerInstance: true, InstanceScoreCategories: true,
		Interval: time.Hour, Clock: p.clock})
	if err != nil {
		t.Fatal(err)
	}
	e.Publish(p.loop.Snapshot())
	return e
}

// byKey flattens families into series keys "name{labels}" with their values, leaving
// out the shard's own families.
func byKey(mfs map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, mf := range mfs {
		if strings.HasPrefix(name, "qualys_certview_shard_") {
			continue
		}
		for k, v := range series(mf) {
			out[name+"{"+k+"}"] = v
		}
	}
	return out
}

// The shards of any count add up to the whole exposition, series for series: each
// certificate's series and those of the instances presenting it sit in the shard
// ShardOf names, so that joins on certhash stay within a shard; the health, the counts
// and the exporter's own metrics are in shard 0 only; each shard says what it holds.
func TestShardsAddUpToTheWhole(t *testing.T) {
	p, e := shardedRig(t)
	snap := p.loop.Snapshot()
	whole := byKey(parse(t, scrape(t, e, false)))
	for _, n := range []int{1, 3, 32} {
		union := map[string]float64{}
		var certs, insts float64
		for i := 0; i < n; i++ {
			target := fmt.Sprintf("/metrics?shard=%d&shards=%d", i, n)
			plain := scrapeURL(t, e, target, false)
			if gz := scrapeURL(t, e, target, true); !bytes.Equal(plain, gz) {
				t.Fatalf("%s: the gzip scrape differs from the plain one", target)
			}
			mfs := parse(t, plain)
			certs += mfs["qualys_certview_shard_certificates"].GetMetric()[0].GetGauge().GetValue()
			insts += mfs["qualys_certview_shard_instances"].GetMetric()[0].GetGauge().GetValue()
			for _, fleet := range []string{"qualys_certview_up", "qualys_certview_certificates", "qualys_certview_instances", "qualys_certview_owner_certificates", "qualys_certview_test_own"} {
				if (mfs[fleet] != nil) != (i == 0) {
					t.Fatalf("%s: %s served: %v; want it in shard 0 only", target, fleet, mfs[fleet] != nil)
				}
			}
			for name, mf := range mfs {
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "certhash" && ShardOf(l.GetValue(), n) != i {
							t.Fatalf("%s serves %s of certhash %s, which is shard %d's", target, name, l.GetValue(), ShardOf(l.GetValue(), n))
						}
					}
				}
			}
			for k, v := range byKey(mfs) {
				if _, dup := union[k]; dup {
					t.Fatalf("%s: %s is in two shards", target, k)
				}
				union[k] = v
			}
		}
		if len(union) != len(whole) {
			t.Fatalf("%d shards serve %d series, the whole exposition %d", n, len(union), len(whole))
		}
		for k, v := range whole {
			if got, ok := union[k]; !ok || got != v {
				t.Fatalf("%d shards: %s = %v (served %v), want %v", n, k, got, ok, v)
			}
		}
		if int(certs) != len(snap.Certificates) || int(insts) != len(snap.Instances) {
			t.Fatalf("%d shards hold %v certificates and %v instances, the snapshot %d and %d", n, certs, insts, len(snap.Certificates), len(snap.Instances))
		}
	}
}

// Bad shard parameters are refused with a 400 that names the parameter and quotes at
// most 20 characters of its value. A parameter given twice is refused too, rather than
// read as its first value: two targets that differ in the second would serve one shard.
func TestShardParametersAreChecked(t *testing.T) {
	_, e := exposed(t, Options{PerCertificate: true, PerInstance: true})
	long := strings.Repeat("%E2%80%AE", 5000) // U+202E, each quoted as 6 characters
	for target, want := range map[string]string{
		"/metrics?shard=1":                     "shard and shards parameters go together",
		"/metrics?shards=4":                    "shard and shards parameters go together",
		"/metrics?shard=4&shards=4":            "parameter shard=",
		"/metrics?shard=-1&shards=4":           "parameter shard=",
		"/metrics?shard=x&shards=4":            "parameter shard=",
		"/metrics?shard=0&shards=0":            "parameter shards=",
		"/metrics?shard=0&shards=257":          "parameter shards=",
		"/metrics?shard=0&shards=99999999":     "parameter shards=",
		"/metrics?shard=&shards=":              `parameter shards="":`,
		"/metrics?shard=0&shards=4&shard=3":    "parameter shard given 2 times",
		"/metrics?shard=0&shards=4&shards=":    "parameter shards given 2 times",
		"/metrics?shard=0&shards=" + long:      "parameter shards=",
		"/metrics?shard=" + long + "&shards=4": "parameter shard=",
		"/metrics?shard=0;shards=4":            "query: invalid semicolon separator",
		"/metrics?shard=0&shards=4&x=%zz":      `query: invalid URL escape "%zz"`,
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), want) || rec.Body.Len() > 200 {
			t.Errorf("%.80s: %d %.200q, want 400 naming %q in at most 200 bytes", target, rec.Code, rec.Body.String(), want)
		}
	}
	if len(scrapeURL(t, e, "/metrics?shard=255&shards=256", false)) == 0 {
		t.Error("the last shard of the largest count serves nothing")
	}
}

// A snapshot is cut into a count's shards once, and compressed then: the next snapshot is
// cut into the counts the previous one served before it is served, so no scrape waits;
// only the most recently used counts are kept.
func TestShardsAreCutOncePerSnapshot(t *testing.T) {
	p, e := shardedRig(t)
	first := e.served.Load()
	scrapeURL(t, e, "/metrics?shard=0&shards=8", true)
	set := first.shardSets[0]
	scrapeURL(t, e, "/metrics?shard=5&shards=8", true)
	if len(first.shardSets) != 1 || first.shardSets[0] != set {
		t.Fatal("a second scrape of the same count cut the snapshot again")
	}
	// A count out of use (not scraped for shardCountIdle) makes room for another.
	for n := 1; n <= shardCountsKept+1; n++ {
		p.clock.Advance(shardCountIdle)
		scrapeURL(t, e, fmt.Sprintf("/metrics?shard=0&shards=%d", n), true)
	}
	if got := first.shardCounts(); len(got) != shardCountsKept || got[0] != shardCountsKept+1 {
		t.Fatalf("counts kept %v, want the %d most recent", got, shardCountsKept)
	}
	p.clock.Advance(time.Hour)
	p.poll(t)
	e.Publish(p.loop.Snapshot())
	next := e.served.Load()
	if next == first {
		t.Fatal("no new snapshot published")
	}
	if got, want := next.shardCounts(), first.shardCounts(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the new snapshot was cut into %v before its first scrape, want %v", got, want)
	}
	for _, set := range next.shardSets {
		for i, st := range set.static {
			if st == nil {
				t.Fatalf("shard %d of %d has no compressed static families", i, set.n)
			}
		}
	}
}

// While the counts kept are in use, a scrape of a third count renders its one shard
// itself, the same answer a cut would have served, and cuts nothing: two jobs and a
// client trying count after count used to evict a count in use at every scrape, and have
// it cut again, every shard of it, at its next (seconds of CPU each at 100,000
// certificates). Once a kept count falls out of use, the third is cut in its place.
func TestThirdShardCountIsNotCutWhileTwoAreInUse(t *testing.T) {
	p, e := shardedRig(t)
	scrapeURL(t, e, "/metrics?shard=0&shards=4", true)
	scrapeURL(t, e, "/metrics?shard=0&shards=8", true)
	var cut []int
	e.cutting = func(n int) { cut = append(cut, n) }
	fresh := shardedExposition(t, p) // cuts 16 when asked, at the same time and snapshot
	for n := 9; n <= 16; n++ {
		for i := range n {
			for _, gz := range []bool{false, true} {
				target := fmt.Sprintf("/metrics?shard=%d&shards=%d", i, n)
				if got, want := scrapeURL(t, e, target, gz), scrapeURL(t, fresh, target, gz); !bytes.Equal(got, want) {
					t.Fatalf("%s (gzip %v), rendered uncut: %d bytes, want the %d of a cut", target, gz, len(got), len(want))
				}
			}
		}
	}
	if len(cut) != 0 || fmt.Sprint(e.served.Load().shardCounts()) != "[8 4]" {
		t.Fatalf("with 8 and 4 in use, counts 9 to 16 cut %v and left %v kept, want none cut and [8 4]", cut, e.served.Load().shardCounts())
	}
	p.clock.Advance(shardCountIdle - time.Minute)
	scrapeURL(t, e, "/metrics?shard=1&shards=8", true)
	p.clock.Advance(time.Minute)
	scrapeURL(t, e, "/metrics?shard=1&shards=16", true)
	if fmt.Sprint(cut) != "[16]" || fmt.Sprint(e.served.Load().shardCounts()) != "[16 8]" {
		t.Fatalf("with 4 out of use: cut %v, kept %v; want 16 cut in place of 4", cut, e.served.Load().shardCounts())
	}
}

// A scrape of a shard count already cut does not wait for the cut of another count: a
// cut takes as long as a whole gzip scrape (half a second at 30,000 certificates and
// 90,000 instances), and a scraper of a count not yet cut (a second job, a curl) must
// not hold up the scrapes of the count in use.
func TestShardScrapesDoNotWaitForAnotherCount(t *testing.T) {
	_, e := shardedRig(t)
	serve := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		e.ServeHTTP(rec, req)
		return rec
	}
	want := serve("/metrics?shard=1&shards=4").Body.Bytes() // 4 is cut now
	started, release := make(chan struct{}), make(chan struct{})
	e.cutting = func(n int) {
		if n == 7 {
			close(started)
			<-release
		}
	}
	other := make(chan *httptest.ResponseRecorder)
	go func() { other <- serve("/metrics?shard=0&shards=7") }()
	<-started // 7 is being cut, and stays so until released
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serve("/metrics?shard=1&shards=4") }()
	var rec *httptest.ResponseRecorder
	select {
	case rec = <-done:
	case <-time.After(10 * time.Second): // a watchdog, not a wait: the scrape needs no time to pass
		t.Error("a scrape of shard 1 of 4, already cut, waited for the cut of 7")
		close(release)
		release = nil
		rec = <-done
	}
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), want) {
		t.Errorf("shard 1 of 4 during the cut of 7: %d, %d bytes; want the %d bytes served before", rec.Code, rec.Body.Len(), len(want))
	}
	if release != nil {
		close(release)
	}
	if rec := <-other; rec.Code != 200 {
		t.Errorf("shard 0 of 7: %d", rec.Code)
	}
}

// A publication cuts the new snapshot only into the counts in use: those scraped while
// the previous snapshot was served, or less than shardCountIdle ago (a scraper slower
// than the polls). A count someone tried once is not cut and held at every poll after.
func TestShardCountsOutOfUseAreDropped(t *testing.T) {
	p, e := shardedRig(t)
	publishAfter := func(d time.Duration) {
		t.Helper()
		before := e.served.Load()
		p.clock.Advance(d)
		p.poll(t)
		e.Publish(p.loop.Snapshot())
		if e.served.Load() == before {
			t.Fatal("no new snapshot published")
		}
	}
	counts := func(want string) {
		t.Helper()
		if got := fmt.Sprint(e.served.Load().shardCounts()); got != want {
			t.Fatalf("counts cut %s, want %s", got, want)
		}
	}
	scrapeURL(t, e, "/metrics?shard=0&shards=7", true) // tried once
	scrapeURL(t, e, "/metrics?shard=0&shards=8", true)
	publishAfter(time.Hour)
	counts("[8 7]") // both scraped while the previous snapshot was served
	scrapeURL(t, e, "/metrics?shard=5&shards=8", true)
	publishAfter(time.Minute)
	counts("[8]") // 7 was not scraped since the last publication, an hour and a minute ago
	publishAfter(time.Minute)
	counts("[8]") // no scrape of 8 since the last publication, but one 2 minutes ago
	publishAfter(shardCountIdle)
	counts("[]")
}

// One shard of one is the whole exposition (TestShardsAddUpToTheWhole): it is served
// from the whole's compressed families, not cut and held a second time.
func TestOneShardIsNotCut(t *testing.T) {
	_, e := shardedRig(t)
	scrapeURL(t, e, "/metrics?shard=0&shards=1", true)
	if got := e.served.Load().shardCounts(); len(got) != 0 {
		t.Fatalf("shards=1 cut the snapshot into %v", got)
	}
}

// Shard scrapes of two counts run while snapshots are published (for the race
// detector): each answer is a whole gzip member that says what it holds, and every
// certhash in it belongs to the shard asked for.
func TestShardScrapesDuringPublications(t *testing.T) {
	p, e := shardedRig(t)
	certhash := regexp.MustCompile(`[{,]certhash="([^"]*)"`)
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			var err error
			for k := 0; k < 12 && err == nil; k++ {
				n := []int{4, 8}[k%2]
				shard := (g + k) % n
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("GET", fmt.Sprintf("/metrics?shard=%d&shards=%d", shard, n), nil)
				req.Header.Set("Accept-Encoding", "gzip")
				e.ServeHTTP(rec, req)
				var zr *gzip.Reader
				if zr, err = gzip.NewReader(rec.Body); err == nil {
					var text []byte
					if text, err = io.ReadAll(zr); err == nil && !bytes.Contains(text, []byte("\nqualys_certview_shard_instances ")) {
						err = fmt.Errorf("%s: no qualys_certview_shard_instances", req.URL)
					}
					for _, m := range certhash.FindAllSubmatch(text, -1) {
						if h := string(m[1]); err == nil && ShardOf(h, n) != shard {
							err = fmt.Errorf("%s: certhash %s of shard %d", req.URL, h, ShardOf(h, n))
						}
					}
				}
			}
			errs <- err
		}()
	}
	for k := 0; k < 3; k++ {
		p.clock.Advance(time.Hour)
		p.poll(t)
		e.Publish(p.loop.Snapshot())
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
