//go:build e2e

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const chartDir = "deploy/helm/certview-exporter"

// The value that must never land in a ConfigMap.
const chartSecret = "s3cret-Never-In-A-ConfigMap"

func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h, err := exec.LookPath("helm")
	if err != nil {
		t.Fatal("helm is missing: run `make helm` (go install helm.sh/helm/v3/cmd/helm, pinned)")
	}
	return h
}

// render runs helm template and returns the manifests, or helm's error output.
func render(t *testing.T, args ...string) ([]map[string]any, string, error) {
	t.Helper()
	cmd := exec.Command(helmBinary(t), append([]string{"template", "cv", chartDir, "--namespace", "monitoring"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, stderr.String(), err
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(&stdout)
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output does not parse: %v", err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs, stderr.String(), nil
}

func kinds(docs []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, d := range docs {
		if d["kind"] == kind {
			out = append(out, d)
		}
	}
	return out
}

// dig walks maps and lists by keys and indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestHelmChart(t *testing.T) {
	full := []string{"--set", "credentials.password=" + chartSecret, "--set", "config.qualys.username=acme",
		"--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true", "--set", "persistence.enabled=true"}
	scenarios := map[string][]string{
		"full":            full,
		"existing secret": {"--set", "credentials.existingSecret=my-secret", "--set", "config.qualys.client_id=cid", "--set", "config.qualys.username=null"},
		"demo":            {"--set", "demo=true"},
		"plain manifests": {"--set", "credentials.existingSecret=certview-exporter-credentials", "--set", "persistence.enabled=true"},
	}
	rendered := 0
	for name, args := range scenarios {
		docs, stderr, err := render(t, args...)
		if err != nil {
			t.Fatalf("%s: helm template: %v\n%s", name, err, stderr)
		}
		rendered += len(docs)
		checkDeployment(t, name, docs)
	}

	docs, _, _ := render(t, full...)
	// The password is in the Secret, and in no ConfigMap.
	for _, cm := range kinds(docs, "ConfigMap") {
		raw, _ := yaml.Marshal(cm)
		if bytes.Contains(raw, []byte(chartSecret)) {
			t.Fatalf("the password is in ConfigMap %v", dig(cm, "metadata", "name"))
		}
		cfg, _ := dig(cm, "data", "config.yml").(string)
		if !strings.Contains(cfg, "password_file: /etc/certview_exporter/secrets/password") || !strings.Contains(cfg, "path: /var/lib/certview_exporter/snapshot") {
			t.Fatalf("config.yml does not point at the secret file and the snapshot:\n%s", cfg)
		}
	}
	secrets := kinds(docs, "Secret")
	if len(secrets) != 1 {
		t.Fatalf("%d Secrets", len(secrets))
	}
	if raw, _ := yaml.Marshal(secrets[0]); !bytes.Contains(raw, []byte("czNjcmV0LU5ldmVyLUluLUEtQ29uZmlnTWFw")) {
		t.Fatal("the Secret does not hold the password")
	}
	// The ServiceMonitor scrapes the Service's port, by name.
	svc := kinds(docs, "Service")[0]
	sm := kinds(docs, "ServiceMonitor")
	if len(sm) != 1 || dig(sm[0], "spec", "endpoints", 0, "port") != dig(svc, "spec", "ports", 0, "name") {
		t.Fatalf("ServiceMonitor port %v, Service port %v", dig(sm[0], "spec", "endpoints", 0, "port"), dig(svc, "spec", "ports", 0, "name"))
	}
	if !reflect.DeepEqual(dig(sm[0], "spec", "selector", "matchLabels"), dig(svc, "metadata", "labels")) &&
		!labelsSubset(dig(sm[0], "spec", "selector", "matchLabels"), dig(svc, "metadata", "labels")) {
		t.Fatal("the ServiceMonitor does not select the Service")
	}
	// The Operator's service target label is dropped, so that the exporter's own service
	// label stays service (the rules group owners without it) and is not renamed
	// exported_service.
	if relabel := fmt.Sprint(dig(sm[0], "spec", "endpoints", 0, "relabelings")); !strings.Contains(relabel, "map[action:labeldrop regex:service]") {
		t.Fatalf("the ServiceMonitor keeps the Operator's service label: relabelings %s", relabel)
	}
	// serviceMonitor.shards makes one endpoint per shard, each with its parameters and
	// a shard label; more than the exporter serves is refused.
	sharded, stderr, err := render(t, append(full, "--set", "serviceMonitor.shards=4")...)
	if err != nil {
		t.Fatalf("serviceMonitor.shards=4: %v\n%s", err, stderr)
	}
	endpoints, _ := dig(kinds(sharded, "ServiceMonitor")[0], "spec", "endpoints").([]any)
	if len(endpoints) != 4 {
		t.Fatalf("serviceMonitor.shards=4 renders %d endpoints", len(endpoints))
	}
	for i := range endpoints {
		shard := strconv.Itoa(i)
		params := fmt.Sprint(dig(kinds(sharded, "ServiceMonitor")[0], "spec", "endpoints", i, "params"))
		relabel := fmt.Sprint(dig(kinds(sharded, "ServiceMonitor")[0], "spec", "endpoints", i, "relabelings"))
		if params != "map[shard:["+shard+"] shards:[4]]" || !strings.Contains(relabel, "replacement:"+shard+" targetLabel:shard") || !strings.Contains(relabel, "targetLabel:job") {
			t.Fatalf("endpoint %d: params %s, relabelings %s", i, params, relabel)
		}
	}
	if _, stderr, err := render(t, append(full, "--set", "serviceMonitor.shards=257")...); err == nil || !strings.Contains(stderr, "serviceMonitor.shards: at most 256") {
		t.Fatalf("serviceMonitor.shards=257 rendered (%v): %s", err, stderr)
	}
	for _, bad := range []string{"-3", "abc", "2.5"} {
		if _, stderr, err := render(t, append(full, "--set", "serviceMonitor.shards="+bad)...); err == nil || !strings.Contains(stderr, "is not a whole number from 0 to 256") {
			t.Fatalf("serviceMonitor.shards=%s rendered (%v): %s", bad, err, stderr)
		}
	}
	// The PrometheusRule is the rule files of deploy/prometheus/, not a copy.
	var want []any
	for _, f := range []string{"deploy/prometheus/rules.yml", "deploy/prometheus/alerts.yml"} {
		raw, _ := os.ReadFile(f)
		var doc map[string]any
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		want = append(want, doc["groups"].([]any)...)
	}
	pr := kinds(docs, "PrometheusRule")
	if len(pr) != 1 || !reflect.DeepEqual(dig(pr[0], "spec", "groups"), want) {
		t.Fatal("the PrometheusRule's groups differ from deploy/prometheus/rules.yml and alerts.yml")
	}
	// The PVC backs the snapshot directory.
	if pvc := kinds(docs, "PersistentVolumeClaim"); len(pvc) != 1 {
		t.Fatalf("%d PVCs with persistence enabled", len(pvc))
	}
	dep := kinds(docs, "Deployment")[0]
	if dig(dep, "spec", "strategy", "type") != "Recreate" || dig(dep, "spec", "replicas") != 1 {
		t.Fatal("the Deployment must run one replica with the Recreate strategy")
	}

	// Bad values are refused with a clear message.
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no credentials":       {nil, "credentials are required"},
		"password in config":   {[]string{"--set", "config.qualys.password=x", "--set", "credentials.password=x"}, "not allowed: put secrets in credentials"},
		"secret in config too": {[]string{"--set", "config.qualys.client_secret=x", "--set", "credentials.clientSecret=x"}, "not allowed"},
	} {
		if _, stderr, err := render(t, tc.args...); err == nil || !strings.Contains(stderr, tc.want) {
			t.Fatalf("%s: err %v, stderr %q; want a refusal saying %q", name, err, stderr, tc.want)
		}
	}
	t.Logf("rendered and checked %d manifests in %d scenarios", rendered, len(scenarios))
}

func labelsSubset(sub, super any) bool {
	a, _ := sub.(map[string]any)
	b, _ := super.(map[string]any)
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) > 0
}

// checkDeployment: every container runs as non-root with a read-only root filesystem,
// no capabilities and both probes; the config and credentials are mounted as files.
func checkDeployment(t *testing.T, scenario string, docs []map[string]any) {
	t.Helper()
	deps := kinds(docs, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("%s: %d Deployments", scenario, len(deps))
	}
	pod := dig(deps[0], "spec", "template", "spec")
	if dig(pod, "securityContext", "runAsNonRoot") != true {
		t.Fatalf("%s: the pod may run as root", scenario)
	}
	containers, _ := dig(pod, "containers").([]any)
	if len(containers) == 0 {
		t.Fatalf("%s: no containers", scenario)
	}
	for _, c := range containers {
		name := dig(c, "name")
		sc := dig(c, "securityContext")
		uid, _ := dig(sc, "runAsUser").(int)
		if dig(sc, "runAsNonRoot") != true || uid == 0 || dig(sc, "readOnlyRootFilesystem") != true ||
			dig(sc, "allowPrivilegeEscalation") != false || !reflect.DeepEqual(dig(sc, "capabilities", "drop"), []any{"ALL"}) {
			t.Fatalf("%s: container %v security context %v", scenario, name, sc)
		}
		if dig(c, "livenessProbe", "httpGet", "path") != "/-/healthy" || dig(c, "readinessProbe", "httpGet", "path") != "/-/ready" {
			t.Fatalf("%s: container %v probes %v %v", scenario, name, dig(c, "livenessProbe"), dig(c, "readinessProbe"))
		}
		// Nothing in the chart reloads over HTTP (a config change replaces the pod):
		// /-/reload stays closed.
		for _, a := range asList(dig(c, "args")) {
			if a == "--web.enable-lifecycle" {
				t.Fatalf("%s: container %v passes --web.enable-lifecycle, and nothing in the chart reloads over HTTP", scenario, name)
			}
		}
		if dig(c, "resources", "requests", "memory") == nil || dig(c, "resources", "limits", "memory") == nil {
			t.Fatalf("%s: container %v has no memory request or limit", scenario, name)
		}
		checkMemorySizing(t, scenario, c)
		for _, e := range asList(dig(c, "env")) {
			if dig(e, "value") != nil && strings.Contains(strings.ToLower(dig(e, "name").(string)), "password") {
				t.Fatalf("%s: a password in the environment of %v", scenario, name)
			}
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestComposeStack parses the compose file and checks that every file it mounts exists,
// that its Prometheus and Alertmanager configs load, and that the exporter's build
// context has the Dockerfile.
func TestComposeStack(t *testing.T) {
	dir := "deploy/compose"
	raw, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Volumes []string `yaml:"volumes"`
			Build   *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	// The stack reloads with SIGHUP: /-/reload stays closed on the published port.
	if !bytes.Contains(raw, []byte("command: ${CERTVIEW_EXPORTER_FLAGS:---demo}\n")) || !bytes.Contains(raw, []byte("kill -s HUP exporter")) {
		t.Fatal("docker-compose.yml: the exporter should reload with SIGHUP, without --web.enable-lifecycle")
	}
	for _, want := range []string{"exporter", "prometheus", "alertmanager", "grafana"} {
		if _, ok := compose.Services[want]; !ok {
			t.Fatalf("no %s service", want)
		}
	}
	mounts := 0
	for name, svc := range compose.Services {
		if svc.Build != nil {
			if _, err := os.Stat(filepath.Join(dir, svc.Build.Context, svc.Build.Dockerfile)); err != nil {
				t.Fatalf("%s: build: %v", name, err)
			}
		}
		if svc.Build == nil && !regexp.MustCompile(`:[v0-9][0-9.]*$`).MatchString(svc.Image) {
			t.Fatalf("%s: image %q is not pinned to a version", name, svc.Image)
		}
		for _, v := range svc.Volumes {
			src := strings.SplitN(v, ":", 2)[0]
			if !strings.HasPrefix(src, ".") {
				if _, ok := compose.Volumes[src]; !ok {
					t.Fatalf("%s: volume %s is not declared", name, src)
				}
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
				t.Fatalf("%s mounts %s, which does not exist", name, src)
			}
			mounts++
		}
	}
	if out, err := exec.Command("amtool", "check-config", filepath.Join(dir, "alertmanager.yml")).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	// The compose file's exporter config must be valid too (with a password from the environment).
	cmd := exec.Command(binary, "--config.check", "--config.file="+withSnapshotDir(t, filepath.Join(dir, "config.yml")))
	cmd.Env = append(os.Environ(), "QUALYS_PASSWORD=x")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy/compose/config.yml: %v\n%s", err, out)
	}
	t.Logf("compose: %d services, %d bind mounts, all present", len(compose.Services), mounts)
}

// withSnapshotDir copies a config, pointing snapshot.path into a temporary directory
// (the container's path does not exist here).
func withSnapshotDir(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	re := regexp.MustCompile(`(?m)^(\s*path:\s*)/var/lib/certview_exporter/snapshot\s*$`)
	fixed := re.ReplaceAll(raw, []byte("${1}"+filepath.Join(filepath.Dir(out), "snapshot")))
	if err := os.WriteFile(out, fixed, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSystemdUnit verifies the unit with systemd-analyze (offline) and checks its
// hardening: a dynamic user, a read-only system, a state directory for the snapshot and
// the password passed as a credential.
func TestSystemdUnit(t *testing.T) {
	unit := "deploy/systemd/certview_exporter.service"
	raw, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^ExecStart=.*$`).Find(raw); m == nil || bytes.Contains(m, []byte("--web.enable-lifecycle")) {
		t.Fatalf("%s passes --web.enable-lifecycle; it reloads with SIGHUP (ExecReload)", unit)
	}
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=certview_exporter", "ExecReload=/bin/kill -HUP $MAINPID",
		"LoadCredential=qualys_password:", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(string(raw), want) {
			t.Fatalf("%s lacks %q", unit, strings.TrimSpace(want))
		}
	}
	// The config beside it reads the credential and keeps the snapshot in the state dir.
	cfg, _ := os.ReadFile("deploy/systemd/certview_exporter.yml")
	if !strings.Contains(string(cfg), "password_file: /run/credentials/certview_exporter.service/qualys_password") ||
		!strings.Contains(string(cfg), "path: /var/lib/certview_exporter/snapshot") {
		t.Fatal("deploy/systemd/certview_exporter.yml does not use the credential and the state directory")
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is missing")
	}
	// verify wants the ExecStart binary to exist: point a copy of the unit at the test's.
	dir := t.TempDir()
	copyUnit := filepath.Join(dir, "certview_exporter.service")
	if err := os.WriteFile(copyUnit, bytes.ReplaceAll(raw, []byte("/usr/local/bin/certview_exporter"), []byte(binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", copyUnit).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", copyUnit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.0 {
		t.Fatalf("exposure level %s is above 2.0 (systemd calls up to 2 \"OK\"):\n%s", m[1], out)
	}
	t.Logf("systemd-analyze security: exposure %s", m[1])
}

// checkMemorySizing holds the chart's memory limit to the measurement it is sized from:
// the README's scale table, whose peak RSS at 100,000 / 300,000 with every record at the
// bounds of what the exporter keeps must fit under the limit with a fifth to spare; and
// the runtime's soft limit (--runtime.memory-limit) must lie below the container's.
func checkMemorySizing(t *testing.T, scenario string, c any) {
	t.Helper()
	limit := quantityBytes(t, dig(c, "resources", "limits", "memory"))
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\| 100,000 / 300,000, at the bound \|(?:[^|]*\|){6} (\d+) MiB \|`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README's scale table has no peak RSS at 100,000 / 300,000 at the bound")
	}
	peak, _ := strconv.ParseFloat(string(m[1]), 64)
	if float64(limit) < 1.2*peak*(1<<20) {
		t.Fatalf("%s: the memory limit %v holds less than 1.2x the measured peak of %v MiB at 100,000 / 300,000 at the bound",
			scenario, dig(c, "resources", "limits", "memory"), peak)
	}
	soft := int64(0)
	for _, a := range asList(dig(c, "args")) {
		if v, ok := strings.CutPrefix(a.(string), "--runtime.memory-limit="); ok {
			soft = quantityBytes(t, strings.Replace(v, "iB", "i", 1))
		}
	}
	if soft <= 0 || soft >= limit {
		t.Fatalf("%s: --runtime.memory-limit (%d bytes) must be set below the container's limit (%d bytes)", scenario, soft, limit)
	}
}
