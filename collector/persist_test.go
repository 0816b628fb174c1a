package collector

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

// polledSnapshot is a snapshot of the vendor samples plus a small generated inventory.
func polledSnapshot(t *testing.T) *Snapshot {
	t.Helper()
	r := newRig(t, certviewtest.Inventory{Seed: 4, Certificates: 30, Instances: 60, VendorSamples: true}, nil)
	if err := r.sched.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r.sched.Snapshot()
}

func TestSnapshotRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	want := polledSnapshot(t)
	if err := SaveSnapshot(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Taken.Equal(want.Taken) || got.PollDuration != want.PollDuration || len(got.Certificates) != len(want.Certificates) ||
		len(got.Instances) != len(want.Instances) || got.WeakKey != want.WeakKey || got.SelfSigned != want.SelfSigned {
		t.Fatalf("loaded snapshot differs: %d/%d certificates, %d/%d instances", len(got.Certificates), len(want.Certificates), len(got.Instances), len(want.Instances))
	}
	for i := range want.Certificates {
		a, b := want.Certificates[i], got.Certificates[i]
		if a.CertHash != b.CertHash || !a.NotAfter.Equal(b.NotAfter) || a.CommonName != b.CommonName || a.KeySize != b.KeySize {
			t.Fatalf("certificate %d: %+v != %+v", i, b, a)
		}
	}
	for i := range want.Instances {
		if want.Instances[i] != got.Instances[i] {
			t.Fatalf("instance %d: %+v != %+v", i, got.Instances[i], want.Instances[i])
		}
	}
	now := want.Taken.Add(time.Hour)
	if got.Expired(now) != want.Expired(now) || got.ExpiringWithin(now, 30*24*time.Hour) != want.ExpiringWithin(now, 30*24*time.Hour) {
		t.Fatal("expiry counts differ after loading")
	}
	// Only the snapshot is left in the directory: no temporary file.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries", len(entries))
	}
	// Saving again replaces the file.
	if err := SaveSnapshot(path, got); err != nil {
		t.Fatal(err)
	}
}

// The vendor samples, saved and loaded, render exactly the golden exposition.
func TestLoadedSnapshotRendersTheSame(t *testing.T) {
	r := newRig(t, certviewtest.Inventory{VendorSamples: true}, nil)
	if err := r.sched.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "snapshot")
	if err := SaveSnapshot(path, r.sched.Snapshot()); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	r.sched.snap.Store(loaded)
	r.clock.Advance(90 * time.Second)
	golden(t, NewExporter(r.sched, ExporterOptions{PerCertificate: true, PerInstance: true, Clock: r.clock}), "vendor_samples.prom", snapshotFamilies...)
}

func TestDamagedSnapshotsAreRefused(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := SaveSnapshot(good, polledSnapshot(t)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	flip := append([]byte(nil), raw...)
	flip[len(flip)/2] ^= 0xff
	version := append([]byte(nil), raw...)
	binary.BigEndian.PutUint32(version[8:12], 99)
	huge := append([]byte(nil), raw...)
	binary.BigEndian.PutUint64(huge[12:20], 1<<40)
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":         {nil, "header: EOF (truncated?)"},
		"short header":  {raw[:10], "header: unexpected EOF (truncated?)"},
		"truncated":     {raw[:len(raw)-100], "bytes (truncated?)"},
		"corrupt":       {flip, "checksum mismatch (corrupt)"},
		"wrong version": {version, "format version 99; this exporter reads versions 1 to 3"},
		"foreign":       {[]byte("{\"certificates\": []} and some more bytes to fill a header"), "not a certview_exporter snapshot (bad magic)"},
		"huge length":   {huge, "over the"},
	}
	for name, tc := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSnapshot(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want it to name the file and say %q", name, err, tc.want)
		}
	}
	if _, err := LoadSnapshot(filepath.Join(dir, "missing")); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("missing file: %v", err)
	}
	if err := SaveSnapshot(filepath.Join(dir, "no", "such", "dir"), polledSnapshot(t)); err == nil {
		t.Error("saving into a missing directory succeeded")
	}
}

// A restart with a saved snapshot serves it at once, reports up 0 and the saved time as
// the last success, and makes no API call until the snapshot falls due.
func TestRestartServesTheSavedSnapshotWithoutAPICalls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	inv := certviewtest.Inventory{Seed: 8, Certificates: 40, Instances: 80}
	first := newRig(t, inv, func(o *SchedulerOptions, _ *certview.Config) { o.SnapshotPath = path })
	if err := first.sched.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	taken := first.sched.Snapshot().Taken

	second := newRig(t, inv, func(o *SchedulerOptions, _ *certview.Config) { o.SnapshotPath = path })
	second.clock.Advance(20 * time.Minute) // the restart, 20 minutes after that poll
	second.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := second.clock.BlockUntilContext(ctx, 1); err != nil { // waiting for the snapshot to fall due
		t.Fatal(err)
	}
	if !second.sched.Ready() {
		t.Fatal("not ready with a saved snapshot")
	}
	h := second.sched.Health()
	if h.Up || !h.LastSuccess.Equal(taken) || second.srv.Sim.Requests("auth")+second.srv.Sim.Requests("certificates") != 0 {
		t.Fatalf("health %+v, %d API calls; want up 0, the saved time, no calls", h, second.srv.Sim.Requests("certificates"))
	}
	values := scrapeValues(t, NewExporter(second.sched, ExporterOptions{Clock: second.clock}))
	if values["qualys_certview_up"] != 0 || values["qualys_certview_certificates"] != 40 ||
		values["qualys_certview_last_poll_success_timestamp_seconds"] != float64(taken.UnixNano())/1e9 {
		t.Fatalf("metrics after restart: %v", values)
	}
	if !strings.Contains(second.logs.String(), `msg="serving the saved snapshot"`) {
		t.Fatalf("no log line:\n%s", second.logs.String())
	}
	// 40 minutes later the snapshot is an interval old: the first poll runs.
	second.clock.Advance(40 * time.Minute)
	if p := second.nextPoll(); p.err != nil || !second.sched.Health().Up {
		t.Fatalf("first poll after the restart: %v", p.err)
	}
}

func TestDamagedSnapshotAtStartIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, certviewtest.Inventory{Seed: 8, Certificates: 5}, func(o *SchedulerOptions, _ *certview.Config) { o.SnapshotPath = path })
	r.start()
	if p := r.nextPoll(); p.err != nil {
		t.Fatal(p.err)
	}
	if !strings.Contains(r.logs.String(), `msg="ignoring the saved snapshot" err="snapshot `+path+`: not a certview_exporter snapshot (bad magic)"`) {
		t.Fatalf("no warning:\n%s", r.logs.String())
	}
	// The good poll replaced the damaged file.
	if _, err := LoadSnapshot(path); err != nil {
		t.Fatal(err)
	}
}

// writeV1Snapshot writes s in format version 1: the records and times only.
func writeV1Snapshot(path string, s *Snapshot) error {
	type v1File struct {
		Taken        time.Time
		PollDuration time.Duration
		Certificates []Certificate
		Instances    []Instance
	}
	return saveFile(path, 1, v1File{s.Taken, s.PollDuration, s.Certificates, s.Instances})
}
