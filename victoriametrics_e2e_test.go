//go:build e2e

package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// vmShards is how many shards both pipelines scrape the exporter in.
const vmShards = 4

// vmTestInterval is the scrape and rule-evaluation interval of both pipelines.
const vmTestInterval = "2s"

// TestVictoriaMetricsStack runs the shipped rules on VictoriaMetrics and on Prometheus side
// by side, against one exporter scraped in shards with the README's scrape config, and
// wants the same alerts from both. The VictoriaMetrics pipeline is Debian's
// victoria-metrics package: vmagent scrapes the shards and remote-writes into
// VictoriaMetrics single-node, and vmalert evaluates deploy/prometheus/rules.yml and
// alerts.yml, unmodified but for the groups' intervals, against it (the recording rules
// written back through remote write) and notifies its own Alertmanager. The Prometheus
// pipeline is Debian's Prometheus with the same scrape job, the same rules and another
// Alertmanager. Both Alertmanagers run the example routing tree.
func TestVictoriaMetricsStack(t *testing.T) {
	for _, bin := range []string{"prometheus", "prometheus-alertmanager", "victoria-metrics", "vmagent", "vmalert"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is missing: `apt-get install victoria-metrics prometheus prometheus-alertmanager` (Debian's "+
				"victoria-metrics package ships victoria-metrics, vmagent and vmalert); .ci/run installs them", bin)
		}
	}
	root, _ := os.Getwd()
	shipped := filepath.Join(root, "deploy", "prometheus")
	// What the pipelines run: the shipped files, with the groups that set their own
	// interval (2m) at the test's.
	rules := rulesEvery(t, shipped, vmTestInterval)
	ruleFiles := []string{filepath.Join(rules, "rules.yml"), filepath.Join(rules, "alerts.yml")}
	dir := t.TempDir()

	// vmalert parses the shipped files and their annotation templates (query, first, value,
	// sortByLabel, ...) before anything runs: a function it lacks is named here.
	dry := []string{"-dryRun", "-rule=" + filepath.Join(shipped, "rules.yml"), "-rule=" + filepath.Join(shipped, "alerts.yml")}
	if out, err := exec.Command("vmalert", dry...).CombinedOutput(); err != nil {
		t.Fatalf("vmalert rejects the shipped rules: %v\n%s", err, lastLines(string(out), 5))
	}

	// A fixed inventory: the churn ticks once an hour, so that both pipelines see the same
	// certificates whenever they evaluate.
	exp := startExporter(t, nil, "--demo", fmt.Sprintf("--demo.certificates=%d", demoCertificates),
		fmt.Sprintf("--demo.instances=%d", demoInstances), "--demo.interval=1h")
	exp.eventually("exporter readiness", func() bool { code, _ := exp.get("/-/ready"); return code == 200 })

	// The README's sharded scrape job, for both scrapers.
	job := shardedScrapeJob(exp.addr, vmShards)

	// The Prometheus pipeline: the compose stack's prometheus.yml as TestMonitoringStack
	// runs it, with the sharded job in place of its single target.
	promHooks, promAM := newWebhookLog(t), freeAddr(t)
	startTestAlertmanager(t, dir, "alertmanager-prometheus", promAM, promHooks)
	promAddr := freeAddr(t)
	promConfig := filepath.Join(dir, "prometheus.yml")
	write(t, promConfig, withScrapeJob(t, localPrometheusConfig(t, "deploy/compose/prometheus.yml", rules, promAM, exp.addr), job))
	if out, err := exec.Command("promtool", "check", "config", promConfig).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	// Prometheus sends a firing alert again, with its annotations rendered anew, once a
	// minute by default; vmalert at every evaluation.
	startDaemon(t, "prometheus", "prometheus", "--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--rules.alert.resend-delay="+vmTestInterval)

	// The VictoriaMetrics pipeline.
	vmHooks, vmAM := newWebhookLog(t), freeAddr(t)
	startTestAlertmanager(t, dir, "alertmanager-vmalert", vmAM, vmHooks)
	vmAddr, agentAddr, alertAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	startDaemon(t, "victoria-metrics", "victoria-metrics", "-storageDataPath="+filepath.Join(dir, "vm"),
		"-httpListenAddr="+vmAddr, "-retentionPeriod=1d",
		// An instant query within -search.latencyOffset (30s by default) of now is answered
		// as of now less the offset, so each link of the recording-rule chain would wait
		// 30 s: one second is enough on loopback.
		"-search.latencyOffset=1s")
	agentConfig := filepath.Join(dir, "vmagent.yml")
	write(t, agentConfig, marshalYAML(t, map[string]any{
		"global":         map[string]any{"scrape_interval": vmTestInterval, "scrape_timeout": vmTestInterval},
		"scrape_configs": []any{job},
	}))
	if out, err := exec.Command("vmagent", "-promscrape.config.dryRun", "-promscrape.config="+agentConfig).CombinedOutput(); err != nil {
		t.Fatalf("vmagent rejects the sharded scrape config: %v\n%s", err, lastLines(string(out), 5))
	}
	startDaemon(t, "vmagent", "vmagent", "-promscrape.config="+agentConfig, "-httpListenAddr="+agentAddr,
		"-remoteWrite.url=http://"+vmAddr+"/api/v1/write", "-remoteWrite.tmpDataPath="+filepath.Join(dir, "vmagent"),
		"-remoteWrite.flushInterval=1s")
	alertArgs := []string{"-httpListenAddr=" + alertAddr, "-evaluationInterval=" + vmTestInterval,
		"-datasource.url=http://" + vmAddr,
		// The recording rules' results go back into VictoriaMetrics, where the next rule
		// and the alerts read them; remote read restores the alerts' state after a restart.
		"-remoteWrite.url=http://" + vmAddr, "-remoteWrite.flushInterval=1s", "-remoteRead.url=http://" + vmAddr,
		"-notifier.url=http://" + vmAM, "-external.url=http://" + alertAddr}
	for _, f := range ruleFiles {
		alertArgs = append(alertArgs, "-rule="+f)
	}
	startDaemon(t, "vmalert", "vmalert", alertArgs...)

	for _, u := range []string{"http://" + promAddr + "/-/ready", "http://" + promAM + "/-/ready", "http://" + vmAM + "/-/ready",
		"http://" + vmAddr + "/health", "http://" + agentAddr + "/health", "http://" + alertAddr + "/health"} {
		exp.eventually(u, func() bool { return httpOK(u) })
	}
	prom := &promAPI{t: t, base: "http://" + promAddr}
	vm := &promAPI{t: t, base: "http://" + vmAddr}
	started := time.Now()

	// Both scrapers see the N targets of one job, one exporter address, told apart by shard.
	wantUp := []string{}
	for i := 0; i < vmShards; i++ {
		wantUp = append(wantUp, fmt.Sprintf("instance=%s job=certview shard=%d", exp.addr, i))
	}
	for _, s := range []struct {
		name string
		api  *promAPI
	}{{"Prometheus", prom}, {"VictoriaMetrics", vm}} {
		within(exp, 30*time.Second, s.name+" to scrape every shard", func() string {
			var got []string
			for _, r := range s.api.query(`up{job="certview"} == 1`) {
				got = append(got, labelString(r.Metric, "__name__"))
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(wantUp, "\n") {
				return fmt.Sprintf("the targets up are %q, want %q", got, wantUp)
			}
			return ""
		})
	}

	// Prometheus's alerts first: once they hold every kind the demo raises, they are the
	// reference; then the VictoriaMetrics pipeline must catch up to exactly them, labels
	// and annotations.
	wantNames := []string{"CertViewCertificateExpiringSoon", "CertViewCertificateExpiringCritical", "CertViewCertificateExpired",
		"CertViewIssuerExpiringSoon", "CertViewInstanceGradeFailing", "CertViewInstanceGradeBelowB"}
	var promAlerts, vmAlerts []amAlert
	var promReady, vmSame, vmReady time.Duration
	// vmalert's recording rules reach VictoriaMetrics by remote write, so each rule of the
	// chain reads the one before it an evaluation or two later: the expiry alerts, seven
	// rules deep, came about 40 s after Prometheus's here.
	within(exp, 3*time.Minute, "the same alerts in both Alertmanagers", func() string {
		promAlerts = getAlerts(t, "http://"+promAM)
		vmAlerts = getAlerts(t, "http://"+vmAM)
		if missing := missingNames(promAlerts, wantNames); len(missing) > 0 {
			return fmt.Sprintf("Prometheus's Alertmanager lacks %v (it has %s)", missing, alertCounts(promAlerts))
		}
		if promReady == 0 {
			promReady = time.Since(started)
		}
		if diff := alertSetDiff(promAlerts, vmAlerts); diff != "" {
			return fmt.Sprintf("the alerts differ (- Prometheus only, + VictoriaMetrics only):\n%s\nPrometheus: %s\nVictoriaMetrics: %s",
				diff, alertCounts(promAlerts), alertCounts(vmAlerts))
		}
		if vmSame == 0 {
			vmSame = time.Since(started)
		}
		return annotationDiff(promAlerts, vmAlerts)
	})
	vmReady = time.Since(started)

	// The shard labels the alerts carry: none on a certificate's alert (the recording
	// rules leave it out, so a change of shard count raises none again), shard 0's on the
	// fleet-count alerts, where the counts are served.
	for _, a := range vmAlerts {
		want := "0"
		if a.Labels["certhash"] != "" {
			want = ""
		}
		if a.Labels["shard"] != want {
			t.Fatalf("alert %s carries shard %q, want %q", alertKey(a), a.Labels["shard"], want)
		}
	}

	// The same notifications through the same routing tree.
	within(exp, 30*time.Second, "the same notifications from both Alertmanagers", func() string {
		if len(vmHooks.snapshot()) == 0 {
			return "no notification yet"
		}
		return routingDiff(promHooks, vmHooks)
	})

	// Every series the exporter served reached VictoriaMetrics through vmagent, as it
	// reached Prometheus.
	byName := func(api *promAPI) map[string]string {
		out := map[string]string{}
		for _, r := range api.query(`count by (__name__) ({job="certview",__name__=~"qualys_certview_.+"})`) {
			out[r.Metric["__name__"]], _ = r.Value[1].(string)
		}
		return out
	}
	promSeries, vmSeries := byName(prom), byName(vm)
	var seriesDiff []string
	for name, n := range promSeries {
		if vmSeries[name] != n {
			seriesDiff = append(seriesDiff, fmt.Sprintf("%s: Prometheus %s, VictoriaMetrics %q", name, n, vmSeries[name]))
		}
	}
	for name, n := range vmSeries {
		if _, ok := promSeries[name]; !ok {
			seriesDiff = append(seriesDiff, fmt.Sprintf("%s: Prometheus none, VictoriaMetrics %s", name, n))
		}
	}
	if len(seriesDiff) > 0 {
		sort.Strings(seriesDiff)
		t.Fatalf("the exporter's series differ between the stores:\n%s", strings.Join(seriesDiff, "\n"))
	}

	total := `count({job="certview",__name__=~"qualys_certview_.+"})`
	recorded := `count({__name__=~"certview:.+"})`
	t.Logf("alerts in both Alertmanagers (%d each): %s", len(vmAlerts), alertCounts(vmAlerts))
	t.Logf("after the start of the scrapers: every alert kind in Prometheus's Alertmanager after %s; the same alerts in vmalert's "+
		"after %s, with the same annotations after %s", promReady.Round(100*time.Millisecond), vmSame.Round(100*time.Millisecond),
		vmReady.Round(100*time.Millisecond))
	t.Logf("exporter series stored: Prometheus %.0f, VictoriaMetrics %.0f (%d families); recorded series: Prometheus %.0f, "+
		"VictoriaMetrics %.0f; certificates notified: %d", prom.scalar(total), vm.scalar(total), len(vmSeries),
		prom.scalar(recorded), vm.scalar(recorded), len(vmHooks.snapshot()))
	var shards []string
	for _, r := range vm.query(`scrape_samples_scraped{job="certview"}`) {
		shards = append(shards, fmt.Sprintf("shard %s: %v", r.Metric["shard"], r.Value[1]))
	}
	sort.Strings(shards)
	t.Logf("samples per scrape (vmagent): %s", strings.Join(shards, ", "))
}

// within polls check until it returns "" or d passes, and then fails the test with what
// check last returned.
func within(exp *exporterProc, d time.Duration, what string, check func() string) {
	exp.t.Helper()
	deadline := time.Now().Add(d)
	for {
		why := check()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			exp.t.Fatalf("timed out after %s waiting for %s: %s", d, what, why)
		}
		select {
		case <-exp.exited:
			exp.t.Fatalf("the exporter exited (%v) while waiting for %s", exp.waitErr, what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// shardedScrapeJob is the README's scrape job for a sharded exporter: one job, a target
// per shard, the exporter's address as instance and a shard label.
func shardedScrapeJob(addr string, shards int) map[string]any {
	targets := make([]any, shards)
	for i := range targets {
		targets[i] = strconv.Itoa(i)
	}
	return map[string]any{
		"job_name":        "certview",
		"scrape_interval": vmTestInterval,
		"scrape_timeout":  vmTestInterval,
		"params":          map[string]any{"shards": []any{strconv.Itoa(shards)}},
		"static_configs":  []any{map[string]any{"targets": targets}},
		"relabel_configs": []any{
			map[string]any{"source_labels": []any{"__address__"}, "target_label": "__param_shard"},
			map[string]any{"source_labels": []any{"__address__"}, "target_label": "shard"},
			map[string]any{"target_label": "__address__", "replacement": addr},
			map[string]any{"target_label": "instance", "replacement": addr},
		},
	}
}

// withScrapeJob replaces the one scrape job of a Prometheus config, and sets the global
// intervals to the test's.
func withScrapeJob(t *testing.T, config string, job map[string]any) string {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(config), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": vmTestInterval, "evaluation_interval": vmTestInterval}
	if scrapes := cfg["scrape_configs"].([]any); len(scrapes) != 1 || scrapes[0].(map[string]any)["job_name"] != job["job_name"] {
		t.Fatalf("the Prometheus config's scrape jobs are %v, the test knows one named %v", scrapes, job["job_name"])
	}
	cfg["scrape_configs"] = []any{job}
	return marshalYAML(t, cfg)
}

func marshalYAML(t *testing.T, v any) string {
	t.Helper()
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// startTestAlertmanager runs an Alertmanager on addr with the example routing tree, its
// webhooks pointed at hooks.
func startTestAlertmanager(t *testing.T, dir, name, addr string, hooks *webhookLog) {
	t.Helper()
	config := filepath.Join(dir, name+".yml")
	write(t, config, localAlertmanagerConfig(t, "deploy/alertmanager/alertmanager.yml", hooks.url))
	startDaemon(t, name, "prometheus-alertmanager", "--config.file="+config, "--storage.path="+filepath.Join(dir, name),
		"--web.listen-address="+addr, "--cluster.listen-address=")
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// labelString is a label set as sorted name=value pairs, without the names skipped.
func labelString(labels map[string]string, skip ...string) string {
	var pairs []string
	for k, v := range labels {
		if !contains(skip, k) {
			pairs = append(pairs, k+"="+v)
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, " ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// alertKey identifies an alert by its labels, less the alertgroup label vmalert adds (the
// rule group's name; -disableAlertgroupLabel drops it).
func alertKey(a amAlert) string {
	return "{" + labelString(a.Labels, "alertgroup") + "}"
}

// alertSetDiff lists the alerts only one side holds, "-" for want's and "+" for got's.
func alertSetDiff(want, got []amAlert) string {
	in := func(alerts []amAlert) map[string]bool {
		m := map[string]bool{}
		for _, a := range alerts {
			m[alertKey(a)] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var lines []string
	for k := range w {
		if !g[k] {
			lines = append(lines, "- "+k)
		}
	}
	for k := range g {
		if !w[k] {
			lines = append(lines, "+ "+k)
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i][2:] < lines[j][2:] })
	return strings.Join(lines, "\n")
}

// annotationDiff compares the annotations of the alerts both sides hold, as the two
// engines render them (templates that query included): the same but for the days left
// (two evaluations seconds apart may round them apart) and which instances a grade alert
// names (topk among equal ranks picks any of them; each engine picks its own), of which
// only how many counts.
func annotationDiff(want, got []amAlert) string {
	byKey := map[string]amAlert{}
	for _, a := range got {
		byKey[alertKey(a)] = a
	}
	var diffs []string
	for _, w := range want {
		g := byKey[alertKey(w)]
		for name, text := range w.Annotations {
			if x, y := normalizeAnnotation(text), normalizeAnnotation(g.Annotations[name]); x != y {
				diffs = append(diffs, fmt.Sprintf("%s %s:\n  Prometheus:      %s\n  VictoriaMetrics: %s", alertKey(w), name, x, y))
			}
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	sort.Strings(diffs)
	return fmt.Sprintf("%d annotations differ:\n%s", len(diffs), strings.Join(diffs, "\n"))
}

// alertCounts is the alerts counted by name, as "name=count" sorted.
func alertCounts(alerts []amAlert) string {
	n := map[string]int{}
	for _, a := range alerts {
		n[a.Labels["alertname"]]++
	}
	var out []string
	for name, c := range n {
		out = append(out, fmt.Sprintf("%s=%d", name, c))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func missingNames(alerts []amAlert, names []string) []string {
	seen := map[string]bool{}
	for _, a := range alerts {
		seen[a.Labels["alertname"]] = true
	}
	var missing []string
	for _, n := range names {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	return missing
}

var (
	daysLeft      = regexp.MustCompile(`-?\d+(\.\d+)? days`)
	gradeExamples = regexp.MustCompile(`among them (.*?)\. The overview`)
)

// normalizeAnnotation masks what may differ between two correct evaluations: the days
// left, and which instances a grade alert names (only how many stays).
func normalizeAnnotation(s string) string {
	s = daysLeft.ReplaceAllString(s, "N days")
	return gradeExamples.ReplaceAllStringFunc(s, func(m string) string {
		list := gradeExamples.FindStringSubmatch(m)[1]
		n := 0
		if list != "" {
			n = strings.Count(list, "), ") + 1
		}
		return fmt.Sprintf("among them <%d instances>. The overview", n)
	})
}

// snapshot copies the log: certhash -> sorted receivers.
func (l *webhookLog) snapshot() map[string]string {
	l.mu.Lock()
	hashes := make([]string, 0, len(l.got))
	for h := range l.got {
		hashes = append(hashes, h)
	}
	l.mu.Unlock()
	out := map[string]string{}
	for _, h := range hashes {
		out[h] = strings.Join(l.receiversOf(h), ",")
	}
	return out
}

// routingDiff lists the certificates whose alerts reached other receivers on one side.
func routingDiff(want, got *webhookLog) string {
	w, g := want.snapshot(), got.snapshot()
	var lines []string
	for h, r := range w {
		if g[h] != r {
			lines = append(lines, fmt.Sprintf("certhash %q: Prometheus's to %s, vmalert's to %s", h, r, g[h]))
		}
	}
	for h, r := range g {
		if _, ok := w[h]; !ok {
			lines = append(lines, fmt.Sprintf("certhash %q: vmalert's to %s, Prometheus's nowhere", h, r))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// lastLines is the end of a command's output.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
