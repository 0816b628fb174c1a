// Package store owns the snapshot file: the format, writing it atomically and reading it
// back with every fault named. It saves a snapshot's records and nothing derived from
// them, and it knows nothing of polls or of what is served.
package store

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/regularfile"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// The saved snapshot's format: a fixed header, then a gzip-compressed stream of gob
// values: snapshotFile without its records, then the records (see records; before
// version 5, snapshotFile with its records, as one value). The header carries the format version, the payload's length and its
// CRC-32C, so a truncated, corrupt or foreign file is refused before it is decoded.
//
//	offset size
//	0      8    magic "CVSNAP\r\n"
//	8      4    format version, big-endian
//	12     8    payload length, big-endian
//	20     4    CRC-32C of the payload, big-endian
//	24     n    payload
const (
	snapshotMagic = "CVSNAP\r\n"
	// SnapshotVersion 2 adds the poll kind, the full listing's times, the watermark and
	// the ids; a version 1 file still loads, without them, so the next poll is full.
	// Version 3 adds the assets' tags; without them, the next poll with owners on is full.
	// Version 4 adds the origin: the fingerprint of the settings that made the snapshot.
	// Version 5 streams the records after the rest, in batches (see records), so that
	// neither a save nor a load holds the whole payload encoded.
	SnapshotVersion = 5
	// snapshotStreamed is the first version that streams its records.
	snapshotStreamed = 5
	headerSize       = 24
	// maxSnapshotBytes bounds what a load reads: far above a million certificates.
	maxSnapshotBytes = 2 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// snapshotFile is what is saved: the records and the times. Counts are derived again
// on load. Since version 5 the records follow it in batches and its own are empty.
type snapshotFile struct {
	Taken        time.Time
	PollDuration time.Duration
	Certificates []snapshot.Certificate
	Instances    []snapshot.Instance
	// Since version 2.
	Kind                      string
	FullStarted, FullFinished time.Time
	Watermark                 time.Time
	MaxCertID                 int64
	// Since version 3: the assets' tags, for owners.
	AssetTags  map[uint64][]string
	TagsListed bool
	// Since version 4: where the records came from.
	Origin snapshot.Fingerprint
}

// Save writes the snapshot's records to path atomically: a temporary file in the same
// directory, fsync, rename, then fsync of the directory. A reader sees the old file or
// the new one, never a part.
func Save(path string, s *snapshot.Snapshot) error {
	head := snapshotFile{Taken: s.Taken, PollDuration: s.PollDuration, Kind: s.Kind, FullStarted: s.FullStarted,
		FullFinished: s.FullFinished, Watermark: s.Watermark, MaxCertID: s.MaxCertID, AssetTags: s.AssetTags,
		TagsListed: s.TagsListed, Origin: s.Origin}
	return saveFile(path, snapshotMagic, SnapshotVersion, head, &records{certs: s.Certificates, ins: s.Instances})
}

// saveFile writes head, then the records of rec in batches (see records), as a file of
// the given magic and format version. It streams: the payload goes through gzip to the
// file as it is encoded, and only one batch is ever held encoded; the header, which
// carries the payload's length and checksum, is written last, over its place. rec nil
// writes head alone, as formats before streaming did.
func saveFile(path, magic string, version uint32, head any, rec *records) error {
	return saveStream(path, magic, version, func(enc *gob.Encoder) error {
		if err := enc.Encode(head); err != nil || rec == nil {
			return err
		}
		return rec.encode(enc)
	})
}

// saveStream writes the gob values body encodes as the payload of a file of the given
// magic and format version, atomically (see Save).
func saveStream(path, magic string, version uint32, body func(*gob.Encoder) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // a no-op once renamed
	err = writePayload(tmp, magic, version, body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: writing: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// writePayload writes the header's place, the payload, then the header over its place.
func writePayload(f *os.File, magic string, version uint32, body func(*gob.Encoder) error) error {
	var header [headerSize]byte
	if _, err := f.Write(header[:]); err != nil {
		return err
	}
	buf := bufio.NewWriterSize(f, 1<<20)
	sum := &crcWriter{w: buf}
	zw := gzip.NewWriter(sum)
	if err := body(gob.NewEncoder(zw)); err != nil {
		return fmt.Errorf("encoding: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	if err := buf.Flush(); err != nil {
		return err
	}
	copy(header[:8], magic)
	binary.BigEndian.PutUint32(header[8:12], version)
	binary.BigEndian.PutUint64(header[12:20], sum.n)
	binary.BigEndian.PutUint32(header[20:24], sum.crc)
	_, err := f.WriteAt(header[:], 0)
	return err
}

// checksum is the CRC-32C and length of a payload, as it passes.
type checksum struct {
	crc uint32
	n   uint64
}

func (c *checksum) add(p []byte) {
	c.crc = crc32.Update(c.crc, crcTable, p)
	c.n += uint64(len(p))
}

// crcWriter keeps the checksum of what is written through it.
type crcWriter struct {
	w io.Writer
	checksum
}

func (c *crcWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.add(p[:k])
	return k, err
}

// ErrNoSnapshot says there is no saved snapshot yet.
var ErrNoSnapshot = errors.New("no saved snapshot")

// Load reads a snapshot saved by Save, its owners resolved by rules (nil: owners off). Any damage (a short file, a
// wrong magic or version, a checksum mismatch, an undecodable payload) is an error
// naming the file and the fault.
func Load(path string, rules *snapshot.OwnerRules) (*snapshot.Snapshot, error) {
	f, err := openRegular(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoSnapshot
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	defer f.Close()
	s, err := Read(f, rules)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return s, nil
}

// openRegular opens path for reading, without blocking, and refuses anything but a
// regular file: a named pipe at the snapshot's path would otherwise block the open until
// a writer came, and the poll loop (and SIGTERM, which waits for it) with it; a device
// such as /dev/zero would be read without end.
func openRegular(path string) (*os.File, error) {
	f, _, err := regularfile.Open(path)
	return f, err
}

// crcReader keeps the checksum of what is read through it.
type crcReader struct {
	r io.Reader
	checksum
}

func (c *crcReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.add(p[:k])
	return k, err
}

// Read decodes a saved snapshot from r, its owners resolved by rules (nil: owners off).
func Read(r io.Reader, rules *snapshot.OwnerRules) (*snapshot.Snapshot, error) {
	var sf snapshotFile
	rec := &records{}
	if _, err := readFile(r, snapshotMagic, "certview_exporter snapshot", SnapshotVersion, snapshotStreamed, &sf, rec); err != nil {
		return nil, err
	}
	if sf.Taken.IsZero() {
		return nil, errors.New("payload: no poll time")
	}
	if rec.streamed {
		sf.Certificates, sf.Instances = rec.certs, rec.ins
	}
	return snapshot.Restore(snapshot.Records{Taken: sf.Taken, PollDuration: sf.PollDuration,
		Certificates: sf.Certificates, Instances: sf.Instances, Kind: sf.Kind,
		FullStarted: sf.FullStarted, FullFinished: sf.FullFinished, Watermark: sf.Watermark, MaxCertID: sf.MaxCertID,
		AssetTags: sf.AssetTags, TagsListed: sf.TagsListed, Origin: sf.Origin}, rules), nil
}

// inflateLimit bounds what a payload of n bytes may inflate to: gob and gzip make a
// snapshot about five times smaller, so thirty-two times is far above any real file and
// far below what a gzip bomb would unpack.
func inflateLimit(n uint64) int64 { return int64(min(32*n+64<<20, 8*maxSnapshotBytes)) }

// readFile checks the header of a file written by saveFile (what names the kind of file
// in errors) and decodes its payload into head and, from version streamed on, the
// records after it into rec; it returns the file's format version. The payload is
// decoded as it streams in and checksummed on the way: nothing is trusted until the
// whole payload has been read and its checksum matched, and what it inflates to is
// bounded.
func readFile(r io.Reader, magic, what string, newest, streamed uint32, head any, rec *records) (uint32, error) {
	var header [headerSize]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return 0, fmt.Errorf("header: %w (truncated?)", err)
	}
	if string(header[:8]) != magic {
		return 0, fmt.Errorf("not a %s (bad magic)", what)
	}
	version := binary.BigEndian.Uint32(header[8:12])
	if version < 1 || version > newest {
		return 0, fmt.Errorf("format version %d; this exporter reads versions 1 to %d", version, newest)
	}
	n := binary.BigEndian.Uint64(header[12:20])
	if n > maxSnapshotBytes {
		return 0, fmt.Errorf("payload of %d bytes is over the %d-byte limit", n, maxSnapshotBytes)
	}
	pr := &crcReader{r: io.LimitReader(r, int64(n))}
	zr, err := gzip.NewReader(bufio.NewReaderSize(pr, 256<<10))
	inflated := &countingReader{}
	if err == nil {
		inflated.r = io.LimitReader(zr, inflateLimit(n)+1)
		dec := gob.NewDecoder(inflated)
		err = dec.Decode(head)
		if err == nil && version >= streamed {
			err = rec.decode(dec)
		}
	}
	if err == nil {
		_, err = io.Copy(io.Discard, pr) // the rest, for the checksum and the length
	}
	switch {
	case inflated.n > inflateLimit(n):
		return 0, fmt.Errorf("payload of %d bytes inflates past %d bytes (a gzip bomb?)", n, inflateLimit(n))
	case pr.n < n:
		return 0, fmt.Errorf("payload: %d of %d bytes (truncated?)", pr.n, n)
	case pr.crc != binary.BigEndian.Uint32(header[20:24]):
		return 0, errors.New("checksum mismatch (corrupt)")
	case err != nil:
		return 0, fmt.Errorf("payload: %w", err)
	}
	return version, nil
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// CleanTemp removes the temporary files that an interrupted save left beside path (a
// process killed while it wrote), and returns how many it removed.
func CleanTemp(path string) (int, error) {
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(path), "."+globEscape(filepath.Base(path))+".tmp-*"))
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, m := range matches {
		if st, err := os.Lstat(m); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(m); err == nil {
			removed++
		}
	}
	return removed, nil
}

// globEscape escapes the characters filepath.Match treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
