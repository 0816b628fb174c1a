package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/web"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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
	p := startExporter(t, []string{"QUALYS_PASSWORD=demo-password"}, "--config.file="+cfg, "--web.enable-lifecycle")
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
	// The answer does not echo the configuration; the log has the error.
	if resp.StatusCode != 500 || strings.Contains(string(body), "usename") || !strings.Contains(string(body), "the previous configuration stays in use") {
		t.Fatalf("POST /-/reload with a broken file: %d %s", resp.StatusCode, body)
	}
	p.eventually("the log to say why the reload failed", func() bool { return strings.Contains(p.logs.String(), "unknown key usename") })
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
	srv, err := web.New(web.Options{TelemetryPath: "/metrics", Metrics: http.NotFoundHandler(), Ready: func() bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if h := srv.HTTP; h.ReadHeaderTimeout <= 0 || h.ReadHeaderTimeout > 30*time.Second || h.MaxHeaderBytes <= 0 || h.MaxHeaderBytes > 1<<20 ||
		h.IdleTimeout <= 0 || h.IdleTimeout > 30*time.Second {
		t.Fatalf("server limits: header timeout %s, header bytes %d, idle timeout %s", h.ReadHeaderTimeout, h.MaxHeaderBytes, h.IdleTimeout)
	}
}

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// Without --web.enable-lifecycle, /-/reload answers 403 as Prometheus does and reloads
// nothing; SIGHUP still reloads.
func TestReloadNeedsTheLifecycleFlag(t *testing.T) {
	p := startExporter(t, nil, "--demo", "--demo.certificates=20", "--demo.instances=40")
	p.eventually("readiness", func() bool { code, _ := p.get("/-/ready"); return code == 200 })
	for _, method := range []string{"POST", "PUT", "GET"} {
		req, _ := http.NewRequest(method, "http://"+p.addr+"/-/reload", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Lifecycle API is not enabled") {
			t.Fatalf("%s /-/reload without --web.enable-lifecycle: %d %s", method, resp.StatusCode, body)
		}
	}
	if strings.Contains(p.logs.String(), "configuration reloaded") {
		t.Fatal("a request reloaded the configuration")
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.eventually("the SIGHUP reload", func() bool { return strings.Contains(p.logs.String(), "configuration reloaded") })
}

// nonReader sends GET /metrics on a socket with a 4 KiB receive buffer and reads only the
// status line, so the server's writes block once the socket buffers are full. It
// returns the connection and its status line.
func nonReader(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("GET /metrics HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	status := make([]byte, len("HTTP/1.1 200"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, status); err != nil {
		t.Fatalf("a non-reader's status line: %v", err)
	}
	return conn, string(status)
}

// serverSocket is what /proc/<pid>/net/tcp says of the exporter's end of a connection:
// whether the exporter still holds it (an orphan, closed but still sending, has inode
// 0), and the bytes waiting in its send queue.
func serverSocket(t *testing.T, pid int, serverAddr, clientAddr string) (held bool, sendQueue int64) {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Fatal(err)
	}
	port := func(addr string) string {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return fmt.Sprintf(":%04X", n)
	}
	local, remote := port(serverAddr), port(clientAddr)
	for _, line := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || !strings.HasSuffix(f[1], local) || !strings.HasSuffix(f[2], remote) {
			continue
		}
		queues := strings.SplitN(f[4], ":", 2)
		q, _ := strconv.ParseInt(queues[0], 16, 64)
		return f[9] != "0", q
	}
	return false, 0
}

// scrapeWhileEightNeverRead connects eight clients that ask for /metrics and never read,
// waits until the exporter's writes to each are stuck (bytes in its send queue), and
// checks that a normal scrape is served within 5 s while they are connected; then it
// waits for the exporter to cut them off. Issue 25, item 2: eight such clients used to
// block every scrape for the whole write timeout (2 minutes), and could reconnect for
// ever. It returns the scrape's time and size, and how long the eight stayed connected.
func scrapeWhileEightNeverRead(t *testing.T, p *exporterProc) (scrapeTime time.Duration, scrapeBytes int, connected time.Duration) {
	t.Helper()
	pid := p.cmd.Process.Pid
	start := time.Now()
	var conns []net.Conn // those answered 200; before the fix, four (the scrape slots)
	for range 8 {
		if c, status := nonReader(t, p.addr); status == "HTTP/1.1 200" {
			conns = append(conns, c)
		}
	}
	p.eventually("the exporter's writes to the non-readers to be stuck", func() bool {
		for _, c := range conns {
			if held, queued := serverSocket(t, pid, p.addr, c.LocalAddr().String()); !held || queued < 64<<10 {
				return false
			}
		}
		return true
	})
	client := &http.Client{Timeout: 5 * time.Second}
	began := time.Now()
	resp, err := client.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatalf("a scrape while eight clients never read: %v (after %s)", err, time.Since(began))
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	scrapeTime = time.Since(began)
	if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), "qualys_certview_up 1\n") {
		t.Fatalf("a scrape while eight clients never read: %d, %d bytes, %v, after %s", resp.StatusCode, len(body), err, scrapeTime)
	}
	if len(conns) != 8 {
		t.Fatalf("%d of the 8 non-readers were answered 200", len(conns))
	}
	for i, c := range conns {
		if held, _ := serverSocket(t, pid, p.addr, c.LocalAddr().String()); !held {
			t.Fatalf("non-reader %d was cut off before the scrape ended: the scrape did not run beside it", i)
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for i, c := range conns {
		for held, _ := serverSocket(t, pid, p.addr, c.LocalAddr().String()); held; held, _ = serverSocket(t, pid, p.addr, c.LocalAddr().String()) {
			if time.Now().After(deadline) {
				t.Fatalf("non-reader %d still connected after %s", i, time.Since(start))
			}
			select {
			case <-p.exited:
				t.Fatalf("the exporter exited: %v", p.waitErr)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return scrapeTime, len(body), time.Since(start)
}

// At the binary level, at the demo's size (about 9 MB a plain scrape): a normal scrape is
// served within 5 s while eight clients never read, and the exporter cuts the eight off
// after the write stall timeout (10 s by default), not the write timeout (2 minutes).
// make e2e runs the same at 20,000 certificates and 50,000 instances
// (TestSlowReadersAtScale).
func TestSlowReadersDoNotHoldScrapeSlots(t *testing.T) {
	p := startExporter(t, nil, "--demo", "--log.level=info")
	p.eventually("readiness", func() bool { code, _ := p.get("/-/ready"); return code == 200 })
	took, size, connected := scrapeWhileEightNeverRead(t, p)
	if connected > 30*time.Second {
		t.Fatalf("the eight non-readers stayed connected %s; the stall timeout is 10s", connected)
	}
	t.Logf("a scrape of %.1f MB took %s while eight clients never read; they stayed connected %s", float64(size)/1e6, took.Round(time.Millisecond), connected.Round(time.Millisecond))
}

// Issue 25, item 3: idle connections used to be held for 2 minutes without a cap, until
// the file descriptors ran out and snapshot saves failed. Under a file limit of 256 and a
// flood of 600 idle connections (half never used, half kept alive after a request), the
// exporter holds at most --web.max-connections (128) of them, /-/healthy answers, and
// the snapshot is still saved after each poll.
func TestConnectionFloodKeepsHealthAndSaves(t *testing.T) {
	srv := certviewtest.NewServer(certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 5, Certificates: 30, Instances: 60}, RateLimit: 100000})
	defer srv.Close()
	cfg := writeConfig(t, srv.URL, "1s")
	snapshotPath := filepath.Join(t.TempDir(), "snapshot")
	raw, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append(raw, []byte("snapshot:\n  path: "+snapshotPath+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startExporterUnder(t, []string{"prlimit", "--nofile=256:256", "--"}, []string{"QUALYS_PASSWORD=demo-password"},
		"--config.file="+cfg, "--log.level=info")
	p.eventually("readiness", func() bool { code, _ := p.get("/-/ready"); return code == 200 })
	metric := func(name string, labels map[string]string) float64 {
		_, body := p.get("/metrics")
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			return -1
		}
		return sample(mfs, name, labels)
	}
	saves := func() float64 {
		return metric("qualys_certview_snapshot_saves_total", map[string]string{"result": "success"})
	}
	p.eventually("a first save", func() bool { return saves() >= 1 })

	sockets := func() int {
		entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
		n := 0
		for _, e := range entries {
			if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.cmd.Process.Pid, e.Name())); err == nil && strings.HasPrefix(link, "socket:") {
				n++
			}
		}
		return n
	}
	peak := 0
	health := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 600 {
		c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if i%2 == 1 {
			_, _ = c.Write([]byte("GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"))
		}
		if i%100 == 99 {
			resp, err := health.Get("http://" + p.addr + "/-/healthy")
			if err != nil {
				t.Fatalf("/-/healthy after %d idle connections: %v", i+1, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("/-/healthy after %d idle connections: %d", i+1, resp.StatusCode)
			}
			peak = max(peak, sockets())
		}
	}
	before := saves()
	p.eventually("a save during the flood", func() bool { return saves() > before })
	peak = max(peak, sockets())
	// The cap, plus the listener and the connections to the API and of this test's scrapes.
	if peak > 128+8 {
		t.Fatalf("the exporter held %d sockets under the flood; the cap is 128 connections", peak)
	}
	// The flood shows in the exporter's own metrics.
	closed := metric("qualys_certview_http_connections_closed_to_make_room_total", nil)
	if open := metric("qualys_certview_http_connections", nil); closed < 600-128 || open < 1 || open > 128 {
		t.Fatalf("after 600 connections at a cap of 128: %v closed to make room, %v open", closed, open)
	}
	t.Logf("600 idle connections: the exporter held at most %d sockets, closed %v to make room; /-/healthy answered and saves went on", peak, closed)
}

// Files are read with limits: a FIFO or /dev/zero as the password file or the
// configuration file fails at once, in bounded memory, naming the key or the flag. (A
// FIFO used to hang start-up and ignore SIGTERM; /dev/zero took gigabytes.)
func TestStartupRefusesPipesAndDevices(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	withPasswordFile := func(path string) string {
		cfg := filepath.Join(t.TempDir(), "config.yml")
		_ = os.WriteFile(cfg, []byte("qualys:\n  api_url: https://gateway.qg1.apps.qualys.com\n  username: u\n  password_file: "+path+"\n"), 0o600)
		return cfg
	}
	for _, tc := range []struct{ config, want string }{
		{withPasswordFile(fifo), "qualys.password_file: cannot read the file it names: not a regular file (a named pipe) (line 4)"},
		{withPasswordFile("/dev/zero"), "qualys.password_file: cannot read the file it names: not a regular file (a character device) (line 4)"},
		{fifo, "--config.file: not a regular file (a named pipe)"},
		{"/dev/zero", "--config.file: not a regular file (a character device)"},
	} {
		cmd := exec.Command(binary, "--config.file="+tc.config, "--web.listen-address="+freeAddr(t))
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("%s: %v\n%s\nwant %q", tc.config, err, out.String(), tc.want)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%s: start-up hangs", tc.config)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > 200<<10 {
			t.Fatalf("%s: peak RSS %d KiB", tc.config, ru.Maxrss)
		}
	}
}

// --config.check never prints a secret: not for an api_url with the password as
// userinfo and a bad port, a password_file set to the password itself, or a YAML alias
// of the password used as a duration. An http:// api_url is refused outside loopback
// and warned about on it.
func TestConfigCheckNeverShowsSecrets(t *testing.T) {
	const secret = "Pw-Check-Secret-9307"
	dir := t.TempDir()
	check := func(yml string) (string, error) {
		path := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		return execOutput(binary, "--config.check", "--config.file="+path)
	}
	for name, yml := range map[string]string{
		"userinfo and a bad port": "qualys:\n  api_url: https://u:" + secret + "@gateway.example:99999x/\n  username: u\n  password: " + secret + "\n",
		"password as the file":    "qualys:\n  api_url: https://gateway.example\n  username: u\n  password_file: " + secret + "\n",
		"alias as a duration":     "qualys:\n  api_url: https://gateway.example\n  username: u\n  password: &pw " + secret + "\npoll:\n  interval: *pw\n",
	} {
		out, err := check(yml)
		if err == nil {
			t.Fatalf("%s: accepted:\n%s", name, out)
		}
		if strings.Contains(out, secret) || strings.Contains(out, secret[:7]) {
			t.Fatalf("%s: --config.check shows the secret:\n%s", name, out)
		}
		if !strings.Contains(out, "qualys.") {
			t.Fatalf("%s: the error names no key:\n%s", name, out)
		}
	}
	out, err := check("qualys:\n  api_url: http://gateway.example\n  username: u\n  password: x\n")
	if err == nil || !strings.Contains(out, "qualys.api_url: http:// sends the password in clear to gateway.example, a host outside loopback") {
		t.Fatalf("http to a remote host: %v\n%s", err, out)
	}
	out, err = check("qualys:\n  api_url: http://127.0.0.1:8080\n  username: u\n  password: x\n")
	if err != nil || !strings.Contains(out, "level=warn") || !strings.Contains(out, "allowed because 127.0.0.1 is loopback") {
		t.Fatalf("http on loopback: %v\n%s", err, out)
	}
}

// --web.systemd-socket serves on the socket systemd passes (file descriptor 3, with
// LISTEN_PID and LISTEN_FDS), within the connection cap: collector/web opens the
// listeners itself now, so that it can cap them.
func TestSystemdSocketActivation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // f keeps the socket listening
	defer f.Close()
	// sh's $$ is the exporter's pid once it execs it.
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`, binary,
		"--demo", "--demo.certificates=20", "--demo.instances=40", "--web.systemd-socket", "--web.max-connections=4")
	cmd.ExtraFiles = []*os.File{f}
	p := &exporterProc{t: t, cmd: cmd, addr: addr, logs: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	defer func() { _ = cmd.Process.Kill(); <-p.exited }()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	healthy := func() bool {
		resp, err := client.Get("http://" + addr + "/-/healthy")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	p.eventually("an answer on the activated socket", healthy)
	for range 10 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if !healthy() {
		t.Fatalf("/-/healthy beside 10 idle connections at a cap of 4:\n%s", p.logs.String())
	}
	if !strings.Contains(p.logs.String(), "serving on the sockets systemd passed") {
		t.Fatalf("no log of the activated listener:\n%s", p.logs.String())
	}
}

// --web.config.file is read by exporter-toolkit on every request, whole: /dev/zero
// there took gigabytes at the first request, and a named pipe hung every request. It
// must be a regular file of at most 1 MiB; anything else is a flag error at start.
func TestWebConfigFileMustBeRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#\n"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/dev/zero": "not a regular file (a character device)",
		fifo:        "not a regular file (a named pipe)",
		dir:         "not a regular file (a directory)",
		big:         "2097152 bytes, more than the limit of 1048576",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, binary, "--demo", "--web.listen-address="+freeAddr(t), "--web.config.file="+path).CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--web.config.file: "+want) {
			t.Errorf("--web.config.file=%s: %v, want exit 2 saying %q:\n%s", path, err, want, out)
		}
	}
}
