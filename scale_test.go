//go:build scale

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

// scaleRow is one line of the README's scale table.
type scaleRow struct {
	certs, instances, oversized      int
	series                           int
	plainP50, plainP99, gzP50, gzP99 time.Duration
	duringPollP50                    time.Duration
	rssMiB, heapMiB                  float64
	calls                            int
	pollTime                         time.Duration
	recordsPerSec                    float64
	shardMax, shardMaxGzip           int // the largest of scrapeShards shards, plain and gzip bytes
	shardMaxSeries                   int // the most series in one of them
}

// scrapeShards is the shard count the table measures: one job of 32 targets keeps each
// scrape under vmagent's 16 MB default and a sample_limit of 50,000 at 100k/300k.
const scrapeShards = 32

// TestScaleTable measures the exporter at 1k/3k, 10k/30k and 100k/300k certificates and
// instances against the simulator, each size in one run, and prints the table.
// SCALE_SIZES=1000 limits the sizes (by certificate count). SCALE_AT_BOUND=1 measures
// each size a second time in the same run with every record at the bounds of what the
// exporter keeps (certviewtest's Inventory.Oversized: each kept string past its bound,
// so cut to it), the row marked "at the bound".
func TestScaleTable(t *testing.T) {
	sizes := [][2]int{{1_000, 3_000}, {10_000, 30_000}, {100_000, 300_000}}
	if only := os.Getenv("SCALE_SIZES"); only != "" {
		var keep [][2]int
		for _, s := range sizes {
			if strings.Contains(","+only+",", ","+strconv.Itoa(s[0])+",") {
				keep = append(keep, s)
			}
		}
		sizes = keep
	}
	var rows []scaleRow
	for _, s := range sizes {
		rows = append(rows, measureScale(t, s[0], s[1], 0))
		if os.Getenv("SCALE_AT_BOUND") != "" {
			rows = append(rows, measureScale(t, s[0], s[1], atBound))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| certificates / instances | series | scrape p50 plain | scrape p50 gzip | scrape p99 plain / gzip | p50 during a poll | largest of %d shards: plain / gzip, series | peak RSS | heap | API calls per poll | poll time (no waits) | decode |\n", scrapeShards)
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		at := ""
		if r.oversized > 0 {
			at = ", at the bound"
		}
		fmt.Fprintf(&b, "| %s / %s%s | %s | %s | %s | %s / %s | %s | %.1f / %.1f MB, %s | %.0f MiB | %.0f MiB | %d | %s | %s rec/s |\n",
			thousands(r.certs), thousands(r.instances), at, thousands(r.series), ms(r.plainP50), ms(r.gzP50), ms(r.plainP99), ms(r.gzP99),
			ms(r.duringPollP50), float64(r.shardMax)/1e6, float64(r.shardMaxGzip)/1e6, thousands(r.shardMaxSeries), r.rssMiB, r.heapMiB, r.calls, r.pollTime.Round(100*time.Millisecond), thousands(int(r.recordsPerSec)))
	}
	t.Log(b.String())
	fmt.Println(b.String())
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// atBound is the padding of the "at the bound" rows: each kept string is 256 bytes, the
// widest bound, so every one is kept at its bound (a DN is kept as its 39-byte digest, as
// most are); the SAN list, 25 names, is cut at its 512 bytes.
const atBound = 256

func measureScale(t *testing.T, nc, ni, oversized int) scaleRow {
	t.Helper()
	row := scaleRow{certs: nc, instances: ni, oversized: oversized}
	srv := certviewtest.NewServer(certviewtest.Options{
		Inventory: certviewtest.Inventory{Seed: 42, Certificates: nc, Instances: ni, Oversized: oversized},
		RateLimit: 1 << 30, Concurrency: 8,
	})
	defer srv.Close()
	dir := t.TempDir()
	snapshot := filepath.Join(dir, "snapshot")
	config := func(interval string) string {
		path := filepath.Join(dir, "config-"+interval+".yml")
		// Owners on, as the README's example (the simulator's assets carry Team- and
		// environment tags): the heavier configuration, which the series budget is for.
		writeFile(t, path, fmt.Sprintf("qualys:\n  api_url: %s\n  username: demo\n  password: demo-password\npoll:\n  interval: %s\n  timeout: 2h\nrate_limit:\n  calls: 1000000000\n  window: 1h\n  concurrency: 8\nsnapshot:\n  path: %s\n%s",
			srv.URL, interval, snapshot, scaleOwners))
		return path
	}

	// Phase A: a first poll, then scrapes of the fresh snapshot.
	p := startScaleExporter(t, "--config.file="+config("1h"))
	p.waitFor(t, "the first poll", 30*time.Minute, func() bool { code, _ := p.get("/-/ready"); return code == 200 })
	row.calls = srv.Sim.Requests("certificates") + srv.Sim.Requests("instances")
	body := p.body(t, false)
	row.series = countSeries(body)
	row.pollTime = time.Duration(metricValue(body, "qualys_certview_poll_duration_seconds") * float64(time.Second))
	row.recordsPerSec = float64(nc+ni) / row.pollTime.Seconds()
	plain, gz := p.timeScrapes(t, 25)
	row.plainP50, row.plainP99 = pct(plain, 50), pct(plain, 99)
	row.gzP50, row.gzP99 = pct(gz, 50), pct(gz, 99)
	// The shards add up to the whole, plus each one's two shard_ series.
	shardSeries := 0
	for i := 0; i < scrapeShards; i++ {
		shard := p.shardBody(t, i, scrapeShards, false)
		shardSeries += countSeries(shard)
		row.shardMaxSeries = max(row.shardMaxSeries, countSeries(shard))
		row.shardMax = max(row.shardMax, len(shard))
		row.shardMaxGzip = max(row.shardMaxGzip, len(p.shardBody(t, i, scrapeShards, true)))
	}
	if want := countSeries(p.body(t, false)) + 2*scrapeShards; shardSeries != want {
		t.Errorf("%d/%d: the %d shards serve %d series, want %d", nc, ni, scrapeShards, shardSeries, want)
	}
	// The inventory as generated must fit; one with every string at its bound is twice
	// as wide and is shown, not held (the README sizes N for it).
	if row.shardMax > 8e6 && oversized == 0 {
		t.Errorf("%d/%d: a shard of %d is %d bytes, over 8 MB", nc, ni, scrapeShards, row.shardMax)
	}
	if row.shardMaxSeries > 50_000 {
		t.Errorf("%d/%d: a shard of %d has %d series, over a sample_limit of 50,000", nc, ni, scrapeShards, row.shardMaxSeries)
	}
	p.stop(t)

	// Phase B: a restart from the saved snapshot with a poll due at once. Scrapes during
	// the poll serve the saved snapshot; peak RSS covers the poll and the scrapes after it.
	before := srv.Sim.Requests("certificates") + srv.Sim.Requests("instances")
	p = startScaleExporter(t, "--config.file="+config("2s"))
	p.waitFor(t, "the saved snapshot", time.Minute, func() bool { code, _ := p.get("/-/ready"); return code == 200 })
	var during []time.Duration
	var heap float64
	for {
		polling := srv.Sim.Requests("certificates")+srv.Sim.Requests("instances") > before
		done := strings.Contains(p.logs.String(), `msg="poll complete"`)
		if done {
			break
		}
		// Sharded scrapers too, of both shard counts a snapshot keeps, so that peak
		// RSS holds the shards' caches of the saved snapshot and of the polled one,
		// cut when it is published.
		for i := 0; i < scrapeShards; i++ {
			p.shardBody(t, i, scrapeShards, true)
		}
		p.shardBody(t, 0, scrapeShards/2, true)
		start := time.Now()
		b := p.body(t, false)
		if polling {
			during = append(during, time.Since(start))
		}
		if h := metricValue(b, "go_memstats_heap_inuse_bytes"); h > heap {
			heap = h
		}
	}
	for i := 0; i < 10; i++ {
		b := p.body(t, i%2 == 0)
		if h := metricValue(b, "go_memstats_heap_inuse_bytes"); h > heap {
			heap = h
		}
	}
	row.duringPollP50 = pct(during, 50)
	row.rssMiB = p.peakRSS(t) / 1024
	// At 100,000 / 300,000, as generated and at the bound, the peak fits the Helm chart's
	// memory limit with a fifth to spare (TestHelmChart holds the chart to the README's
	// figure; this holds the measurement to the chart).
	if limit := chartMemoryLimit(t); nc == 100_000 && 1.2*row.rssMiB*(1<<20) > float64(limit) {
		t.Errorf("%d/%d: peak RSS %.0f MiB, over the chart's memory limit of %d MiB less a fifth", nc, ni, row.rssMiB, limit>>20)
	}
	row.heapMiB = heap / (1 << 20)
	p.stop(t)
	return row
}

type scaleProc struct {
	*exporterProc
}

func startScaleExporter(t *testing.T, args ...string) *scaleProc {
	t.Helper()
	return &scaleProc{startExporter(t, nil, append([]string{"--log.level=info"}, args...)...)}
}

func (p *scaleProc) waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-p.exited:
			t.Fatalf("the exporter exited (%v) while waiting for %s:\n%s", p.waitErr, what, p.logs.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// body fetches /metrics (plain or gzip, decoded by the client) into memory.
func (p *scaleProc) body(t *testing.T, gz bool) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/metrics", nil)
	if !gz {
		req.Header.Set("Accept-Encoding", "identity")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shardBody fetches one of shards shards, its body as sent: compressed for gzip.
func (p *scaleProc) shardBody(t *testing.T, shard, shards int, gz bool) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/metrics?shard=%d&shards=%d", p.addr, shard, shards), nil)
	req.Header.Set("Accept-Encoding", "identity")
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("shard %d: %d %v", shard, resp.StatusCode, err)
	}
	return b
}

// scaleOwners is the owners section of the table's configuration.
const scaleOwners = `owners:
  labels:
    - name: team
      tag_regex: '^Team-(.+)$'
    - name: environment
      tag_values: [Production, Staging]
`

// timeScrapes times n plain and n gzip scrapes, each read whole and dropped, as
// Prometheus would read them (transport compression on for gzip).
func (p *scaleProc) timeScrapes(t *testing.T, n int) (plain, gz []time.Duration) {
	t.Helper()
	for i := 0; i < n; i++ {
		for _, compressed := range []bool{false, true} {
			req, _ := http.NewRequest("GET", "http://"+p.addr+"/metrics", nil)
			// Set explicitly: the transport would otherwise ask for gzip itself and
			// decompress on this side.
			req.Header.Set("Accept-Encoding", "identity")
			if compressed {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			start := time.Now()
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if compressed {
				gz = append(gz, time.Since(start))
			} else {
				plain = append(plain, time.Since(start))
			}
		}
	}
	return plain, gz
}

func (p *scaleProc) peakRSS(t *testing.T) float64 { return peakRSSOf(t, p.cmd.Process.Pid) }

func (p *scaleProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the exporter did not stop")
	}
}

func countSeries(body []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Bytes(); len(l) > 0 && l[0] != '#' {
			n++
		}
	}
	return n
}

func metricValue(body []byte, name string) float64 {
	i := bytes.Index(body, []byte("\n"+name+" "))
	if i < 0 {
		return 0
	}
	line := body[i+len(name)+2:]
	line = line[:bytes.IndexByte(line, '\n')]
	v, _ := strconv.ParseFloat(string(line), 64)
	return v
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > len(s) {
		i = len(s)
	}
	if i < 1 {
		i = 1
	}
	return s[i-1]
}
