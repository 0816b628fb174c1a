package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// binary is the exporter built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "certview-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "certview_exporter")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the exporter:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lockedBuffer collects the child's log output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// exporterProc is a running exporter binary.
type exporterProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	logs *lockedBuffer
	// exited is closed when the process ends; waitErr then holds how.
	exited  chan struct{}
	waitErr error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// peakRSSOf is a process's peak resident memory (VmHWM), in kB.
func peakRSSOf(t *testing.T, pid int) float64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

func startExporter(t *testing.T, env []string, args ...string) *exporterProc {
	t.Helper()
	return startExporterUnder(t, nil, env, args...)
}

// startExporterUnder starts the exporter under a command that execs it (prlimit, say).
func startExporterUnder(t *testing.T, under []string, env []string, args ...string) *exporterProc {
	t.Helper()
	p := &exporterProc{t: t, addr: freeAddr(t), logs: &lockedBuffer{}, exited: make(chan struct{})}
	base := []string{"--web.listen-address=" + p.addr}
	if !strings.Contains(strings.Join(args, " "), "--log.level") {
		base = append(base, "--log.level=debug")
	}
	argv := append(append(append([]string(nil), under...), binary), append(base, args...)...)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if p.waitErr != nil && !t.Failed() && p.cmd.ProcessState != nil && p.cmd.ProcessState.ExitCode() > 0 {
			t.Errorf("the exporter exited with %v", p.waitErr)
		}
		if t.Failed() {
			t.Logf("exporter log:\n%s", p.logs.String())
		}
	})
	return p
}

func (p *exporterProc) get(path string) (int, string) {
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually polls cond until it holds; the child process has no other way to tell us.
func (p *exporterProc) eventually(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-p.exited:
			p.t.Fatalf("the exporter exited (%v) while waiting for %s", p.waitErr, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// terminate sends SIGTERM and wants the exporter to exit with status 0 within limit (a
// bound on a test that would otherwise hang, not a wait for the exporter).
func (p *exporterProc) terminate(limit time.Duration) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			p.t.Fatalf("exit after SIGTERM: %v", p.waitErr)
		}
	case <-time.After(limit):
		p.t.Fatalf("no exit within %s of SIGTERM", limit)
	}
}

// scrape parses /metrics.
func (p *exporterProc) scrape() map[string]*dto.MetricFamily {
	p.t.Helper()
	code, body := p.get("/metrics")
	if code != 200 {
		p.t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	return mfs
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// sample returns the value of the series of family name with the given labels, or NaN.
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	for _, m := range mfs[name].GetMetric() {
		l := labels(m)
		match := true
		for k, v := range want {
			if l[k] != v {
				match = false
			}
		}
		if match {
			return value(m)
		}
	}
	return math.NaN()
}

func orZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// appendFile adds text to the end of the file at path.
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeConfig(t *testing.T, url string, interval string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	cfg := fmt.Sprintf(`qualys:
  api_url: %s
  username: demo
  max_retries: 1
poll:
  interval: %s
  timeout: 30s
rate_limit:
  calls: 100000
  window: 1h
`, url, interval)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEndToEnd runs the binary against the simulator and checks every contract metric
// against the simulator's inventory, then a token expiring between polls, a 429 with
// ToWait-Sec, and a failed poll that keeps the previous snapshot.
func TestEndToEnd(t *testing.T) {
	now := time.Now()
	inv := certviewtest.Inventory{Seed: 11, Certificates: 450, Instances: 1200, VendorSamples: true, Now: now}
	srv := certviewtest.NewServer(certviewtest.Options{Inventory: inv, RateLimit: 100000, Concurrency: 4})
	defer srv.Close()
	// With the opt-in category scores, which checkInventory compares too.
	config := writeConfig(t, srv.URL, "1s")
	if err := appendFile(config, "metrics:\n  instance_score_categories: true\n"); err != nil {
		t.Fatal(err)
	}
	p := startExporter(t, []string{"QUALYS_PASSWORD=demo-password"}, "--config.file="+config)

	p.eventually("/-/healthy", func() bool { code, _ := p.get("/-/healthy"); return code == 200 })
	p.eventually("readiness", func() bool { code, _ := p.get("/-/ready"); return code == 200 })
	mfs := p.scrape()
	scrapedAt := time.Now()
	checkInventory(t, mfs, srv.Sim.Inventory(), scrapedAt)

	// A landing page at /.
	if code, body := p.get("/"); code != 200 || !strings.Contains(body, "/metrics") {
		t.Fatalf("landing page: %d", code)
	}

	successes := func(mfs map[string]*dto.MetricFamily) float64 {
		return sample(mfs, "qualys_certview_polls_total", map[string]string{"result": "success"})
	}

	// The token expires between polls: the next poll draws a 401, renews once and succeeds.
	srv.Sim.ExpireTokens()
	issued := srv.Sim.TokensIssued()
	base := successes(p.scrape())
	p.eventually("a poll after the token expired", func() bool { return successes(p.scrape()) >= base+1 && srv.Sim.TokensIssued() > issued })
	mfs = p.scrape()
	// Whichever listing was first to use the expired token drew the 401.
	if got := orZero(sample(mfs, "qualys_certview_api_requests_total", map[string]string{"endpoint": "certificates", "code": "401"})) +
		orZero(sample(mfs, "qualys_certview_api_requests_total", map[string]string{"endpoint": "instances", "code": "401"})); got < 1 {
		t.Fatalf("no 401 counted after the token expired (%v)", got)
	}
	if sample(mfs, "qualys_certview_up", nil) != 1 {
		t.Fatal("up is not 1 after the renewal")
	}

	// A 429 carrying ToWait-Sec: the poll waits it out and succeeds.
	srv.Sim.Inject(certviewtest.Fault{Endpoint: "certificates", Page: 0, Kind: certviewtest.FaultStatus, Status: 429,
		Header: map[string]string{"X-RateLimit-ToWait-Sec": "1", "X-RateLimit-Remaining": "0"}})
	p.eventually("the 429 to be waited out", func() bool {
		mfs := p.scrape()
		return sample(mfs, "qualys_certview_api_requests_total", map[string]string{"endpoint": "certificates", "code": "429"}) == 1 &&
			sample(mfs, "qualys_certview_api_wait_seconds_total", map[string]string{"endpoint": "certificates", "reason": "throttled"}) >= 1 &&
			sample(mfs, "qualys_certview_up", nil) == 1 && successes(mfs) >= base+2
	})

	// Failed polls (incremental: poll.full_interval is 24h by default) keep the previous
	// snapshot, set up to 0 and say why; once the API answers again, the next recovers.
	// The 403 lasts until the test has seen it: one failed poll is up 0 for a single
	// interval (1s), which a scrape on a loaded machine can miss.
	before := p.scrape()
	srv.Sim.Inject(certviewtest.Fault{Endpoint: "instances", Page: 0, Kind: certviewtest.FaultStatus, Status: 403, Body: "forbidden",
		Times: certviewtest.Always})
	var failed map[string]*dto.MetricFamily
	p.eventually("a scrape showing the failed poll", func() bool {
		failed = p.scrape()
		return sample(failed, "qualys_certview_up", nil) == 0 &&
			sample(failed, "qualys_certview_poll_failures_total", map[string]string{"reason": "http_4xx"}) >= 1
	})
	srv.Sim.ClearFaults()
	for _, name := range []string{"qualys_certview_certificate_info", "qualys_certview_instance_grade_rank", "qualys_certview_certificate_not_after_timestamp_seconds"} {
		if len(failed[name].GetMetric()) != len(before[name].GetMetric()) {
			t.Fatalf("%s: %d series after the failed poll, %d before", name, len(failed[name].GetMetric()), len(before[name].GetMetric()))
		}
	}
	if !strings.Contains(p.logs.String(), `msg="poll failed; keeping the previous snapshot" kind=incremental reason=http_4xx`) {
		t.Fatal("no log line for the failed poll")
	}
	p.eventually("recovery", func() bool { return sample(p.scrape(), "qualys_certview_up", nil) == 1 })

	// promtool lints the exposition.
	promtoolCheck(t, p)

	// SIGTERM: a graceful shutdown and exit status 0.
	p.terminate(15 * time.Second)
	if !strings.Contains(p.logs.String(), "msg=stopped") {
		t.Fatal("no shutdown log")
	}
}

// checkInventory compares every contract metric with the simulator's records.
func checkInventory(t *testing.T, mfs map[string]*dto.MetricFamily, inv *certviewtest.Inventory, scrapedAt time.Time) {
	t.Helper()
	nc, ni := inv.CertificateCount(), inv.InstanceCount()
	if got := sample(mfs, "qualys_certview_certificates", nil); got != float64(nc) {
		t.Fatalf("certificates = %v, want %d", got, nc)
	}
	byHash := map[string]map[string]*dto.Metric{}
	for _, fam := range []string{"qualys_certview_certificate_not_after_timestamp_seconds", "qualys_certview_certificate_not_before_timestamp_seconds",
		"qualys_certview_certificate_expiry_days", "qualys_certview_certificate_info"} {
		if n := len(mfs[fam].GetMetric()); n != nc {
			t.Fatalf("%s: %d series, want %d", fam, n, nc)
		}
		for _, m := range mfs[fam].GetMetric() {
			h := labels(m)["certhash"]
			if byHash[h] == nil {
				byHash[h] = map[string]*dto.Metric{}
			}
			byHash[h][fam] = m
		}
	}
	var expired, selfSigned, weakKey, weakSig int
	for k := 0; k < nc; k++ {
		c := inv.Certificate(k)
		ms := byHash[c.CertHash]
		if ms == nil {
			t.Fatalf("certificate %s missing", c.CertHash)
		}
		if got := value(ms["qualys_certview_certificate_not_after_timestamp_seconds"]); got != float64(c.ValidTo)/1000 {
			t.Fatalf("%s not_after %v, want %v", c.CertHash, got, float64(c.ValidTo)/1000)
		}
		if got := value(ms["qualys_certview_certificate_not_before_timestamp_seconds"]); got != float64(c.ValidFrom)/1000 {
			t.Fatalf("%s not_before %v", c.CertHash, got)
		}
		wantDays := time.UnixMilli(c.ValidTo).Sub(scrapedAt).Hours() / 24
		if got := value(ms["qualys_certview_certificate_expiry_days"]); math.Abs(got-wantDays) > 0.001 {
			t.Fatalf("%s expiry_days %v, want about %v", c.CertHash, got, wantDays)
		}
		info := labels(ms["qualys_certview_certificate_info"])
		for k, v := range map[string]string{"common_name": c.Subject.Name, "issuer": c.Issuer.Name, "issuer_category": c.IssuerCategory,
			"signature_algorithm": c.SignatureAlgorithm, "key_size": strconv.Itoa(c.KeySize), "self_signed": strconv.FormatBool(c.SelfSigned),
			"type": c.Type, "root_issuer": c.RootIssuer.Name, "serial_number": c.SerialNumber} {
			if info[k] != v {
				t.Fatalf("%s info %s=%q, want %q", c.CertHash, k, info[k], v)
			}
		}
		// The exporter reads the v2 endpoint, which carries no publicKeyAlgorithm: EC comes from ECDSA.
		if strings.Contains(c.SignatureAlgorithm, "ECDSA") != (info["key_algorithm"] == "EC") {
			t.Fatalf("%s key_algorithm %q for %s", c.CertHash, info["key_algorithm"], c.SignatureAlgorithm)
		}
		if time.UnixMilli(c.ValidTo).Before(scrapedAt) {
			expired++
		}
		if c.SelfSigned {
			selfSigned++
		}
		ec := strings.Contains(c.SignatureAlgorithm, "ECDSA")
		if (ec && c.KeySize < 224) || (!ec && c.KeySize < 2048) {
			weakKey++
		}
		if strings.HasPrefix(c.SignatureAlgorithm, "SHA1") || strings.HasPrefix(c.SignatureAlgorithm, "MD5") {
			weakSig++
		}
	}
	for name, want := range map[string]int{"qualys_certview_certificates_expired": expired, "qualys_certview_certificates_self_signed": selfSigned,
		"qualys_certview_certificates_weak_key": weakKey, "qualys_certview_certificates_weak_signature": weakSig} {
		if got := sample(mfs, name, nil); got != float64(want) || want == 0 {
			t.Fatalf("%s = %v, want %d (and more than 0)", name, got, want)
		}
	}

	grades := map[string]map[string]string{}
	for _, m := range mfs["qualys_certview_instance_grade_rank"].GetMetric() {
		l := labels(m)
		if grades[l["instance_id"]] != nil {
			t.Fatalf("instance %s has two grade series", l["instance_id"])
		}
		grades[l["instance_id"]] = l
	}
	infos := map[string]map[string]string{}
	for _, m := range mfs["qualys_certview_instance_info"].GetMetric() {
		infos[labels(m)["instance_id"]] = labels(m)
	}
	scores := map[string]float64{}
	for _, m := range mfs["qualys_certview_instance_score"].GetMetric() {
		l := labels(m)
		scores[l["instance_id"]+"/"+l["category"]] = value(m)
	}
	if len(grades) != ni || len(infos) != ni {
		t.Fatalf("%d grade and %d info series, want %d (assetType ALL must list external assets)", len(grades), len(infos), ni)
	}
	gradeCount := map[string]int{}
	for k := 0; k < ni; k++ {
		in := inv.Instance(k)
		id := strconv.FormatInt(in.ID, 10)
		want := in.Grade
		if want == "" {
			want = "none"
		}
		gradeCount[want]++
		if grades[id]["grade"] != want {
			t.Fatalf("instance %s grade %q, want %q", id, grades[id]["grade"], want)
		}
		for k, v := range map[string]string{"certhash": in.Certificate.CertHash, "asset_name": in.Asset.Name, "ip": in.Asset.PrimaryIP,
			"port": strconv.Itoa(in.Port), "protocol": in.Protocol, "service": in.Service} {
			if infos[id][k] != v {
				t.Fatalf("instance %s info %s=%q, want %q", id, k, infos[id][k], v)
			}
		}
		if gs := in.GradeSummary; gs != nil {
			for cat, v := range map[string]int{"certificate": gs.CertificateScore, "protocol_support": gs.ProtocolSupportScore,
				"key_exchange": gs.KeyExchangeScore, "cipher_strength": gs.CipherStrengthScore} {
				if scores[id+"/"+cat] != float64(v) {
					t.Fatalf("instance %s %s score %v, want %d", id, cat, scores[id+"/"+cat], v)
				}
			}
		} else if _, ok := scores[id+"/certificate"]; ok {
			t.Fatalf("ungraded instance %s has scores", id)
		}
	}
	for _, g := range []string{"A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M", "none"} {
		if got := sample(mfs, "qualys_certview_instances", map[string]string{"grade": g}); got != float64(gradeCount[g]) {
			t.Fatalf("instances{grade=%q} = %v, want %d", g, got, gradeCount[g])
		}
	}

	for _, name := range []string{"qualys_certview_last_poll_success_timestamp_seconds", "qualys_certview_poll_duration_seconds"} {
		if v := sample(mfs, name, nil); math.IsNaN(v) || v <= 0 {
			t.Fatalf("%s = %v", name, v)
		}
	}
	if sample(mfs, "qualys_certview_up", nil) != 1 {
		t.Fatal("up != 1")
	}
	if v := sample(mfs, "qualys_certview_api_requests_total", map[string]string{"endpoint": "certificates", "code": "200"}); v != 3 {
		t.Fatalf("certificates calls %v, want 3 for %d records", v, nc)
	}
	if v := sample(mfs, "qualys_certview_api_rate_limit_remaining", map[string]string{"endpoint": "instances"}); !(v > 0) {
		t.Fatalf("rate_limit_remaining{instances} = %v", v)
	}
	if len(mfs["qualys_certview_build_info"].GetMetric()) != 1 {
		t.Fatal("no build info")
	}
}

// contractLint is the one finding promtool makes, and must make: the metric contract
// fixes the name qualys_certview_certificate_expiry_days, and promtool's unit lint wants
// seconds in any name that mentions days. Anything else it reports fails the test.
const contractLint = `qualys_certview_certificate_expiry_days use base unit "seconds" instead of "days"`

// promtoolCheck lints a scrape with Debian's promtool. CI installs it; elsewhere the
// check is skipped when it is missing.
func promtoolCheck(t *testing.T, p *exporterProc) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is missing in CI")
		}
		t.Log("promtool not installed; skipping its check")
		return
	}
	_, body := p.get("/metrics")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, _ := cmd.CombinedOutput()
	if got := strings.TrimSpace(string(out)); got != contractLint {
		t.Fatalf("promtool check metrics reported more than the contract's known finding:\n%s", out)
	}
}

func TestConfigCheckFlag(t *testing.T) {
	good := writeConfig(t, "https://gateway.qg1.apps.qualys.com", "1h")
	out, err := exec.Command(binary, "--config.check", "--config.file="+good).CombinedOutput()
	if err == nil {
		t.Fatalf("no password anywhere, but the check passed:\n%s", out)
	}
	if !strings.Contains(string(out), "qualys.password: required") {
		t.Fatalf("the error does not name the key:\n%s", out)
	}
	cmd := exec.Command(binary, "--config.check", "--config.file="+good)
	cmd.Env = append(os.Environ(), "QUALYS_PASSWORD=x")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "configuration is valid") {
		t.Fatalf("valid config: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	_ = os.WriteFile(bad, []byte("qualys:\n  api_url: https://x\n  usename: typo\n"), 0o600)
	out, err = exec.Command(binary, "--config.check", "--config.file="+bad).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(string(out), "qualys.usename: unknown key usename (keys are decoded strictly; check the spelling and the indentation) (line 3)") {
		t.Fatalf("typo: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "certview_exporter, version") {
		t.Fatalf("--version: %v %s", err, out)
	}
}

// TestDemoMode starts --demo and expects data within seconds.
func TestDemoMode(t *testing.T) {
	p := startExporter(t, nil, "--demo", "--demo.certificates=300", "--demo.instances=700")
	p.eventually("demo readiness", func() bool { code, _ := p.get("/-/ready"); return code == 200 })
	mfs := p.scrape()
	if got := sample(mfs, "qualys_certview_certificates", nil); got != 302 {
		t.Fatalf("demo certificates = %v, want 300 plus the 2 vendor samples", got)
	}
	if sample(mfs, "qualys_certview_certificates_expired", nil) == 0 || sample(mfs, "qualys_certview_instances", map[string]string{"grade": "F"}) == 0 {
		t.Fatal("the demo inventory lacks expired certificates or bad grades")
	}
	promtoolCheck(t, p)
}

// TestAlertsDocumented checks every alert's severity and annotations, and that its
// runbook_url points at an entry in the README.
func TestAlertsDocumented(t *testing.T) {
	raw, err := os.ReadFile("deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Record      string            `yaml:"record"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Record != "" && r.Alert == "" {
				continue // a recording rule beside the alerts that read it
			}
			n++
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s", r.Alert, a)
				}
			}
			if want := "README.md#" + strings.ToLower(r.Alert); !strings.HasSuffix(r.Annotations["runbook_url"], want) {
				t.Errorf("%s: runbook_url %s does not end in %s", r.Alert, r.Annotations["runbook_url"], want)
			}
			if !strings.Contains(string(readme), "\n#### "+r.Alert+"\n") {
				t.Errorf("%s: no runbook entry in the README", r.Alert)
			}
		}
	}
	// And no runbook entry for an alert that is gone.
	if entries := regexp.MustCompile(`\n#### CertView\w+\n`).FindAll(readme, -1); len(entries) != n {
		t.Errorf("%d alerts, the README has %d runbook entries", n, len(entries))
	}
}

// Issue 25, item 8: a --web.telemetry-path the router cannot take used to panic at start
// (/-/ready, metrics, an empty value, /a b); it is a flag error now, exit code 2, naming
// the flag. A custom path serves the metrics.
func TestTelemetryPathFlag(t *testing.T) {
	for _, bad := range []string{"/-/ready", "metrics", "", "/a b", "/-/healthy", "/-/reload", "/metrics/", "/{x}"} {
		cmd := exec.Command(binary, "--demo", "--web.telemetry-path="+bad, "--web.listen-address="+freeAddr(t))
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "certview_exporter: --web.telemetry-path: ") ||
			strings.Contains(string(out), "panic") {
			t.Fatalf("--web.telemetry-path=%q: %v\n%s", bad, err, out)
		}
	}
	for _, bad := range []string{"--web.max-connections=-1", "--web.max-connections=1", "--web.write-stall-timeout=-1s"} {
		out, err := exec.Command(binary, "--demo", bad).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("%s: %v\n%s", bad, err, out)
		}
	}
	p := startExporter(t, nil, "--demo", "--demo.certificates=20", "--demo.instances=40", "--web.telemetry-path=/custom/metrics")
	p.eventually("readiness", func() bool { code, _ := p.get("/-/ready"); return code == 200 })
	if code, body := p.get("/custom/metrics"); code != 200 || !strings.Contains(body, "qualys_certview_up 1") {
		t.Fatalf("/custom/metrics: %d", code)
	}
	if code, body := p.get("/"); code != 200 || !strings.Contains(body, "/custom/metrics") {
		t.Fatalf("the landing page: %d", code)
	}
}

// quantityBytes reads a Kubernetes memory quantity in Mi or Gi.
func quantityBytes(t *testing.T, q any) int64 {
	t.Helper()
	s, _ := q.(string)
	for suffix, unit := range map[string]int64{"Mi": 1 << 20, "Gi": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err == nil {
				return v * unit
			}
		}
	}
	t.Fatalf("memory quantity %v: not a whole number of Mi or Gi", q)
	return 0
}

// chartMemoryLimit is the Helm chart's default resources.limits.memory, in bytes.
func chartMemoryLimit(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("deploy/helm/certview-exporter/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Resources struct {
			Limits struct {
				Memory string `yaml:"memory"`
			} `yaml:"limits"`
		} `yaml:"resources"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	return quantityBytes(t, values.Resources.Limits.Memory)
}
