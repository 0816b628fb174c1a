package poll

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/exposition"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/certview-exporter/certview_exporter/collector/store"
)

// A restart with a saved snapshot serves it at once, reports up 0 and the saved time as
// the last success, and makes no API call until the snapshot falls due.
func TestRestartServesTheSavedSnapshotWithoutAPICalls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	inv := certviewtest.Inventory{Seed: 8, Certificates: 40, Instances: 80}
	first := newRig(t, inv, func(o *Options, _ *certview.Config) { o.SnapshotPath = path })
	if err := first.loop.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	taken := first.loop.Snapshot().Taken

	second := newRig(t, inv, func(o *Options, _ *certview.Config) { o.SnapshotPath = path })
	second.clock.Advance(20 * time.Minute) // the restart, 20 minutes after that poll
	second.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := second.clock.BlockUntilContext(ctx, 1); err != nil { // waiting for the snapshot to fall due
		t.Fatal(err)
	}
	if !second.loop.Ready() {
		t.Fatal("not ready with a saved snapshot")
	}
	h := second.loop.Health()
	if h.Up || !h.LastSuccess.Equal(taken) || second.srv.Sim.Requests("auth")+second.srv.Sim.Requests("certificates") != 0 {
		t.Fatalf("health %+v, %d API calls; want up 0, the saved time, no calls", h, second.srv.Sim.Requests("certificates"))
	}
	expo, err := exposition.New(second.loop, nil, exposition.Options{Interval: time.Hour, Clock: second.clock})
	if err != nil {
		t.Fatal(err)
	}
	expo.Publish(second.loop.Snapshot())
	rec := httptest.NewRecorder()
	expo.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{"\nqualys_certview_up 0\n", "\nqualys_certview_certificates 40\n",
		fmt.Sprintf("\nqualys_certview_last_poll_success_timestamp_seconds %d\n", taken.Unix())} {
		if !strings.Contains(body, want) {
			t.Fatalf("the exposition after the restart lacks %q:\n%s", strings.TrimSpace(want), body)
		}
	}
	if !strings.Contains(second.logs.String(), `msg="serving the saved snapshot"`) {
		t.Fatalf("no log line:\n%s", second.logs.String())
	}
	// 40 minutes later the snapshot is an interval old: the first poll runs.
	second.clock.Advance(40 * time.Minute)
	if p := second.nextPoll(); p.err != nil || !second.loop.Health().Up {
		t.Fatalf("first poll after the restart: %v", p.err)
	}
}

func TestDamagedSnapshotAtStartIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, certviewtest.Inventory{Seed: 8, Certificates: 5}, func(o *Options, _ *certview.Config) { o.SnapshotPath = path })
	r.start()
	if p := r.nextPoll(); p.err != nil {
		t.Fatal(p.err)
	}
	if !strings.Contains(r.logs.String(), `msg="ignoring the saved snapshot" err="snapshot `+path+`: not a certview_exporter snapshot (bad magic)"`) {
		t.Fatalf("no warning:\n%s", r.logs.String())
	}
	// The good poll replaced the damaged file.
	if _, err := store.Load(path, nil); err != nil {
		t.Fatal(err)
	}
}

// Incremental polls keep the owners the full listing read, a restart keeps the tags, and
// a snapshot without tags makes the next poll with owners on full.
func TestOwnersAcrossIncrementalPollsAndRestarts(t *testing.T) {
	rules, _ := snapshot.NewOwnerRules(exampleOwners)
	path := t.TempDir() + "/snapshot"
	r := newRig(t, certviewtest.Inventory{Seed: 3, Certificates: 200, Instances: 500}, func(o *Options, cc *certview.Config) {
		o.Owners, o.FullInterval, o.SnapshotPath = rules, 24*time.Hour, path
		cc.Includes = []string{"ASSET_TAGS"}
	})
	full := r.pollAt(0)
	inc := r.pollAt(time.Hour)
	if full.Kind != snapshot.PollFull || inc.Kind != snapshot.PollIncremental {
		t.Fatalf("polls %s, %s; want full, incremental", full.Kind, inc.Kind)
	}
	owners := func(s *snapshot.Snapshot) string {
		var b strings.Builder
		for i := range s.Instances {
			fmt.Fprintf(&b, "%d=%v;", s.Instances[i].ID, s.Owners.Combos[s.Owners.Instance[i]])
		}
		return b.String()
	}
	if inc.Owners == nil || owners(inc) != owners(full) {
		t.Fatal("the incremental poll lost or changed the owners")
	}
	loaded, err := store.Load(path, rules)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.TagsListed || len(loaded.AssetTags) != len(inc.AssetTags) || owners(loaded) != owners(inc) {
		t.Fatal("the saved snapshot lost the asset tags")
	}
	untagged := *loaded
	untagged.TagsListed, untagged.AssetTags = false, nil
	if kind, why := r.loop.pollKind(&untagged, r.clock.Now()); kind != snapshot.PollFull || !strings.Contains(why, "asset tags") {
		t.Fatalf("a snapshot without tags: next poll %s (%s), want full", kind, why)
	}
}
