package store

import (
	"encoding/gob"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/snapshot/snapshottest"
)

// A file of format 4 (the records inside the one value) loads as it did, so an upgrade
// keeps serving the saved snapshot and asks for no full listing.
func TestVersion4SnapshotStillLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	want := generated(t)
	v4 := snapshotFile{want.Taken, want.PollDuration, want.Certificates, want.Instances, want.Kind, want.FullStarted,
		want.FullFinished, want.Watermark, want.MaxCertID, want.AssetTags, want.TagsListed, want.Origin}
	if err := saveFile(path, snapshotMagic, 4, v4, nil); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Instances, want.Instances) || len(got.Certificates) != len(want.Certificates) || !got.Watermark.Equal(want.Watermark) {
		t.Fatalf("version 4: %d/%d certificates, %d/%d instances", len(got.Certificates), len(want.Certificates), len(got.Instances), len(want.Instances))
	}
}

// Records stream in batches: a snapshot larger than a batch saves and loads whole, and
// so does a checkpoint.
func TestRecordsStreamInBatches(t *testing.T) {
	s := snapshottest.Synthetic(recordBatch+10, 2*recordBatch+3, epoch)
	path := filepath.Join(t.TempDir(), "snapshot")
	if err := Save(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Instances, s.Instances) || len(got.Certificates) != len(s.Certificates) {
		t.Fatalf("%d/%d certificates, %d/%d instances", len(got.Certificates), len(s.Certificates), len(got.Instances), len(s.Instances))
	}
	for i := range s.Certificates {
		if got.Certificates[i].CertHash != s.Certificates[i].CertHash || !got.Certificates[i].NotAfter.Equal(s.Certificates[i].NotAfter) {
			t.Fatalf("certificate %d differs", i)
		}
	}
	l := &Listing{Started: epoch, Records: s.Records}
	lpath := ListingPath(path)
	if err := SaveListing(lpath, l); err != nil {
		t.Fatal(err)
	}
	back, err := LoadListing(lpath)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Records.Instances, s.Instances) || len(back.Records.Certificates) != len(s.Certificates) {
		t.Fatalf("checkpoint: %d certificates, %d instances", len(back.Records.Certificates), len(back.Records.Instances))
	}
}

// lyingRecords streams records whose counts and batches say something else than the
// records hold.
type lyingRecords struct {
	counts  recordCounts
	batches [][]snapshot.Instance
}

// A stream whose counts lie, or whose batches are too large, is refused with what is
// wrong, before its records are trusted; the checksum of such a file is right, so only
// these checks stop it.
func TestLyingRecordCountsAreRefused(t *testing.T) {
	ins := func(n int) []snapshot.Instance {
		out := make([]snapshot.Instance, n)
		for i := range out {
			out[i].ID = int64(i + 1)
		}
		return out
	}
	for name, tc := range map[string]struct {
		stream lyingRecords
		want   string
	}{
		"more announced than sent": {lyingRecords{recordCounts{0, 5}, [][]snapshot.Instance{ins(3)}}, "instances 3 of 5"},
		"more sent than announced": {lyingRecords{recordCounts{0, 2}, [][]snapshot.Instance{ins(3)}}, "a batch of 3 after 0 of 2"},
		"a batch too large":        {lyingRecords{recordCounts{0, recordBatch + 1}, [][]snapshot.Instance{ins(recordBatch + 1)}}, "a batch of 4097"},
		"a count past the bound":   {lyingRecords{recordCounts{maxRecords + 1, 0}, nil}, "each must be 0 to"},
		"a negative count":         {lyingRecords{recordCounts{-1, 0}, nil}, "each must be 0 to"},
	} {
		path := filepath.Join(t.TempDir(), "snapshot")
		if err := saveLying(path, tc.stream); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// saveLying writes a snapshot of format 5 with the lying stream after its head.
func saveLying(path string, l lyingRecords) error {
	return saveStream(path, snapshotMagic, SnapshotVersion, func(enc *gob.Encoder) error {
		if err := enc.Encode(snapshotFile{Taken: epoch}); err != nil {
			return err
		}
		if err := enc.Encode(l.counts); err != nil {
			return err
		}
		for _, b := range l.batches {
			if err := enc.Encode(b); err != nil {
				return err
			}
		}
		return nil
	})
}
