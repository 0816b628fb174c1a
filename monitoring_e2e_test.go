//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"gopkg.in/yaml.v3"
)

// The demo inventory under the monitoring stack (seed 1, the default).
const demoCertificates, demoInstances = 200, 500

// TestMonitoringStack runs the exporter in demo mode under a real Prometheus, loaded with
// the shipped rules, and a real Alertmanager. It checks that every dashboard query
// returns data and that the expected alerts reach Alertmanager with the right labels.
func TestMonitoringStack(t *testing.T) {
	for _, bin := range []string{"prometheus", "prometheus-alertmanager", "promtool"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is missing: `make e2e` installs Debian's prometheus and prometheus-alertmanager", bin)
		}
	}
	root, _ := os.Getwd()
	rules := filepath.Join(root, "deploy", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(rules, "rules.yml"), filepath.Join(rules, "alerts.yml")},
		{"test", "rules", filepath.Join(rules, "alerts_test.yml")},
	} {
		if out, err := exec.Command("promtool", args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	exp := startExporter(t, nil, "--demo", fmt.Sprintf("--demo.certificates=%d", demoCertificates),
		fmt.Sprintf("--demo.instances=%d", demoInstances), "--demo.interval=10s")
	exp.eventually("exporter readiness", func() bool { code, _ := exp.get("/-/ready"); return code == 200 })

	dir := t.TempDir()
	amAddr, promAddr := freeAddr(t), freeAddr(t)
	// The example routing tree (deploy/alertmanager) with its webhooks pointed at local
	// receivers, and the compose stack's Prometheus config, with only the addresses, the
	// rule paths and the intervals changed for this machine.
	hooks := newWebhookLog(t)
	amConfig := filepath.Join(dir, "alertmanager.yml")
	write(t, amConfig, localAlertmanagerConfig(t, "deploy/alertmanager/alertmanager.yml", hooks.url))
	for _, f := range []string{"deploy/alertmanager/alertmanager.yml", "deploy/compose/alertmanager.yml", amConfig} {
		if out, err := exec.Command("amtool", "check-config", f).CombinedOutput(); err != nil {
			t.Fatalf("amtool check-config %s: %v\n%s", f, err, out)
		}
	}
	// The compose stack's routes by renewal state.
	for labels, receiver := range map[string]string{
		"alertname=CertViewCertificateExpiringSoon renewal_state=renewed_not_deployed severity=warning":      "deploy",
		"alertname=CertViewCertificateExpiringCritical renewal_state=renewed_not_deployed severity=critical": "default",
		"alertname=CertViewCertificateExpiringSoon renewal_state=not_renewed severity=warning":               "default",
		"alertname=CertViewIssuerExpiringSoon renewal_state=not_renewed severity=warning":                    "pki",
	} {
		args := append([]string{"config", "routes", "test", "--config.file=deploy/compose/alertmanager.yml"}, strings.Fields(labels)...)
		out, err := exec.Command("amtool", args...).Output() // stdout: the receiver; stderr: a warning
		if got := strings.TrimSpace(string(out)); err != nil || got != receiver {
			t.Errorf("deploy/compose/alertmanager.yml routes {%s} to %q (%v), want %s", labels, got, err, receiver)
		}
	}
	startDaemon(t, "alertmanager", "prometheus-alertmanager", "--config.file="+amConfig, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	promConfig := filepath.Join(dir, "prometheus.yml")
	write(t, promConfig, localPrometheusConfig(t, "deploy/compose/prometheus.yml", rulesEvery(t, rules, "1s"), amAddr, exp.addr))
	if out, err := exec.Command("promtool", "check", "config", promConfig).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	startDaemon(t, "prometheus", "prometheus", "--config.file="+promConfig, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)

	prom := &promAPI{t: t, base: "http://" + promAddr}
	for _, base := range []string{"http://" + promAddr, "http://" + amAddr} {
		exp.eventually(base+"/-/ready", func() bool {
			resp, err := http.Get(base + "/-/ready")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	exp.eventually("Prometheus to scrape the exporter", func() bool { return len(prom.query("qualys_certview_up == 1")) == 1 })
	// A few more scrapes, so that rate() and increase() have samples to work on.
	start := time.Now()
	exp.eventually("ten seconds of samples", func() bool {
		return time.Since(start) > 10*time.Second && len(prom.query(`count_over_time(qualys_certview_up[1m]) > 8`)) == 1
	})

	checkDashboards(t, prom)

	// The certificate alerts: exactly the certificates that need action, per owner and
	// with their renewal state, as decideExpiry rules from the exporter's own series; and
	// the renewal families as the simulator built them.
	cases := (&certviewtest.Inventory{Seed: 1, Certificates: demoCertificates, Instances: demoInstances,
		VendorSamples: true, RenewalFamilies: true}).RenewalCases()
	var verdict expiryVerdict
	var alerts []amAlert
	// Alerts fire once Prometheus has scraped and evaluated; churn (an instance removed
	// every poll) may move a certificate in or out between the scrape and the alerts.
	var diff string
	for deadline := time.Now().Add(30 * time.Second); ; {
		verdict = decideExpiry(exp.scrape())
		alerts = getAlerts(t, "http://"+amAddr)
		if diff = decisionDiff(verdict.want, firedDecisions(alerts)); diff == "" {
			// One alert per decision: two that differ only in labels the decision does not
			// hold (a name, an issuer) would fold into one above.
			if n := countCertificateAlerts(alerts); n != len(verdict.want) {
				t.Fatalf("%d certificate alerts in Alertmanager for %d decisions", n, len(verdict.want))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the certificate alerts in Alertmanager differ from the decisions:\n%s", diff)
		}
		select {
		case <-exp.exited:
			t.Fatalf("the exporter exited (%v) while waiting for the certificate alerts", exp.waitErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
	checkRenewalFamilies(t, cases, alerts)

	// The grade alerts: one per grade and owner.
	failing := prom.scalar(`count(qualys_certview_owner_instances{grade=~"F|T|M"} > 0)`)
	belowB := prom.scalar(`count(qualys_certview_owner_instances{grade=~"C|D|E"} > 0)`)
	want := map[string]int{"CertViewInstanceGradeFailing": int(failing), "CertViewInstanceGradeBelowB": int(belowB)}
	for name, n := range want {
		if n == 0 {
			t.Fatalf("the demo inventory raises no %s", name)
		}
	}
	// A grade alert's examples come from a rule evaluated just before it in its group: a
	// scrape committed between the two (a churned instance changing grade) can raise a
	// count whose examples the rule did not see yet. The next evaluation names them, so
	// the wait lasts until every grade alert's description has its examples.
	exp.eventually("the grade alerts in Alertmanager, with their examples", func() bool {
		alerts = getAlerts(t, "http://"+amAddr)
		got := map[string]int{}
		for _, a := range alerts {
			got[a.Labels["alertname"]]++
			if a.Labels["grade"] != "" && strings.Contains(a.Annotations["description"], "among them .") {
				return false
			}
		}
		for name, n := range want {
			if got[name] != n {
				return false
			}
		}
		return true
	})
	seen := map[string]int{}
	for _, a := range alerts {
		name := a.Labels["alertname"]
		seen[name]++
		if a.Labels["job"] != "certview" || a.Labels["severity"] == "" || a.Annotations["summary"] == "" ||
			a.Annotations["description"] == "" || !strings.HasPrefix(a.Annotations["runbook_url"], "https://") {
			t.Fatalf("alert %s lacks labels or annotations: %+v", name, a)
		}
		switch name {
		case "CertViewCertificateExpired", "CertViewCertificateExpiringCritical", "CertViewCertificateExpiringSoon",
			"CertViewIssuerExpiringSoon", "CertViewIssuerExpiringCritical":
			if a.Labels["certhash"] == "" || a.Labels["common_name"] == "" || a.Labels["issuer"] == "" || a.Labels["renewal_state"] == "" {
				t.Fatalf("%s without certhash, common_name, issuer or renewal_state: %v", name, a.Labels)
			}
			if !strings.Contains(a.Annotations["description"], "Dashboard: /d/certview-certificate?var-certhash="+a.Labels["certhash"]) {
				t.Fatalf("%s does not link the certificate's dashboard: %s", name, a.Annotations["description"])
			}
			wantSeverity := "critical"
			if strings.HasSuffix(name, "ExpiringSoon") {
				wantSeverity = "warning"
			}
			if a.Labels["severity"] != wantSeverity {
				t.Fatalf("%s severity %q", name, a.Labels["severity"])
			}
		case "CertViewInstanceGradeFailing", "CertViewInstanceGradeBelowB":
			if a.Labels["grade"] == "" || !strings.Contains(a.Annotations["description"], "among them ") ||
				strings.Contains(a.Annotations["description"], "among them .") {
				t.Fatalf("%s without its grade or examples: %v %s", name, a.Labels, a.Annotations["description"])
			}
		}
	}
	checkRouting(t, exp, prom, hooks)
	names := make([]string, 0, len(seen))
	for n, c := range seen {
		names = append(names, fmt.Sprintf("%s=%d", n, c))
	}
	sort.Strings(names)
	t.Logf("alerts in Alertmanager: %s", strings.Join(names, " "))
	// The figures README's "Expiry alerts" quotes.
	t.Logf("expiry decisions at %d/%d (demo, owners on): %d certificates need action, raising %d alerts (one per owner); "+
		"a plain 30-day rule fires for %d certificates (every one within 30 days), %d served ones",
		demoCertificates, demoInstances, verdict.certificates, len(verdict.want), verdict.plainAll, verdict.plainServed)
}

// checkRouting proves the example routing tree: the alerts of a certificate owned only by
// Payments in Production reach only the payments paging receiver, and those of a
// certificate no team owns only the default receiver. A certificate's owners are the
// owner labels of the instances serving it (qualys_certview_instance_info without the
// labels that tell instances apart).
func checkRouting(t *testing.T, exp *exporterProc, prom *promAPI, hooks *webhookLog) {
	t.Helper()
	const owners = "group without (instance_id, asset_id, asset_name, ip, port, protocol, service, fqdn) (qualys_certview_instance_info)"
	only := func(owner string) string {
		q := "qualys_certview_instance_info{" + owner + "}" +
			" and on (job, instance, certhash) (count by (job, instance, certhash) (" + owners + ") == 1)" +
			" and on (job, instance, certhash) (qualys_certview_certificate_expiry_days < 30)" +
			" and on (job, instance, certhash) (qualys_certview_certificate_instances > 0)"
		res := prom.query(q)
		if len(res) == 0 {
			t.Fatalf("the demo inventory has no expiring certificate owned only by {%s}", owner)
		}
		return res[0].Metric["certhash"]
	}
	cases := map[string]string{
		only(`team="Payments",environment="Production"`): "payments-page",
		only(`team=""`): "default",
	}
	exp.eventually("the routed notifications", func() bool {
		for certhash, receiver := range cases {
			if len(hooks.receiversOf(certhash)) == 0 || hooks.receiversOf(certhash)[0] != receiver {
				return false
			}
		}
		return true
	})
	for certhash, receiver := range cases {
		if got := hooks.receiversOf(certhash); len(got) != 1 || got[0] != receiver {
			t.Fatalf("the alerts of certificate %s reached %v, want only %s", certhash, got, receiver)
		}
	}
	t.Logf("routing: %v (certhash -> receiver)", cases)
}

// webhookLog is the receivers of the routing tree: one local webhook server that notes,
// by the receiver its path names, the alerts Alertmanager sends.
type webhookLog struct {
	url string
	mu  sync.Mutex
	got map[string]map[string]bool // certhash -> receivers
}

func newWebhookLog(t *testing.T) *webhookLog {
	l := &webhookLog{got: map[string]map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Receiver string    `json:"receiver"`
			Alerts   []amAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil || "/"+msg.Receiver != r.URL.Path {
			t.Errorf("webhook %s: receiver %q, %v", r.URL.Path, msg.Receiver, err)
		}
		l.mu.Lock()
		for _, a := range msg.Alerts {
			h := a.Labels["certhash"]
			if l.got[h] == nil {
				l.got[h] = map[string]bool{}
			}
			l.got[h][msg.Receiver] = true
		}
		l.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	l.url = srv.URL
	return l
}

// receiversOf lists, sorted, the receivers that got an alert of the certificate.
func (l *webhookLog) receiversOf(certhash string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for r := range l.got[certhash] {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// localAlertmanagerConfig rewrites the example routing tree for this test: every
// webhook goes to base/<receiver>, and groups are sent after a second, not 30.
func localAlertmanagerConfig(t *testing.T, path, base string) string {
	return rewriteYAML(t, path, func(cfg map[string]any) {
		route := cfg["route"].(map[string]any)
		route["group_wait"], route["group_interval"] = "1s", "1s"
		for _, r := range cfg["receivers"].([]any) {
			rec := r.(map[string]any)
			for _, h := range rec["webhook_configs"].([]any) {
				h.(map[string]any)["url"] = base + "/" + rec["name"].(string)
			}
		}
	})
}

// rewriteYAML reads a YAML file, lets edit change it, and returns it written again.
func rewriteYAML(t *testing.T, path string, edit func(map[string]any)) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	edit(cfg)
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// rulesEvery writes the shipped rule files into a new directory with every group evaluated
// at interval: groups that set their own (2m in production) would otherwise keep a test
// waiting minutes for the alerts.
func rulesEvery(t *testing.T, rulesDir, interval string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"rules.yml", "alerts.yml"} {
		write(t, filepath.Join(dir, name), rewriteYAML(t, filepath.Join(rulesDir, name), func(cfg map[string]any) {
			for _, g := range cfg["groups"].([]any) {
				g.(map[string]any)["interval"] = interval
			}
		}))
	}
	return dir
}

// localPrometheusConfig rewrites the compose stack's prometheus.yml for this machine:
// loopback addresses, the repository's rule files, one-second intervals.
func localPrometheusConfig(t *testing.T, path, rulesDir, amAddr, exporterAddr string) string {
	return rewriteYAML(t, path, func(cfg map[string]any) {
		cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
		var ruleFiles []any
		for _, f := range cfg["rule_files"].([]any) {
			ruleFiles = append(ruleFiles, filepath.Join(rulesDir, filepath.Base(f.(string))))
		}
		cfg["rule_files"] = ruleFiles
		am := cfg["alerting"].(map[string]any)["alertmanagers"].([]any)[0].(map[string]any)
		am["static_configs"] = []any{map[string]any{"targets": []any{amAddr}}}
		scrapes := cfg["scrape_configs"].([]any)
		if len(scrapes) != 1 {
			t.Fatalf("%s: %d scrape configs, the rewrite knows one", path, len(scrapes))
		}
		job := scrapes[0].(map[string]any)
		job["scrape_interval"], job["scrape_timeout"] = "1s", "1s"
		job["static_configs"] = []any{map[string]any{"targets": []any{exporterAddr}}}
	})
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDaemon runs a helper process until the test ends.
func startDaemon(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs.String())
		}
	})
}

type promAPI struct {
	t    *testing.T
	base string
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (p *promAPI) get(path string, params url.Values, out any) error {
	resp, err := http.Get(p.base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: %v: %s", path, err, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s %v: %s", path, params, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// query runs an instant query; a query error fails the test.
func (p *promAPI) query(q string) []promSample {
	p.t.Helper()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		p.t.Fatalf("query %s: %v", q, err)
	}
	if data.ResultType == "scalar" {
		var v [2]any
		_ = json.Unmarshal(data.Result, &v)
		return []promSample{{Value: v}}
	}
	var out []promSample
	_ = json.Unmarshal(data.Result, &out)
	return out
}

func (p *promAPI) scalar(q string) float64 {
	p.t.Helper()
	r := p.query(q)
	if len(r) != 1 {
		p.t.Fatalf("%s: %d results", q, len(r))
	}
	s, _ := r[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		p.t.Fatalf("%s: value %q: %v", q, s, err)
	}
	return v
}

var (
	labelValues = regexp.MustCompile(`^label_values\((.*),\s*(\w+)\)$`)
	queryResult = regexp.MustCompile(`^query_result\((.*)\)$`)
	// $name, ${name} and ${name:format}.
	variableRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)
)

// checkDashboards runs every query of every dashboard (panels and variables) against
// Prometheus, with the variables set as a user would pick them, and wants data back.
func checkDashboards(t *testing.T, prom *promAPI) {
	t.Helper()
	// A certificate that is both listed and served (the vendor's sample instances point
	// at a certificate outside the listing, as real data can).
	hashes := prom.query("count by (certhash) (qualys_certview_instance_info) and on (certhash) qualys_certview_certificate_info")
	if len(hashes) == 0 {
		t.Fatal("no instance_info to pick a certificate from")
	}
	var worst []string
	for _, s := range prom.query("count by (grade) (bottomk(50, qualys_certview_instance_grade_rank > 0))") {
		worst = append(worst, regexp.QuoteMeta(s.Metric["grade"]))
	}
	vars := map[string]string{
		"job": ".+", "instance": ".+", "common_name": ".*", "team": "Payments",
		"certhash":        hashes[0].Metric["certhash"],
		"worst_grades":    "(" + strings.Join(worst, "|") + ")",
		"__rate_interval": "1m", "__interval": "15s", "__range": "1h",
	}
	subst := func(q string) string {
		return variableRef.ReplaceAllStringFunc(q, func(m string) string {
			sm := variableRef.FindStringSubmatch(m)
			name := sm[1] + sm[2]
			if v, ok := vars[name]; ok {
				return v
			}
			t.Fatalf("query %q uses an unknown variable %s", q, m)
			return m
		})
	}
	files, _ := filepath.Glob("dashboards/*.json")
	if len(files) != 2 {
		t.Fatalf("dashboards: %v", files)
	}
	// qualys_certview_instance_score is opt-in (metrics.instance_score_categories, off in
	// the demo): without it, a query reading it must still be valid, and may be empty.
	scores := len(prom.query("count(qualys_certview_instance_score)")) > 0
	checked := 0
	for _, file := range files {
		d := readDashboard(t, file)
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			var query struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &query); err != nil {
				t.Fatalf("%s: variable %s: %v", file, v.Name, err)
			}
			if m := queryResult.FindStringSubmatch(query.Query); m != nil {
				if r := prom.query(subst(m[1])); len(r) == 0 {
					t.Fatalf("%s: variable %s (%s) has no values", file, v.Name, query.Query)
				}
				checked++
				continue
			}
			m := labelValues.FindStringSubmatch(query.Query)
			if m == nil {
				t.Fatalf("%s: variable %s: unexpected query %q", file, v.Name, query.Query)
			}
			var values []string
			if err := prom.get("/api/v1/label/"+m[2]+"/values", url.Values{"match[]": {subst(m[1])}}, &values); err != nil || len(values) == 0 {
				t.Fatalf("%s: variable %s (%s) has no values: %v", file, v.Name, query.Query, err)
			}
			checked++
		}
		for _, p := range d.Panels {
			for _, target := range p.Targets {
				if target.Expr == "" {
					continue
				}
				if r := prom.query(subst(target.Expr)); len(r) == 0 &&
					(scores || !strings.Contains(target.Expr, "qualys_certview_instance_score")) {
					t.Fatalf("%s: panel %q returns no data: %s", file, p.Title, subst(target.Expr))
				}
				checked++
			}
		}
	}
	t.Logf("dashboard queries checked: %d", checked)
}

// dashboardFile is what the tests read of a Grafana dashboard.
type dashboardFile struct {
	Time struct {
		From string `json:"from"`
	} `json:"time"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			RefID   string `json:"refId"`
			Expr    string `json:"expr"`
			Instant bool   `json:"instant"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T, file string) *dashboardFile {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d := &dashboardFile{}
	if err := json.Unmarshal(raw, d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return d
}

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func getAlerts(t *testing.T, base string) []amAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts?active=true")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var alerts []amAlert
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		t.Fatalf("alertmanager: %v", err)
	}
	return alerts
}
