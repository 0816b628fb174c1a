package web

import (
	"net/http"
)

// scrapeLimit bounds the scrapes: at most cap(slots) render at once (the slot is for
// CPU), at most cap(inProgress) are in progress in total. A scrape holds its slot only
// while it runs: it gives it back for each write to the client and takes it again
// after, so a client that reads slowly, or not at all, costs a place among the scrapes
// in progress but no slot.
type scrapeLimit struct {
	slots      chan struct{}
	inProgress chan struct{}
}

func newScrapeLimit(slots, inProgress int) *scrapeLimit {
	return &scrapeLimit{slots: make(chan struct{}, slots), inProgress: make(chan struct{}, inProgress)}
}

// wrap answers 503 beyond the scrapes in progress; a scrape within waits for a slot
// (until its client goes away).
func (l *scrapeLimit) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case l.inProgress <- struct{}{}:
			defer func() { <-l.inProgress }()
		default:
			http.Error(w, "too many scrapes in progress", http.StatusServiceUnavailable)
			return
		}
		select {
		case l.slots <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		sw := &slotWriter{ResponseWriter: w, slots: l.slots}
		defer func() { <-l.slots }()
		h.ServeHTTP(sw, r)
	})
}

// slotWriter gives the scrape's slot back while it writes to the client, and takes it
// again after. Taking it again does not give up when the request's context ends (the
// client went away, or a write failed): the handler goes on rendering, and that is CPU
// the slots are there to bound. The wait is short, as every slot holder gives its slot
// back before it writes and when it is done.
type slotWriter struct {
	http.ResponseWriter
	slots chan struct{}
}

func (s *slotWriter) Write(p []byte) (int, error) {
	<-s.slots
	defer func() { s.slots <- struct{}{} }()
	return s.ResponseWriter.Write(p)
}

// Flush sends what is buffered, without the slot.
func (s *slotWriter) Flush() {
	<-s.slots
	defer func() { s.slots <- struct{}{} }()
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *slotWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
