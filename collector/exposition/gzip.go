package exposition

import (
	"compress/flate"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/certview-exporter/certview_exporter/collector/snapshot"
	"github.com/go-kit/log/level"
)

// prepared is a published snapshot and what the exposition derived from it.
type prepared struct {
	snap   *snapshot.Snapshot
	whole  *part        // every certificate and instance
	static *staticCache // nil when compressing failed: gzip scrapes compress it all

	cutMu     sync.Mutex  // one cut into shards at a time
	shardMu   sync.Mutex  // guards shardSets, never held while cutting
	shardSets []*shardSet // the shard counts cut so far, most recently used first
}

// Publish serves snap from now on, once its static families are compressed, whole and
// cut into the shard counts in use (shardCountIdle): scrapes until then serve the
// previous snapshot, so none waits for the compression. A nil snap is ignored;
// publishing the snapshot already served does nothing.
func (e *Exposition) Publish(snap *snapshot.Snapshot) {
	if snap == nil {
		return
	}
	e.publishMu.Lock()
	defer e.publishMu.Unlock()
	prev := e.served.Load()
	if prev != nil && prev.snap == snap {
		return
	}
	whole := wholePart(snap)
	next := &prepared{snap: snap, whole: whole, static: e.compressStatic(snap, whole)}
	if prev != nil {
		now := e.opts.Clock.Now()
		uses := prev.shardUses()
		for k := len(uses) - 1; k >= 0; k-- { // the most recently used ends up first
			u := uses[k]
			if !u.scraped && now.Sub(u.lastScrape) > shardCountIdle {
				continue // out of use
			}
			set := next.shards(e, u.n, time.Time{})
			next.shardMu.Lock()
			set.lastScrape = u.lastScrape
			next.shardMu.Unlock()
		}
	}
	e.served.Store(next)
}

// compressStatic compresses the snapshot's static families into a raw DEFLATE stream
// that ends with a sync flush (byte-aligned, not final), and notes the CRC-32 and length
// of their text. A gzip scrape sends a gzip header, this stream, the changing families
// through a fresh compressor that ends the stream, and a trailer whose CRC-32 continues
// from the cached one: a single, ordinary gzip member.
//
// p says which certificates and instances: all of them, or a shard's.
func (e *Exposition) compressStatic(s *snapshot.Snapshot, p *part) *staticCache {
	out := &chunks{}
	fw := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(fw)
	fw.Reset(out)
	sum := &checksum{w: fw}
	lw := &lineWriter{buf: make([]byte, 0, 256<<10), w: sum}
	e.writeStatic(lw, s, p)
	lw.flush()
	if err := fw.Flush(); err != nil || lw.err != nil {
		level.Warn(e.opts.Logger).Log("msg", "compressing the static families failed; gzip scrapes will compress them each time", "err", err)
		return nil
	}
	out.trim()
	return &staticCache{deflate: out.list, crc: sum.crc, size: sum.n}
}

// chunks collects a stream in 1 MiB pieces: unlike a growing buffer it never copies and
// never holds more than a piece of slack, which matters when two snapshots are alive.
type chunks struct{ list [][]byte }

const chunkSize = 1 << 20

func (c *chunks) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(c.list) == 0 || len(c.list[len(c.list)-1]) == chunkSize {
			c.list = append(c.list, make([]byte, 0, chunkSize))
		}
		last := &c.list[len(c.list)-1]
		k := copy((*last)[len(*last):chunkSize], p)
		*last = (*last)[:len(*last)+k]
		p = p[k:]
	}
	return n, nil
}

// trim gives the last piece back its slack: a snapshot cut into 32 shards would
// otherwise hold up to 32 MiB of it.
func (c *chunks) trim() {
	if n := len(c.list); n > 0 && cap(c.list[n-1]) > len(c.list[n-1]) {
		c.list[n-1] = append([]byte(nil), c.list[n-1]...)
	}
}

// staticCache is a snapshot's static families, compressed once.
type staticCache struct {
	deflate [][]byte // raw DEFLATE in pieces, sync-flushed, not final
	crc     uint32   // CRC-32 (IEEE) of the text
	size    uint32   // length of the text, modulo 2^32 as gzip's trailer has it
}

// checksum passes writes on while it keeps the CRC-32 and length of what went through.
type checksum struct {
	w   io.Writer
	crc uint32
	n   uint32
}

func (c *checksum) Write(p []byte) (int, error) {
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p)
	c.n += uint32(len(p))
	return c.w.Write(p)
}

// gzipHeader is a minimal gzip member header: deflate, no name, no time, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

var flateWriters = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(io.Discard, flate.BestSpeed)
	return fw
}}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}
