package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/snapshot/snapshottest"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// generated is a snapshot of a small generated inventory, with a certificate whose
// label values need escaping.
func generated(t *testing.T) *snapshot.Snapshot {
	t.Helper()
	s := snapshottest.Synthetic(30, 60, epoch)
	records := s.Records
	records.Certificates = append(slices.Clone(s.Certificates), snapshot.Certificate{ID: 99, CertHash: "ffff",
		CommonName: "a \"quoted\" \\ name", Organization: "Ünïcode", NotAfter: epoch.Add(time.Hour)})
	records.Instances = slices.Clone(s.Instances)
	return snapshot.Restore(records, nil)
}

func TestSnapshotRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	want := generated(t)
	if err := Save(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, nil)
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
	if err := Save(path, got); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedSnapshotsAreRefused(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := Save(good, generated(t)); err != nil {
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
		"wrong version": {version, fmt.Sprintf("format version 99; this exporter reads versions 1 to %d", SnapshotVersion)},
		"foreign":       {[]byte("{\"certificates\": []} and some more bytes to fill a header"), "not a certview_exporter snapshot (bad magic)"},
		"huge length":   {huge, "over the"},
	}
	for name, tc := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want it to name the file and say %q", name, err, tc.want)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing"), nil); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("missing file: %v", err)
	}
	if err := Save(filepath.Join(dir, "no", "such", "dir"), generated(t)); err == nil {
		t.Error("saving into a missing directory succeeded")
	}
}

// writeV1Snapshot writes s in format version 1: the records and times only.
func writeV1Snapshot(path string, s *snapshot.Snapshot) error {
	type v1File struct {
		Taken        time.Time
		PollDuration time.Duration
		Certificates []snapshot.Certificate
		Instances    []snapshot.Instance
	}
	return saveFile(path, snapshotMagic, 1, v1File{s.Taken, s.PollDuration, s.Certificates, s.Instances}, nil)
}

// A version 1 file loads with its records, but without a watermark or the full
// listing's times, so that the next poll is full.
func TestVersion1SnapshotLoadsWithoutWatermark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	want := generated(t)
	if err := writeV1Snapshot(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Certificates) != len(want.Certificates) || len(got.Instances) != len(want.Instances) || !got.Taken.Equal(want.Taken) {
		t.Fatalf("version 1: %d/%d certificates, %d/%d instances", len(got.Certificates), len(want.Certificates), len(got.Instances), len(want.Instances))
	}
	if !got.Watermark.IsZero() || !got.FullStarted.IsZero() || got.TagsListed {
		t.Fatalf("version 1 loaded with a watermark %v, full start %v, tags %v", got.Watermark, got.FullStarted, got.TagsListed)
	}
}

// A small file that inflates to far more than a snapshot of its size could is refused
// once past the limit, naming it, not decoded whole: a gzip bomb cannot take the memory.
func TestInflationIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	bomb := struct{ Filler string }{strings.Repeat("a", 100<<20)}
	if err := saveFile(path, snapshotMagic, 4, bomb, nil); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	_, err := Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), "inflates past") {
		t.Fatalf("a %d-byte file inflating to 100 MiB: %v", st.Size(), err)
	}
}

// What an interrupted save left beside the file is removed; nothing else is.
func TestCleanTempRemovesLeftoversOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "snapshot")
	for _, name := range []string{".snapshot.tmp-1", ".snapshot.tmp-22", "snapshot", "other", ".other.tmp-1"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := CleanTemp(path)
	if err != nil || n != 2 {
		t.Fatalf("removed %d, %v; want the 2 leftovers", n, err)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, ",") != ".other.tmp-1,other,snapshot" {
		t.Fatalf("left %v", left)
	}
}

// A snapshot keeps its origin through the file.
func TestOriginRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	s := generated(t)
	records := s.Records
	records.Origin = snapshot.Fingerprint{Subscription: "sub", Content: "content"}
	if err := Save(path, snapshot.Restore(records, nil)); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, nil)
	if err != nil || got.Origin != records.Origin {
		t.Fatalf("origin %+v, %v", got.Origin, err)
	}
}
