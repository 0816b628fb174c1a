package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
)

const hostileSecret = "Pw-Hostile-Secret-5521"

// Files are read with limits: a FIFO, a device, a directory or a file past its cap is
// refused at once (a FIFO used to hang start-up, /dev/zero to fill the memory), with an
// error naming the key or the flag.
func TestFilesAreReadWithLimits(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxSecretFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	hugeConfig := filepath.Join(dir, "huge.yml")
	if err := os.WriteFile(hugeConfig, []byte(minimal+"#"+strings.Repeat("x", MaxConfigFileBytes)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noPassword := strings.Replace(minimal, "  password: secret\n", "", 1)
	for _, tc := range []struct {
		key, path, want string
	}{
		{"password_file", fifo, "qualys.password_file: cannot read the file it names: not a regular file (a named pipe) (line 2)"},
		{"password_file", "/dev/zero", "qualys.password_file: cannot read the file it names: not a regular file (a character device) (line 2)"},
		{"password_file", dir, "qualys.password_file: cannot read the file it names: not a regular file (a directory) (line 2)"},
		{"password_file", big, "qualys.password_file: cannot read the file it names: the file is larger than the limit of 64 KiB (65537 bytes) (line 2)"},
		{"client_secret_file", fifo, "qualys.client_secret_file: cannot read the file it names: not a regular file (a named pipe) (line 2)"},
		{"ca_file", fifo, "qualys.ca_file: cannot read the file it names: not a regular file (a named pipe) (line 2)"},
	} {
		yml := strings.Replace(noPassword, "qualys:\n", "qualys:\n  "+tc.key+": "+tc.path+"\n", 1)
		if tc.key == "client_secret_file" {
			yml = "qualys:\n  " + tc.key + ": " + tc.path + "\n  platform: US1\n  client_id: cid\n"
		}
		if tc.key == "ca_file" {
			yml = strings.Replace(minimal, "qualys:\n", "qualys:\n  "+tc.key+": "+tc.path+"\n", 1)
		}
		done := make(chan error, 1)
		go func() { _, err := Parse("c.yml", []byte(yml), env(nil)); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %s: err = %v\nwant %q", tc.key, tc.path, err, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: %s: Parse hangs", tc.key, tc.path)
		}
	}
	for path, want := range map[string]string{
		fifo:        "--config.file: not a regular file (a named pipe)",
		"/dev/zero": "--config.file: not a regular file (a character device)",
		hugeConfig:  "--config.file: the file is larger than the limit of 1 MiB",
	} {
		done := make(chan error, 1)
		go func() { _, err := Load(path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Load(%s): %v, want %q", path, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Load(%s) hangs", path)
		}
	}
}

// No configuration error shows a secret: not a password file's path that is the
// password itself, not a YAML alias of the password used as a duration (or an int), not
// an api_url carrying the password as userinfo with a bad port.
func TestConfigErrorsNeverShowSecrets(t *testing.T) {
	base := "qualys:\n  api_url: https://gateway.qg1.apps.qualys.com\n  username: u\n"
	for name, tc := range map[string]struct{ yml, want string }{
		"password as password_file": {base + "  password_file: " + hostileSecret + "\n", "qualys.password_file: cannot read the file it names: no such file or directory (line 4)"},
		"secret as client_secret_file": {"qualys:\n  platform: US1\n  client_id: cid\n  client_secret_file: " + hostileSecret + "\n",
			"qualys.client_secret_file: cannot read the file it names: no such file or directory (line 4)"},
		"alias as a duration": {base + "  password: &pw " + hostileSecret + "\npoll:\n  interval: *pw\n", "qualys.password: must not carry a YAML anchor (&pw)"},
		"alias as an int":     {base + "  password: &pw " + hostileSecret + "\n  page_size: *pw\n", "qualys.password: must not carry a YAML anchor (&pw)"},
		"anchor elsewhere":    {"x: &pw " + hostileSecret + "\n" + base + "  password: *pw\n", "qualys.password: must not be a YAML alias"},
		"userinfo, bad port": {"qualys:\n  api_url: https://u:" + hostileSecret + "@gateway.example:99999x/\n  username: u\n  password: " + hostileSecret + "\n",
			"qualys.api_url: gateway: base URL \"https://[REDACTED]@gateway.example:99999x/\" must not carry credentials"},
		"userinfo, http": {"qualys:\n  api_url: http://u:" + hostileSecret + "@gateway.example/\n  username: u\n  password: x\n", "must not carry credentials"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("c.yml", []byte(tc.yml), env(map[string]string{EnvPassword: "from-env"}))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), hostileSecret) || strings.Contains(err.Error(), hostileSecret[:7]) {
				t.Fatalf("the error shows the secret: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %q", err, tc.want)
			}
		})
	}
	// The last line of defence: an error quoting a secret, whole or as the decoder
	// shortens it, is redacted.
	err := redact(&Error{File: "c.yml", Msg: "`" + hostileSecret + "` and `" + hostileSecret[:7] + "...`"}, []string{hostileSecret})
	if strings.Contains(err.Error(), hostileSecret[:7]) {
		t.Fatalf("redact left the secret: %v", err)
	}
}

// Neither a Secret nor a Config prints a secret, under any verb.
func TestSecretsDoNotPrint(t *testing.T) {
	c, err := Parse("c.yml", []byte(strings.Replace(minimal, "password: secret", "password: "+hostileSecret, 1)), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Qualys.ClientSecret = Secret(hostileSecret + "-client")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		for _, v := range []any{c, *c, c.Qualys, c.Qualys.Password, &c.Qualys.Password} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, hostileSecret) {
				t.Errorf("%s of %T prints the secret: %s", verb, v, out)
			}
		}
	}
	if got := fmt.Sprintf("%#v", c.Qualys.Password); got != "<secret>" {
		t.Errorf("%%#v of a Secret = %q", got)
	}
	if got := fmt.Sprintf("%#v", Secret("")); got != "" {
		t.Errorf("%%#v of an empty Secret = %q", got)
	}
}

// An http:// api_url sends the password in clear: refused outside loopback unless
// qualys.allow_insecure_http is set; allowed on loopback, with a warning either way.
func TestPlainHTTPIsRefusedOutsideLoopback(t *testing.T) {
	withURL := func(u string, extra string) string {
		return strings.Replace(minimal, "https://gateway.qg1.apps.qualys.com", u, 1) + extra
	}
	if _, err := Parse("c.yml", []byte(withURL("http://gateway.qg1.apps.qualys.com", "")), env(nil)); err == nil ||
		!strings.Contains(err.Error(), "c.yml: qualys.api_url: http:// sends the password in clear to gateway.qg1.apps.qualys.com, a host outside loopback: use https, or set qualys.allow_insecure_http: true (line 2)") {
		t.Fatalf("http to a remote host: %v", err)
	}
	for _, u := range []string{"http://10.0.0.1:8080", "http://[2001:db8::1]/", "http://localhost.example.com"} {
		if _, err := Parse("c.yml", []byte(withURL(u, "")), env(nil)); err == nil {
			t.Fatalf("%s accepted", u)
		}
	}
	allowed := strings.Replace(withURL("http://proxy.internal:3128", ""), "qualys:\n", "qualys:\n  allow_insecure_http: true\n", 1)
	c, err := Parse("c.yml", []byte(allowed), env(nil))
	if err != nil {
		t.Fatalf("allow_insecure_http: %v", err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "sends the password in clear to proxy.internal; allowed by qualys.allow_insecure_http") {
		t.Fatalf("warnings %q", w)
	}
	for _, u := range []string{"http://127.0.0.1:8080", "http://127.8.9.10", "http://[::1]:9000/", "http://localhost:8080", "HTTP://LOCALHOST"} {
		c, err := Parse("c.yml", []byte(withURL(u, "")), env(nil))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "is loopback") {
			t.Fatalf("%s: warnings %q", u, w)
		}
	}
	c, err = Parse("c.yml", []byte(minimal), env(nil))
	if err != nil || len(c.Warnings()) != 0 {
		t.Fatalf("https: %v, warnings %q", err, c.Warnings())
	}
}

// Explicit zero: a key whose 0 means something keeps it (and the client gets "none"),
// unset takes the default, and a 0 that means nothing is refused, naming the key and
// line, instead of silently becoming the default.
func TestExplicitZero(t *testing.T) {
	c, err := Parse("c.yml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.ClientConfig(); cc.MaxRetries != certview.DefaultMaxRetries || cc.RateLimit.Calls != 300 || c.Metrics.WeakRSABits != 2048 || c.Metrics.WeakECBits != 224 {
		t.Fatalf("unset: retries %d, calls %d, weak %d/%d", cc.MaxRetries, cc.RateLimit.Calls, c.Metrics.WeakRSABits, c.Metrics.WeakECBits)
	}
	zeros := strings.Replace(minimal, "calls: 300", "calls: 0", 1) + "metrics:\n  weak_rsa_bits: 0\n  weak_ec_bits: 0\n"
	zeros = strings.Replace(zeros, "qualys:\n", "qualys:\n  max_retries: 0\n", 1)
	c, err = Parse("c.yml", []byte(zeros), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Complete() // the defaults again keep them
	cc := c.ClientConfig()
	if cc.MaxRetries != certview.NoRetries || cc.RateLimit.Calls != certview.NoRateLimit || c.Metrics.WeakRSABits != 0 || c.Metrics.WeakECBits != 0 {
		t.Fatalf("written as 0: retries %d, calls %d, weak %d/%d", cc.MaxRetries, cc.RateLimit.Calls, c.Metrics.WeakRSABits, c.Metrics.WeakECBits)
	}
	if err := cc.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("c.yml", []byte(strings.Replace(minimal, "qualys:\n", "qualys:\n  max_retries: -1\n", 1)), env(nil)); err == nil ||
		!strings.Contains(err.Error(), "c.yml: qualys.max_retries: must not be negative (0: no retries) (line 2)") {
		t.Fatalf("max_retries: -1: %v", err)
	}
	// null is unset.
	c, err = Parse("c.yml", []byte(strings.Replace(minimal, "qualys:\n", "qualys:\n  max_retries: ~\n", 1)), env(nil))
	if err != nil || c.ClientConfig().MaxRetries != certview.DefaultMaxRetries {
		t.Fatalf("max_retries: null: %v", err)
	}
	for key, yml := range map[string]string{
		"qualys.timeout":              strings.Replace(minimal, "qualys:\n", "qualys:\n  timeout: 0s\n", 1),
		"qualys.page_size":            strings.Replace(minimal, "qualys:\n", "qualys:\n  page_size: 0\n", 1),
		"qualys.max_pages":            strings.Replace(minimal, "qualys:\n", "qualys:\n  max_pages: 0\n", 1),
		"qualys.token_renew_margin":   strings.Replace(minimal, "qualys:\n", "qualys:\n  token_renew_margin: 0m\n", 1),
		"poll.interval":               strings.Replace(minimal, "interval: 1h", "interval: 0s", 1),
		"poll.progress_interval":      strings.Replace(minimal, "poll:\n", "poll:\n  progress_interval: 0s\n", 1),
		"rate_limit.window":           strings.Replace(minimal, "window: 1h", "window: 0s", 1),
		"rate_limit.concurrency":      strings.Replace(minimal, "rate_limit:\n", "rate_limit:\n  concurrency: 0\n", 1),
		"owners.labels[0].max_values": minimal + "owners:\n  labels:\n    - name: team\n      tag_regex: '^Team-(.+)$'\n      max_values: 0\n",
	} {
		_, err := Parse("c.yml", []byte(yml), env(nil))
		if err == nil || !strings.Contains(err.Error(), "c.yml: "+key+": 0 is not a valid value (leave the key out for the default") || !strings.Contains(err.Error(), "(line ") {
			t.Errorf("%s: 0: %v", key, err)
		}
	}
}

// qualys.ca_file is read once, bounded, when the configuration is loaded: the client
// trusts what was read then, not what the path holds later, and a file past 1 MiB is
// refused.
func TestCAFileIsReadOnceWithALimit(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	caPEM := testCertificatePEM(t)
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	yml := strings.Replace(minimal, "qualys:\n", "qualys:\n  ca_file: "+ca+"\n", 1)
	c, err := Parse("c.yml", []byte(yml), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, make([]byte, MaxCAFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := c.ClientConfig().CAPEM; string(got) != string(caPEM) {
		t.Fatalf("the client's CA certificates are %d bytes, want the %d read at load", len(got), len(caPEM))
	}
	_, err = Parse("c.yml", []byte(yml), env(nil))
	if want := "qualys.ca_file: cannot read the file it names: the file is larger than the limit of 1 MiB"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("a CA file past its cap: %v, want %q", err, want)
	}
	if err := os.WriteFile(ca, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Parse("c.yml", []byte(yml), env(nil))
	if want := "qualys.ca_file: the file it names holds no PEM certificate (line 2)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("a CA file without a certificate: %v, want %q", err, want)
	}
}

// testCertificatePEM is a self-signed certificate, PEM-encoded.
func testCertificatePEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
