package certview

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
)

func TestNarrow(t *testing.T) {
	term := FilterTerm{Field: "instance.scannedDate", Operator: "GREATER_THAN_EQUAL", Value: "2026-11-01T00:00:00Z"}
	port := FilterTerm{Field: "instance.port", Operator: "EQUALS", Value: "443"}
	if f, err := Narrow(nil); f != nil || err != nil {
		t.Fatalf("nothing narrowed: %v %v", f, err)
	}
	if f, _ := Narrow(nil, term); f.Operation != "AND" || len(f.Filters) != 1 {
		t.Fatalf("one term: %+v", f)
	}
	user := &Filter{Operation: "OR", Filters: []FilterTerm{port}}
	f, err := Narrow(user, term)
	if err != nil || f.Operation != "AND" || len(f.Filters) != 2 || len(user.Filters) != 1 {
		t.Fatalf("a one-term OR is an AND, and the user's filter is not modified: %+v %v", f, err)
	}
	user.Filters = append(user.Filters, port)
	if _, err := Narrow(user, term); !errors.Is(err, ErrNotNarrowable) {
		t.Fatalf("a two-term OR: %v", err)
	}
}

// TestWhereListingsAgainstChurn: the narrowed listings return what churn changed, and
// the simulator's filter faults behave as documented.
func TestWhereListingsAgainstChurn(t *testing.T) {
	r := newRig(t, certviewtest.Options{Inventory: certviewtest.Inventory{Seed: 4, Certificates: 100, Instances: 300}, RateLimit: 100000}, nil)
	r.clock.Advance(2 * time.Hour)
	churn := r.srv.Sim.Churn(certviewtest.Churn{Rescan: 0.1, Add: 4, Remove: 5, Lag: 10 * time.Minute})
	if len(churn.Rescanned) != 30 || len(churn.Added) != 4 || len(churn.Removed) != 5 {
		t.Fatalf("churn %d/%d/%d", len(churn.Rescanned), len(churn.Added), len(churn.Removed))
	}
	since := churn.RescanCutoff
	for _, layout := range []string{"2006-01-02T15:04:05Z", "2006-01-02 15:04:05", "epoch"} {
		value := since.UTC().Format(layout)
		if layout == "epoch" {
			value = strconv.FormatInt(since.UnixMilli(), 10)
		}
		var got []Instance
		err := r.run(func(ctx context.Context) error {
			_, err := r.c.ListInstancesWhere(ctx, []FilterTerm{{Field: "instance.scannedDate", Operator: "GREATER_THAN_EQUAL", Value: value}},
				func(p []Instance) error { got = append(got, p...); return nil })
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// The rescans (minus any removed in the same round) and the new instances.
		want := map[int64]bool{}
		for _, id := range append(append([]int64(nil), churn.Rescanned...), churn.AddedOn...) {
			want[id] = true
		}
		for _, id := range churn.Removed {
			delete(want, id)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d instances scanned since %s, want %d", layout, len(got), value, len(want))
		}
		for _, in := range got {
			if !want[in.ID] || in.ScannedDate.Before(since) {
				t.Fatalf("%s: instance %d (scanned %s) was not changed", layout, in.ID, in.ScannedDate)
			}
		}
	}
	// The full listing no longer holds the removed instances.
	_, all, err := r.listInstances()
	if err != nil || len(all) != 300+4-5 {
		t.Fatalf("full listing: %d instances, %v", len(all), err)
	}
	// New certificates: by id GREATER and by id IN.
	ids := ""
	for i, id := range churn.Added {
		if i > 0 {
			ids += ","
		}
		ids += strconv.FormatInt(id, 10)
	}
	var byID []Certificate
	if err := r.run(func(ctx context.Context) error {
		_, err := r.c.ListCertificatesWhere(ctx, []FilterTerm{{Field: "certificate.id", Operator: "IN", Value: ids}},
			func(p []Certificate) error { byID = append(byID, p...); return nil })
		return err
	}); err != nil || len(byID) != 4 {
		t.Fatalf("certificate.id IN: %d certificates, %v", len(byID), err)
	}
	// Filter faults: refused answers 400, ignored answers everything.
	r.srv.Sim.SetFilterFault("certificate.id", certviewtest.FilterRefused)
	err = r.run(func(ctx context.Context) error {
		_, err := r.c.ListCertificatesWhere(ctx, []FilterTerm{{Field: "certificate.id", Operator: "GREATER", Value: "0"}}, func([]Certificate) error { return nil })
		return err
	})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("refused filter: %v", err)
	}
	r.srv.Sim.SetFilterFault("certificate.id", certviewtest.FilterIgnored)
	n := 0
	if err := r.run(func(ctx context.Context) error {
		_, err := r.c.ListCertificatesWhere(ctx, []FilterTerm{{Field: "certificate.id", Operator: "IN", Value: ids}}, func(p []Certificate) error { n += len(p); return nil })
		return err
	}); err != nil || n != 104 {
		t.Fatalf("ignored filter: %d certificates (want all 104), %v", n, err)
	}
}
