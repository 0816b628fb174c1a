package store

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// A full listing that takes hours on a subscription's budget is saved as it goes, beside
// the snapshot file, in a checkpoint of the same format (another magic): the ranges done,
// what they held, and the plan for the rest. A restart goes on from there.
const (
	listingMagic = "CVLIST\r\n"
	// ListingVersion is the checkpoint's format version. Version 2 streams the records
	// after the rest, as the snapshot's version 5 does.
	ListingVersion = 2
	// listingStreamed is the first version that streams its records.
	listingStreamed = 2
)

// ListingPath is where the checkpoint of a full listing is kept, beside the snapshot
// file at snapshotPath.
func ListingPath(snapshotPath string) string { return snapshotPath + ".listing" }

// RangePlan is one API's plan, as a checkpoint keeps it.
type RangePlan struct {
	After  int64   // every id up to After is listed
	Bounds []int64 // the upper bounds of the next planned ranges
	Width  int64   // the width of the next range when Bounds is empty; 0: probe
	Done   bool
	Ranges int // ranges finished
	// PerRange is how many records a range is planned to hold.
	PerRange int
	Pages    int  // calls made
	Total    int  // records listed
	Ranged   bool // the API is listed by id ranges (else whole, in one go)
	Known    int  // records the previous snapshot held (0: unknown)
}

// Listing is a full listing in progress.
type Listing struct {
	Origin  snapshot.Fingerprint
	Started time.Time
	Plans   map[string]RangePlan // by endpoint
	// Records are those of the ranges done: unsorted, perhaps with repeats.
	Records snapshot.Records
	// Touched are the records incremental polls fetched meanwhile (see
	// snapshot.Builder.BuildOver).
	TouchedInstances    []int64
	TouchedCertificates []string
	// FQDNs are the host instances' fqdns the certificates listed so far named.
	FQDNs map[int64]string
}

// SaveListing writes a checkpoint to path atomically, as Save does.
func SaveListing(path string, l *Listing) error {
	head := *l
	head.Records.Certificates, head.Records.Instances = nil, nil
	return saveFile(path, listingMagic, ListingVersion, &head, &records{certs: l.Records.Certificates, ins: l.Records.Instances})
}

// ErrNoListing says there is no checkpoint.
var ErrNoListing = errors.New("no full listing in progress")

// LoadListing reads a checkpoint saved by SaveListing; any damage is an error naming the
// file and the fault.
func LoadListing(path string) (*Listing, error) {
	f, err := openRegular(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoListing
	}
	if err != nil {
		return nil, fmt.Errorf("listing checkpoint %s: %w", path, err)
	}
	defer f.Close()
	var l Listing
	rec := &records{}
	if _, err := readFile(f, listingMagic, "certview_exporter listing checkpoint", ListingVersion, listingStreamed, &l, rec); err != nil {
		return nil, fmt.Errorf("listing checkpoint %s: %w", path, err)
	}
	if rec.streamed {
		l.Records.Certificates, l.Records.Instances = rec.certs, rec.ins
	}
	if l.Started.IsZero() {
		return nil, fmt.Errorf("listing checkpoint %s: no start time", path)
	}
	return &l, nil
}

// RemoveListing removes the checkpoint at path; a missing one is no error.
func RemoveListing(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("listing checkpoint %s: %w", path, err)
	}
	return nil
}
