package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"golang.org/x/crypto/bcrypt"
)

// TestSecretsNeverShow runs the binary with the password from the environment, polls,
// then with a wrong password, and searches everything it printed and served for the
// password and the tokens.
func TestSecretsNeverShow(t *testing.T) {
	const password = "Pw-Secret-4471-xyz"
	srv := certviewtest.NewServer(certviewtest.Options{Password: password, Inventory: certviewtest.Inventory{Seed: 3, Certificates: 50, Instances: 100}, RateLimit: 100000})
	defer srv.Close()
	cfg := writeConfig(t, srv.URL, "1s")
	good := startExporter(t, []string{"QUALYS_PASSWORD=" + password}, "--config.file="+cfg)
	good.eventually("readiness", func() bool { code, _ := good.get("/-/ready"); return code == 200 })
	srv.Sim.ExpireTokens() // a renewal, so that two tokens went by
	good.eventually("a second token", func() bool { return srv.Sim.TokensIssued() >= 2 })
	_, metrics := good.get("/metrics")

	// Wrong credentials: the process stays up, up is 0, the log says authentication failed.
	bad := startExporter(t, []string{"QUALYS_PASSWORD=" + password + "-wrong"}, "--config.file="+cfg)
	bad.eventually("an authentication failure", func() bool {
		_, body := bad.get("/metrics")
		return strings.Contains(body, `qualys_certview_poll_failures_total{reason="auth"} `) &&
			!strings.Contains(body, `qualys_certview_poll_failures_total{reason="auth"} 0`) && strings.Contains(body, "qualys_certview_up 0")
	})
	if !strings.Contains(bad.logs.String(), "authentication failed") {
		t.Fatalf("no log line says authentication failed:\n%s", bad.logs.String())
	}
	if code, _ := bad.get("/-/healthy"); code != 200 {
		t.Fatal("the process is not alive after refused credentials")
	}
	_, badMetrics := bad.get("/metrics")

	everything := good.logs.String() + metrics + bad.logs.String() + badMetrics
	for _, secret := range append([]string{password}, srv.Sim.Tokens()...) {
		if strings.Contains(everything, secret) {
			t.Fatalf("a secret shows in the logs or metrics: %.12s…", secret)
		}
		if i := strings.LastIndex(secret, "."); i > 0 && strings.Contains(everything, secret[i+1:]) {
			t.Fatal("a token's signature shows in the logs or metrics")
		}
	}
	if len(srv.Sim.Tokens()) == 0 {
		t.Fatal("no token to look for")
	}
	// There is no flag for a secret at all.
	out, _ := execOutput(binary, "--help")
	for _, flag := range []string{"password", "secret"} {
		if strings.Contains(strings.ToLower(out), "--"+flag) || strings.Contains(out, "."+flag) {
			t.Fatalf("a flag takes a %s:\n%s", flag, out)
		}
	}
}

// TestProtectedMetrics serves /metrics over TLS with basic auth (exporter-toolkit's web
// configuration) and checks it with a real TLS client.
func TestProtectedMetrics(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("scrape-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, []byte(fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prometheus: %s\n", certFile, keyFile, hash)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startExporter(t, nil, "--demo", "--demo.certificates=20", "--demo.instances=40", "--web.config.file="+webConfig)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: 5 * time.Second}
	get := func(user, pass string) (int, string) {
		req, _ := http.NewRequest("GET", "https://"+p.addr+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	p.eventually("the TLS listener", func() bool { code, _ := get("prometheus", "scrape-pass"); return code == 200 })
	if code, body := get("prometheus", "scrape-pass"); code != 200 || !strings.Contains(body, "qualys_certview_up") {
		t.Fatalf("right password: %d", code)
	}
	if code, _ := get("prometheus", "wrong"); code != 401 {
		t.Fatalf("wrong password: %d, want 401", code)
	}
	if code, _ := get("", ""); code != 401 {
		t.Fatalf("no password: %d, want 401", code)
	}
	// Plain HTTP is refused.
	if resp, err := http.Get("http://" + p.addr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served the metrics")
		}
	}
}

func selfSignedCert(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certview-exporter-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestReloadSignalsAndEndpoint reloads the binary's configuration with SIGHUP and
// POST /-/reload; a broken file keeps the running configuration and says so.
func TestReloadSignalsAndEndpoint(t *testing.T) {
	srv := certviewtest.NewServer(certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 3, Certificates: 30, Instances: 60}, RateLimit: 100000})
	defer srv.Close()
	cfg := writeConfig(t, srv.URL, "1h")
	p := startExporter(t, []string{"QUALYS_PASSWORD=demo-password"}, "--config.file="+cfg)
	p.eventually("readiness", func() bool { code, _ := p.get("/-/ready"); return code == 200 })
	has := func(s string) bool { _, body := p.get("/metrics"); return strings.Contains(body, s) }

	// SIGHUP with a new interval.
	raw, _ := os.ReadFile(cfg)
	_ = os.WriteFile(cfg, []byte(strings.Replace(string(raw), "interval: 1h", "interval: 2h", 1)), 0o600)
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.eventually("the SIGHUP reload", func() bool { return has("qualys_certview_poll_interval_seconds 7200\n") })
	if !has("qualys_certview_config_last_reload_successful 1\n") || !has("qualys_certview_certificates 30\n") {
		t.Fatal("after SIGHUP: not reported as successful, or the snapshot was lost")
	}
	// A broken file: the old configuration stays, the metric says 0, POST answers 500.
	_ = os.WriteFile(cfg, []byte("qualys:\n  api_url: "+srv.URL+"\n  usename: typo\n"), 0o600)
	resp, err := http.Post("http://"+p.addr+"/-/reload", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(body), "unknown key usename") {
		t.Fatalf("POST /-/reload with a broken file: %d %s", resp.StatusCode, body)
	}
	if !has("qualys_certview_config_last_reload_successful 0\n") || !has("qualys_certview_poll_interval_seconds 7200\n") || !has("qualys_certview_up 1\n") {
		t.Fatal("a failed reload disturbed the running configuration")
	}
	// Fixed again: POST succeeds.
	_ = os.WriteFile(cfg, raw, 0o600)
	resp, err = http.Post("http://"+p.addr+"/-/reload", "text/plain", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /-/reload: %v %v", err, resp)
	}
	resp.Body.Close()
	if !has("qualys_certview_config_last_reload_successful 1\n") || !has("qualys_certview_poll_interval_seconds 3600\n") {
		t.Fatal("the fixed configuration was not taken")
	}
	if !strings.Contains(p.logs.String(), "configuration reload failed") {
		t.Fatal("no log line for the failed reload")
	}
}

// TestHTTPServerLimits: oversized headers are refused, and the server has a header
// read timeout against clients that never finish theirs.
func TestHTTPServerLimits(t *testing.T) {
	p := startExporter(t, nil, "--demo", "--demo.certificates=20", "--demo.instances=40")
	p.eventually("readiness", func() bool { code, _ := p.get("/-/ready"); return code == 200 })
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/metrics", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 200<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 200 KiB header: %d, want 431", resp.StatusCode)
	}
	srv, err := newServer(nil, http.NotFoundHandler(), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > 30*time.Second || srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Fatalf("server limits: header timeout %s, header bytes %d", srv.ReadHeaderTimeout, srv.MaxHeaderBytes)
	}
}

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
