package store

import (
	"encoding/gob"
	"fmt"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// records are what a file streams after its head: their counts, then the certificates
// and the instances in batches of at most recordBatch. A save holds one batch encoded
// at a time, not the whole payload (at 100,000 certificates and 300,000 instances gob
// had built about 120 MB to write a 30 MB file).
type records struct {
	certs    []snapshot.Certificate
	ins      []snapshot.Instance
	streamed bool // decode found them streamed
}

// recordCounts heads the streamed records.
type recordCounts struct{ Certificates, Instances int }

const (
	// recordBatch is the most records one gob value of the stream holds.
	recordBatch = 4096
	// maxRecords bounds the counts a file may announce (far above any subscription):
	// beyond it the file is refused before a record is read.
	maxRecords = 1 << 24
	// preallocate bounds what the counts reserve before the records are read (the
	// checksum is only known at the end): a file that announces more grows its slices as
	// its records arrive, so a damaged one cannot reserve memory it does not hold.
	preallocate = 8 * recordBatch
)

func (r *records) encode(enc *gob.Encoder) error {
	if err := enc.Encode(recordCounts{len(r.certs), len(r.ins)}); err != nil {
		return err
	}
	if err := encodeBatches(enc, r.certs); err != nil {
		return err
	}
	return encodeBatches(enc, r.ins)
}

func encodeBatches[T any](enc *gob.Encoder, all []T) error {
	for start := 0; start < len(all); start += recordBatch {
		if err := enc.Encode(all[start:min(start+recordBatch, len(all))]); err != nil {
			return err
		}
	}
	return nil
}

func (r *records) decode(dec *gob.Decoder) error {
	var n recordCounts
	if err := dec.Decode(&n); err != nil {
		return fmt.Errorf("record counts: %w", err)
	}
	if n.Certificates < 0 || n.Instances < 0 || n.Certificates > maxRecords || n.Instances > maxRecords {
		return fmt.Errorf("record counts %d and %d: each must be 0 to %d", n.Certificates, n.Instances, maxRecords)
	}
	var err error
	if r.certs, err = decodeBatches[snapshot.Certificate](dec, n.Certificates, "certificates"); err != nil {
		return err
	}
	if r.ins, err = decodeBatches[snapshot.Instance](dec, n.Instances, "instances"); err != nil {
		return err
	}
	r.streamed = true
	return nil
}

// decodeBatches reads batches until want records are read; a batch past recordBatch
// or past want is refused.
func decodeBatches[T any](dec *gob.Decoder, want int, what string) ([]T, error) {
	out := make([]T, 0, min(want, preallocate))
	for len(out) < want {
		var batch []T
		if err := dec.Decode(&batch); err != nil {
			return nil, fmt.Errorf("%s %d of %d: %w", what, len(out), want, err)
		}
		if len(batch) == 0 || len(batch) > recordBatch || len(out)+len(batch) > want {
			return nil, fmt.Errorf("%s: a batch of %d after %d of %d", what, len(batch), len(out), want)
		}
		out = append(out, batch...)
	}
	return out, nil
}
