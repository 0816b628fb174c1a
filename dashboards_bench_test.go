//go:build e2e && dashbench

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDashboardBench is `make bench-dashboards`: the exporter in demo mode at each size
// of BENCH_SIZES (certificates/instances, smallest first), scraped by Debian's
// Prometheus, first without rules (for its memory) and then with the shipped rules. Every
// dashboard query runs as Grafana would send it (range queries for time series, instant
// queries for tables and stats, the variables' queries), each BENCH_ROUNDS times between
// scrapes (a per-certificate query warmRuns times back to back in each round), beside
// one plain scan, count(qualys_certview_instance_grade_rank). It prints a
// table (and writes it to BENCH_OUT when set) and fails when the largest size misses a
// bound: a per-certificate query over 2x its time at the smallest size, a fleet query
// over 3x the scan or over 1,000 series, a rule group over 3x the scan, Prometheus's
// peak memory with rules over 1.5x without, 10,000 active alerts or more, or the series
// of the renewal-aware expiry alerts (renewalSeries) over 5% of the others.
func TestDashboardBench(t *testing.T) {
	sizes := [][2]int{{1000, 3000}, {100000, 300000}}
	if env := os.Getenv("BENCH_SIZES"); env != "" {
		sizes = nil
		for _, s := range strings.Split(env, ",") {
			var c, i int
			if _, err := fmt.Sscanf(s, "%d/%d", &c, &i); err != nil {
				t.Fatalf("BENCH_SIZES %q: want certificates/instances,...", env)
			}
			sizes = append(sizes, [2]int{c, i})
		}
	}
	rounds := 5
	if env := os.Getenv("BENCH_ROUNDS"); env != "" {
		rounds, _ = strconv.Atoi(env)
	}
	queries := dashboardQueries(t)
	var runs []*benchRun
	for _, size := range sizes {
		runs = append(runs, benchSize(t, size, queries, rounds))
	}
	report := benchReport(runs, queries)
	fmt.Println(report)
	if out := os.Getenv("BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(runs) < 2 {
		return
	}
	small, large := runs[0], runs[len(runs)-1]
	for _, q := range queries {
		s, l := small.times[q.key()], large.times[q.key()]
		switch {
		case q.perCert && l > 2*s:
			t.Errorf("per-certificate %s: %s at the largest size, %.1fx its %s at the smallest (bound 2x)", q.key(), ms(l), ratio(l, s), ms(s))
		case !q.perCert && l > 3*large.scan:
			t.Errorf("fleet %s: %s, %.1fx the scan's %s (bound 3x)", q.key(), ms(l), ratio(l, large.scan), ms(large.scan))
		}
		if !q.perCert && large.series[q.key()] > 1000 {
			t.Errorf("fleet %s returns %d series (bound 1,000)", q.key(), large.series[q.key()])
		}
	}
	for g, d := range large.groups {
		if d > 3*large.scan {
			t.Errorf("rule group %s evaluates in %s, %.1fx the scan (bound 3x)", g, ms(d), ratio(d, large.scan))
		}
	}
	if large.rssRules > 1.5*large.rssNoRules {
		t.Errorf("Prometheus peak RSS %.1f GB with rules, %.2fx its %.1f GB without (bound 1.5x)", large.rssRules/1e6, large.rssRules/large.rssNoRules, large.rssNoRules/1e6)
	}
	if added := large.addedSeries(); float64(added) > 0.05*float64(large.headSeries-added) {
		t.Errorf("the renewal, lifetime and chain series number %d, %.1f%% of the %d before them (bound 5%%)",
			added, 100*float64(added)/float64(large.headSeries-added), large.headSeries-added)
	}
	if large.alerts >= 10000 {
		t.Errorf("%d active alerts (bound 10,000)", large.alerts)
	}
}

// dashQuery is one query a dashboard sends.
type dashQuery struct {
	dashboard, panel, ref string
	kind                  string // "instant", "range", "label_values"
	expr                  string // the PromQL, or label_values' selector
	label                 string // for label_values
	perCert               bool   // selects one certificate by $certhash
	rangeSeconds          int    // the dashboard's time range, for range queries
}

func (q dashQuery) key() string { return q.dashboard + " / " + q.panel + " " + q.ref }

var (
	dashVarRef      = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`)
	labelValuesCall = regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)
	queryResultCall = regexp.MustCompile(`^query_result\((.*)\)$`)
)

// dashboardQueries reads every query of every dashboard: the variables' and the panels'.
func dashboardQueries(t *testing.T) []dashQuery {
	t.Helper()
	files, _ := filepath.Glob("dashboards/*.json")
	var out []dashQuery
	for _, file := range files {
		d := readDashboard(t, file)
		from := strings.TrimPrefix(d.Time.From, "now-")
		span, err := time.ParseDuration(from)
		if days, ok := strings.CutSuffix(from, "d"); ok {
			// "now-7d": days are not a Go duration unit.
			n, _ := strconv.Atoi(days)
			span, err = time.Duration(n)*24*time.Hour, nil
		}
		if err != nil {
			t.Fatalf("%s: time range %q: %v", file, d.Time.From, err)
		}
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			var q struct {
				Query string `json:"query"`
			}
			_ = json.Unmarshal(v.Query, &q)
			dq := dashQuery{dashboard: name, panel: "variable " + v.Name}
			if m := labelValuesCall.FindStringSubmatch(q.Query); m != nil {
				dq.kind, dq.expr, dq.label = "label_values", m[1], m[2]
			} else if m := queryResultCall.FindStringSubmatch(q.Query); m != nil {
				dq.kind, dq.expr = "instant", m[1]
			} else {
				t.Fatalf("%s: variable %s: unexpected query %q", file, v.Name, q.Query)
			}
			out = append(out, dq)
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					continue
				}
				dq := dashQuery{dashboard: name, panel: p.Title, ref: tg.RefID, kind: "range", expr: tg.Expr,
					perCert: strings.Contains(tg.Expr, "$certhash"), rangeSeconds: int(span.Seconds())}
				if tg.Instant {
					dq.kind = "instant"
				}
				out = append(out, dq)
			}
		}
	}
	return out
}

// benchRun holds what one size measured.
type benchRun struct {
	certs, instances int
	scan             time.Duration            // fastest count(qualys_certview_instance_grade_rank)
	times            map[string]time.Duration // fastest per query
	series           map[string]int
	bytes            map[string]int
	groups           map[string]time.Duration // the median of the evaluations seen per rule group
	evals            map[string]map[time.Time]time.Duration
	rssNoRules       float64 // Prometheus VmHWM, kB
	rssRules         float64 // after the rules' evaluations, before the dashboard queries
	rssQueries       float64 // after the dashboard queries too
	alerts           int
	headSeries       int            // every series in Prometheus's head, recorded ones included
	added            map[string]int // series per name of renewalSeries
	scrape           time.Duration  // the last scrape's duration
	samples          map[string][]time.Duration
	firsts           map[string][]time.Duration // per-certificate queries: the first run of each round
	cold             map[string]time.Duration   // the median of firsts
}

const (
	benchScrapeInterval = 2 * time.Minute
	// warmRuns is how many times a per-certificate query runs back to back in a round.
	// The first run after a pause finds Prometheus's memory cold: at 100k/300k its
	// 13 GB heap costs a few tenths of a millisecond of cache and TLB misses to any
	// query, however few series it reads. The fastest run is the query's own cost.
	warmRuns = 10
)

func benchSize(t *testing.T, size [2]int, queries []dashQuery, rounds int) *benchRun {
	run := &benchRun{certs: size[0], instances: size[1], times: map[string]time.Duration{}, series: map[string]int{},
		bytes: map[string]int{}, groups: map[string]time.Duration{}, firsts: map[string][]time.Duration{}, cold: map[string]time.Duration{}}
	t.Logf("%d certificates, %d instances: starting the exporter", size[0], size[1])
	exp := startExporter(t, nil, "--log.level=info", "--demo", fmt.Sprintf("--demo.certificates=%d", size[0]),
		fmt.Sprintf("--demo.instances=%d", size[1]), "--demo.interval=24h")
	waitUntil(t, "the exporter's first poll", 10*time.Minute, func() bool { code, _ := exp.get("/-/ready"); return code == 200 })
	defer func() { _ = exp.cmd.Process.Kill() }()

	// Without rules: Prometheus's memory for the series alone.
	prom := startBenchProm(t, exp.addr, false)
	prom.waitScrapes(t, 2)
	run.rssNoRules = prom.peakRSS(t)
	prom.stop()
	t.Logf("without rules: peak RSS %.2f GB", run.rssNoRules/1e6)

	prom = startBenchProm(t, exp.addr, true)
	defer prom.stop()
	prom.waitScrapes(t, 2)
	// Every group evaluated twice since the second scrape. Then the peak memory is that
	// of the scrapes and the rules, the same workload as without rules but for the rules;
	// the dashboard queries below raise it further, and that is reported apart.
	for range 2 {
		since := time.Now()
		waitUntil(t, "the rule groups' evaluations", 5*time.Minute, func() bool {
			groups := prom.ruleGroups(t)
			for _, g := range groups {
				if g.LastEvaluation.Before(since) {
					return false
				}
			}
			return len(groups) > 0
		})
	}
	run.rssRules = prom.peakRSS(t)
	run.headSeries, run.added = prom.headSeries(t), prom.seriesByName(t, renewalSeries)

	vars := prom.variables(t)
	for r := 0; r < rounds; r++ {
		prom.waitIdle(t)
		d, _, _ := prom.timed(t, dashQuery{kind: "instant", expr: "count(qualys_certview_instance_grade_rank)"}, nil)
		run.addSample("scan", d)
		for _, q := range queries {
			prom.waitIdle(t)
			d, n, b := prom.timed(t, q, vars)
			run.addSample(q.key(), d)
			run.series[q.key()], run.bytes[q.key()] = n, b
			if q.perCert {
				run.firsts[q.key()] = append(run.firsts[q.key()], d)
				for range warmRuns - 1 {
					d, _, _ = prom.timed(t, q, vars)
					run.addSample(q.key(), d)
				}
			}
			for _, g := range prom.ruleGroups(t) {
				run.addEvaluation(g)
			}
		}
	}
	run.finish()
	run.rssQueries = prom.peakRSS(t)
	run.alerts = prom.activeAlerts(t)
	run.scrape = time.Duration(prom.scalar(t, `scrape_duration_seconds{job="certview"}`) * float64(time.Second))
	t.Logf("with rules: peak RSS %.2f GB, %.2f GB with the dashboard queries, %d active alerts, scan %s", run.rssRules/1e6, run.rssQueries/1e6, run.alerts, ms(run.scan))
	return run
}

// addEvaluation keeps a rule group's last evaluation, once each, until finish takes the
// median: evaluations that overlap a scrape's ingestion (seconds of CPU at 100k/300k
// on two cores) are slower, and the median is the typical one.
func (r *benchRun) addEvaluation(g ruleGroup) {
	if r.evals == nil {
		r.evals = map[string]map[time.Time]time.Duration{}
	}
	if r.evals[g.Name] == nil {
		r.evals[g.Name] = map[time.Time]time.Duration{}
	}
	r.evals[g.Name][g.LastEvaluation] = time.Duration(g.EvaluationTime * float64(time.Second))
}

// addSample keeps one run of a query until finish takes the fastest.
func (r *benchRun) addSample(key string, d time.Duration) {
	if r.samples == nil {
		r.samples = map[string][]time.Duration{}
	}
	r.samples[key] = append(r.samples[key], d)
}

// finish takes each query's fastest run: a query's own cost, without the garbage
// collections, scrape ingestion and cold memory that land on some runs; the median of
// the per-certificate queries' first runs (cold); and each rule group's median
// evaluation.
func (r *benchRun) finish() {
	for key, ds := range r.samples {
		slices.Sort(ds)
		r.times[key] = ds[0]
	}
	r.scan = r.times["scan"]
	for key, ds := range r.firsts {
		slices.Sort(ds)
		r.cold[key] = ds[len(ds)/2]
	}
	for name, evals := range r.evals {
		ds := slices.Sorted(maps.Values(evals))
		r.groups[name] = ds[len(ds)/2]
	}
}

type benchProm struct {
	cmd  *exec.Cmd
	base string
	logs *lockedBuffer
	done chan struct{}
}

func startBenchProm(t *testing.T, target string, rules bool) *benchProm {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: %s\n  scrape_timeout: 100s\n  evaluation_interval: 1m\n", benchScrapeInterval)
	if rules {
		root, _ := os.Getwd()
		cfg += fmt.Sprintf("rule_files:\n  - %s\n  - %s\n", filepath.Join(root, "deploy/prometheus/rules.yml"), filepath.Join(root, "deploy/prometheus/alerts.yml"))
	}
	cfg += fmt.Sprintf("scrape_configs:\n  - job_name: certview\n    static_configs:\n      - targets: [%q]\n", target)
	write(t, filepath.Join(dir, "prometheus.yml"), cfg)
	addr := freeAddr(t)
	p := &benchProm{base: "http://" + addr, logs: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+addr)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("prometheus: %v (`make bench-dashboards` wants Debian's prometheus)", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	waitUntil(t, "Prometheus to start", time.Minute, func() bool {
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func (p *benchProm) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *benchProm) api(t *testing.T) *promAPI { return &promAPI{t: t, base: p.base} }

func (p *benchProm) scalar(t *testing.T, q string) float64 {
	r := p.api(t).query(q)
	if len(r) == 0 {
		return 0
	}
	s, _ := r[0].Value[1].(string)
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// waitScrapes waits until n scrapes of the exporter have finished.
func (p *benchProm) waitScrapes(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d scrapes", n), time.Duration(n+2)*benchScrapeInterval, func() bool {
		return p.scalar(t, `count_over_time(scrape_duration_seconds{job="certview"}[30m])`) >= float64(n)
	})
}

// waitIdle waits until Prometheus is between scrapes: the last one has finished and the
// next is at least 30 seconds away. Rule evaluations go on as they would.
func (p *benchProm) waitIdle(t *testing.T) {
	t.Helper()
	waitUntil(t, "a pause between scrapes", 2*benchScrapeInterval, func() bool {
		since := p.scalar(t, `time() - timestamp(scrape_duration_seconds{job="certview"})`)
		took := p.scalar(t, `scrape_duration_seconds{job="certview"}`)
		return since > took+2 && since < benchScrapeInterval.Seconds()-30
	})
}

// variables are the values a user would have picked: every job and exporter, any common
// name, a certificate served by three instances (as many at every size), and the worst
// grades as the dashboard's hidden variable finds them.
func (p *benchProm) variables(t *testing.T) map[string]string {
	t.Helper()
	served := p.api(t).query(`qualys_certview_certificate_instances == 3`)
	if len(served) == 0 {
		t.Fatal("no certificate served by three instances")
	}
	hashes := make([]string, 0, len(served))
	for _, s := range served {
		hashes = append(hashes, s.Metric["certhash"])
	}
	slices.Sort(hashes)
	var worst []string
	for _, s := range p.api(t).query(`count by (grade) (bottomk(50, qualys_certview_instance_grade_rank > 0))`) {
		worst = append(worst, regexp.QuoteMeta(s.Metric["grade"]))
	}
	slices.Sort(worst)
	return map[string]string{"job": ".+", "instance": ".+", "common_name": ".*", "team": ".*", "certhash": hashes[0],
		"worst_grades": "(" + strings.Join(worst, "|") + ")"}
}

// timed runs a query as Grafana would and returns its time, series and bytes.
func (p *benchProm) timed(t *testing.T, q dashQuery, vars map[string]string) (time.Duration, int, int) {
	t.Helper()
	now := time.Now()
	step := max(q.rangeSeconds/1000, 15)
	subst := func(s string) string {
		return dashVarRef.ReplaceAllStringFunc(s, func(m string) string {
			sm := dashVarRef.FindStringSubmatch(m)
			name := sm[1] + sm[3]
			switch name {
			case "__rate_interval":
				return fmt.Sprintf("%ds", max(4*15, step+15))
			case "__interval":
				return fmt.Sprintf("%ds", step)
			}
			if v, ok := vars[name]; ok {
				return v
			}
			t.Fatalf("%s uses an unknown variable %s", q.key(), m)
			return m
		})
	}
	var path string
	params := url.Values{}
	switch q.kind {
	case "instant":
		params.Set("stats", "all")
		path = "/api/v1/query"
		params.Set("query", subst(q.expr))
		params.Set("time", strconv.FormatInt(now.Unix(), 10))
	case "range":
		params.Set("stats", "all")
		path = "/api/v1/query_range"
		params.Set("query", subst(q.expr))
		// The last step falls on now: a fresh Prometheus has only minutes of data, which
		// a step of several minutes ending earlier would miss.
		span := int64(q.rangeSeconds / step * step)
		params.Set("start", strconv.FormatInt(now.Unix()-span, 10))
		params.Set("end", strconv.FormatInt(now.Unix(), 10))
		params.Set("step", strconv.Itoa(step))
	case "label_values":
		path = "/api/v1/label/" + q.label + "/values"
		params.Set("match[]", subst(q.expr))
		params.Set("start", strconv.FormatInt(now.Unix()-3600, 10))
		params.Set("end", strconv.FormatInt(now.Unix(), 10))
	}
	// Grafana POSTs queries; the label values endpoint of Prometheus 2.42 takes GET only.
	start := time.Now()
	var resp *http.Response
	var err error
	if q.kind == "label_values" {
		resp, err = http.Get(p.base + path + "?" + params.Encode())
	} else {
		resp, err = http.Post(p.base+path, "application/x-www-form-urlencoded", strings.NewReader(params.Encode()))
	}
	if err != nil {
		t.Fatalf("%s: %v", q.key(), err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: status %d: %s", q.key(), resp.StatusCode, body)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(body, &env)
	n := 0
	if q.kind == "label_values" {
		var values []string
		_ = json.Unmarshal(env.Data, &values)
		n = len(values)
	} else {
		var data struct {
			Result json.RawMessage `json:"result"`
			Stats  struct {
				Timings struct {
					EvalTotalTime float64 `json:"evalTotalTime"`
				} `json:"timings"`
			} `json:"stats"`
		}
		_ = json.Unmarshal(env.Data, &data)
		// The engine's own time (evalTotalTime: preparing the series, which it includes,
		// and evaluating): the query's cost, without the HTTP and JSON around it, which is
		// most of a millisecond query.
		if tm := data.Stats.Timings; tm.EvalTotalTime > 0 {
			took = time.Duration(tm.EvalTotalTime * float64(time.Second))
		}
		var list []json.RawMessage
		if json.Unmarshal(data.Result, &list) == nil {
			n = len(list)
		} else {
			n = 1 // a scalar
		}
	}
	return took, n, len(body)
}

type ruleGroup struct {
	Name           string    `json:"name"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

func (p *benchProm) ruleGroups(t *testing.T) []ruleGroup {
	var data struct {
		Groups []ruleGroup `json:"groups"`
	}
	if err := p.api(t).get("/api/v1/rules", nil, &data); err != nil {
		t.Fatal(err)
	}
	return data.Groups
}

// renewalSeries selects the series that the renewal-aware, lifetime-relative and
// chain-aware expiry alerts added: the exporter's successor, served-leaves and lifetime
// families, and the recording rules beside the two that were there before them.
const renewalSeries = `{__name__=~"qualys_certview_certificate_successor_info|qualys_certview_issuer_served_leaves|` +
	`qualys_certview_(owner_)?certificates_over_lifetime_cap|certview:issuer_expiry_days:within_30d|` +
	`certview:certificate_expiry_days:(watched_within_30d|due|due_by_owner)|` +
	`certview:certificate_(lifetime|due_window|critical_window)_days:watched_within_30d"}`

// headSeries is how many series Prometheus's head holds.
func (p *benchProm) headSeries(t *testing.T) int {
	var data struct {
		HeadStats struct {
			NumSeries int `json:"numSeries"`
		} `json:"headStats"`
	}
	if err := p.api(t).get("/api/v1/status/tsdb", nil, &data); err != nil {
		t.Fatal(err)
	}
	return data.HeadStats.NumSeries
}

// seriesByName counts the series of selector, per metric name.
func (p *benchProm) seriesByName(t *testing.T, selector string) map[string]int {
	out := map[string]int{}
	for _, s := range p.api(t).query("count by (__name__) (" + selector + ")") {
		n, _ := strconv.Atoi(fmt.Sprint(s.Value[1]))
		out[s.Metric["__name__"]] = n
	}
	return out
}

func (r *benchRun) addedSeries() int {
	n := 0
	for _, c := range r.added {
		n += c
	}
	return n
}

func (p *benchProm) activeAlerts(t *testing.T) int {
	var data struct {
		Alerts []json.RawMessage `json:"alerts"`
	}
	if err := p.api(t).get("/api/v1/alerts", nil, &data); err != nil {
		t.Fatal(err)
	}
	return len(data.Alerts)
}

func (p *benchProm) peakRSS(t *testing.T) float64 { return peakRSSOf(t, p.cmd.Process.Pid) }

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(time.Second)
	}
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ms prints a duration in milliseconds, with two decimals below 10 ms.
func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// benchReport is the Markdown table of the runs: each query at every size, with its
// ratio to the smallest size (per-certificate queries) or to the scan (fleet queries).
func benchReport(runs []*benchRun, queries []dashQuery) string {
	var b strings.Builder
	small, large := runs[0], runs[len(runs)-1]
	size := func(r *benchRun) string { return fmt.Sprintf("%dk/%dk", r.certs/1000, r.instances/1000) }
	fmt.Fprintf(&b, "Prometheus 2.42 (Debian), scrape every %s, rules every 1m (every 2m for the groups that set it); the fastest of each query's runs between scrapes (per-certificate queries: %d back to back in each round), as the engine times it (the query statistics: preparation and evaluation; label values: the request); the median of each rule group's evaluations.\n\n", benchScrapeInterval, warmRuns)
	fmt.Fprintf(&b, "| | %s | %s |\n|---|---|---|\n", size(small), size(large))
	fmt.Fprintf(&b, "| plain scan `count(qualys_certview_instance_grade_rank)` | %s | %s |\n", ms(small.scan), ms(large.scan))
	fmt.Fprintf(&b, "| scrape duration | %s | %s |\n", ms(small.scrape), ms(large.scrape))
	fmt.Fprintf(&b, "| Prometheus peak RSS without rules | %.2f GB | %.2f GB |\n", small.rssNoRules/1e6, large.rssNoRules/1e6)
	fmt.Fprintf(&b, "| Prometheus peak RSS with rules | %.2f GB (%.2fx) | %.2f GB (%.2fx) |\n", small.rssRules/1e6, small.rssRules/small.rssNoRules, large.rssRules/1e6, large.rssRules/large.rssNoRules)
	fmt.Fprintf(&b, "| the same, after the dashboard queries too | %.2f GB (%.2fx) | %.2f GB (%.2fx) |\n", small.rssQueries/1e6, small.rssQueries/small.rssNoRules, large.rssQueries/1e6, large.rssQueries/large.rssNoRules)
	fmt.Fprintf(&b, "| active alerts | %d | %d |\n", small.alerts, large.alerts)
	fmt.Fprintf(&b, "| head series (exporter and recording rules) | %d | %d |\n", small.headSeries, large.headSeries)
	share := func(r *benchRun) string {
		a := r.addedSeries()
		return fmt.Sprintf("%d (%.2f%% of the %d before them)", a, 100*float64(a)/float64(r.headSeries-a), r.headSeries-a)
	}
	fmt.Fprintf(&b, "| of which renewal, lifetime and chain series (bound 5%%) | %s | %s |\n\n", share(small), share(large))
	fmt.Fprintf(&b, "| renewal, lifetime and chain series | %s | %s |\n|---|---|---|\n", size(small), size(large))
	var added []string
	for n := range large.added {
		added = append(added, n)
	}
	for n := range small.added {
		if _, ok := large.added[n]; !ok {
			added = append(added, n)
		}
	}
	slices.Sort(added)
	for _, n := range added {
		fmt.Fprintf(&b, "| `%s` | %d | %d |\n", n, small.added[n], large.added[n])
	}
	b.WriteString("\n")

	fmt.Fprintf(&b, "| rule group | %s | %s | vs scan at %s (bound 3x) |\n|---|---|---|---|\n", size(small), size(large), size(large))
	var names []string
	for g := range large.groups {
		names = append(names, g)
	}
	slices.Sort(names)
	for _, g := range names {
		fmt.Fprintf(&b, "| %s | %s | %s | %.2fx |\n", g, ms(small.groups[g]), ms(large.groups[g]), ratio(large.groups[g], large.scan))
	}
	fmt.Fprintf(&b, "\n| dashboard / panel query | kind | %s | %s | ratio (bound) | series | bytes |\n|---|---|---|---|---|---|---|\n", size(small), size(large))
	for _, q := range queries {
		k := q.key()
		r := fmt.Sprintf("%.2fx scan (3x)", ratio(large.times[k], large.scan))
		if q.perCert {
			r = fmt.Sprintf("%.2fx %s (2x)", ratio(large.times[k], small.times[k]), size(small))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %d |\n", k, q.kind, ms(small.times[k]), ms(large.times[k]), r, large.series[k], large.bytes[k])
	}
	// Not bounded, shown: what the first run of a round costs, after a pause.
	fmt.Fprintf(&b, "\n| per-certificate query, first run of a round (median) | %s | %s | ratio |\n|---|---|---|---|\n", size(small), size(large))
	for _, q := range queries {
		if k := q.key(); q.perCert {
			fmt.Fprintf(&b, "| %s | %s | %s | %.2fx |\n", k, ms(small.cold[k]), ms(large.cold[k]), ratio(large.cold[k], small.cold[k]))
		}
	}
	return b.String()
}
