package web

import (
	"net/http"
	"time"
)

// withWriteDeadlines gives each response total to be written (0: no limit) and each of
// its writes stall to complete (0: no limit), so a client that reads nothing is cut off
// after stall, not after total: its write fails, the handler returns, and what it held
// (a place among the scrapes in progress, a buffer) is freed.
//
// The deadlines are the connection's, which the network poller measures against the
// wall clock; they cannot go through an injected clock.
func withWriteDeadlines(h http.Handler, total, stall time.Duration) http.Handler {
	if total <= 0 && stall <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		sw := &stallWriter{ResponseWriter: w, rc: rc, stall: stall}
		if total > 0 {
			sw.end = time.Now().Add(total)
		}
		_ = rc.SetWriteDeadline(sw.end) // the zero time (total 0) clears an older one
		if stall <= 0 {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(sw, r)
		// What the response writer still buffers is sent after the handler returns,
		// maybe long after its last write (a scrape waits for a slot between writes).
		sw.arm()
	})
}

// stallWriter sets the write deadline to stall from now (but not past end) before each
// write (each piece of a large one) and flush.
type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
	end   time.Time
}

func (s *stallWriter) arm() {
	d := time.Now().Add(s.stall)
	if !s.end.IsZero() && s.end.Before(d) {
		d = s.end
	}
	_ = s.rc.SetWriteDeadline(d)
}

// stallPiece is the most a write must send within the stall timeout: the exposition
// writes 192 KiB at a time, and a gzip scrape's cached part 1 MiB at a time, which would
// ask a client over a slow link to read 100 KB/s; in pieces it needs 64 KiB per stall
// timeout (6.5 KB/s at 10 s).
const stallPiece = 64 << 10

func (s *stallWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		piece := p[:min(len(p), stallPiece)]
		s.arm()
		n, err := s.ResponseWriter.Write(piece)
		written += n
		if err != nil {
			return written, err
		}
		p = p[len(piece):]
	}
	return written, nil
}

// Flush sends what is buffered, within the stall deadline.
func (s *stallWriter) Flush() {
	s.arm()
	_ = s.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
