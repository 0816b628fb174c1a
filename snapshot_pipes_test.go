//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

// Named pipes at snapshot.path and at its checkpoint (.listing), which anyone who can
// write to the directory may leave there: the binary starts, names the files it refused,
// polls, saves its snapshot over the pipe, and stops on SIGTERM. (A pipe there used to
// block the poll loop's open until a writer came, and SIGTERM, which waits for the loop,
// with it.)
func TestSnapshotPipesDoNotHoldThePollLoop(t *testing.T) {
	srv := certviewtest.NewServer(certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 5, Certificates: 60, Instances: 150},
		RateLimit: 100000})
	defer srv.Close()
	snapshot := filepath.Join(t.TempDir(), "snapshot")
	for _, path := range []string{snapshot, snapshot + ".listing"} {
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	config := writeConfig(t, srv.URL, "1h")
	if err := appendFile(config, "snapshot:\n  path: "+snapshot+"\n"); err != nil {
		t.Fatal(err)
	}
	p := startExporter(t, []string{"QUALYS_PASSWORD=demo-password"}, "--config.file="+config)
	p.eventually("/-/healthy", func() bool { code, _ := p.get("/-/healthy"); return code == 200 })
	p.eventually("a successful poll", func() bool { return orZero(sample(p.scrape(), "qualys_certview_up", nil)) == 1 })
	p.eventually("the snapshot saved over the pipe", func() bool {
		st, err := os.Lstat(snapshot)
		return err == nil && st.Mode().IsRegular()
	})
	for _, refused := range []string{"snapshot " + snapshot, "listing checkpoint " + snapshot + ".listing"} {
		if !strings.Contains(p.logs.String(), refused+": not a regular file (a named pipe)") {
			t.Errorf("the log does not name the refused pipe: %s", refused)
		}
	}
	p.terminate(10 * time.Second)
}
