// Package web is the exporter's own HTTP server: its routes, the limits that keep a
// scrape of a large inventory from being starved or piled up by hostile clients, the
// connection cap, and the listeners (TLS and basic auth come from exporter-toolkit's
// web configuration).
package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/common/version"
	toolkit "github.com/prometheus/exporter-toolkit/web"
)

// The server's fixed limits; the README's Flags section and SECURITY.md quote them.
const (
	// ScrapeSlots is how many scrapes may render at once (a scrape of a large inventory
	// takes CPU). A scrape gives its slot back while it waits for the client to read.
	ScrapeSlots = 4
	// ScrapesInProgress bounds the scrapes in progress in total, rendering, waiting for a
	// slot or waiting for their client to read; each holds a buffer and maybe a
	// compressor. Beyond it a scrape is answered 503.
	ScrapesInProgress = 16
	// IdleTimeout closes a keep-alive connection with no request for this long
	// (Prometheus scrapes every 15 s to 1 min, and reconnects at no cost).
	IdleTimeout = 30 * time.Second
	// ReadHeaderTimeout and ReadTimeout bound how long a client may take to send its
	// request's headers, and the whole request.
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	// MaxHeaderBytes bounds a request's headers (431 beyond).
	MaxHeaderBytes = 32 << 10
)

// Options are the server's routes and limits.
type Options struct {
	// TelemetryPath is where Metrics is served; see CheckTelemetryPath.
	TelemetryPath string
	// Metrics serves the exposition.
	Metrics http.Handler
	// Ready says whether a snapshot is being served (/-/ready).
	Ready func() bool
	// Reload serves /-/reload; nil answers 403 (no --web.enable-lifecycle), as
	// Prometheus does.
	Reload http.Handler
	// WriteTimeout is the longest a response may take to write (0: no limit).
	WriteTimeout time.Duration
	// StallTimeout is the longest one write of a response may wait for the client to
	// read (0: no limit): a client that reads nothing is cut off after it.
	StallTimeout time.Duration
	// MaxConnections caps the open connections, over all listeners (0: no cap).
	MaxConnections int
}

// Server is the exporter's HTTP server; serve it with Serve or ListenAndServe.
type Server struct {
	// HTTP is the net/http server; Shutdown it to stop.
	HTTP  *http.Server
	conns *connLimit
}

// New routes the metrics, health, readiness, reload and landing pages and sets the
// server's limits.
func New(opts Options) (*Server, error) {
	if err := CheckTelemetryPath(opts.TelemetryPath); err != nil {
		return nil, err
	}
	if opts.Metrics == nil || opts.Ready == nil {
		return nil, errors.New("web: no metrics handler or readiness")
	}
	if opts.WriteTimeout < 0 || opts.StallTimeout < 0 || opts.MaxConnections < 0 {
		return nil, errors.New("web: a negative timeout or connection cap")
	}
	mux := http.NewServeMux()
	mux.Handle(opts.TelemetryPath, newScrapeLimit(ScrapeSlots, ScrapesInProgress).wrap(opts.Metrics))
	reload := opts.Reload
	if reload == nil {
		reload = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "Lifecycle API is not enabled.", http.StatusForbidden)
		})
	}
	mux.Handle("/-/reload", reload)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("Healthy\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !opts.Ready() {
			http.Error(w, "Not ready: no snapshot yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("Ready\n"))
	})
	if opts.TelemetryPath != "/" { // at "/", the metrics take the landing page's place
		landing, err := toolkit.NewLandingPage(toolkit.LandingConfig{
			Name:        "CertView Exporter",
			Description: "Prometheus exporter for Qualys Certificate View",
			Version:     version.Info(),
			Links: []toolkit.LandingLinks{
				{Address: opts.TelemetryPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
				{Address: "/-/ready", Text: "Readiness"},
			},
		})
		if err != nil {
			return nil, err
		}
		mux.Handle("/", landing)
	}

	conns := newConnLimit(opts.MaxConnections)
	return &Server{
		HTTP: &http.Server{
			Handler: withWriteDeadlines(closeOnUnreadBody(mux), opts.WriteTimeout, opts.StallTimeout),
			// Also set here so that net/http gives every request a fresh deadline, those
			// it answers itself (400, 431) and exporter-toolkit's (401, 429) included.
			WriteTimeout:      opts.WriteTimeout,
			ReadHeaderTimeout: ReadHeaderTimeout,
			ReadTimeout:       ReadTimeout,
			IdleTimeout:       IdleTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
			ConnState:         conns.connState,
		},
		conns: conns,
	}, nil
}

// closeOnUnreadBody answers a request that carries a body with Connection: close, and
// then ends the connection's reads: no route reads a body (a reload takes none either).
// Otherwise net/http drains what the handler left unread (up to 256 KiB, under the read
// timeout), before it answers and again when it closes the body, with the connection
// active: a client that announced a body and trickled it held a connection for 30 s,
// and active connections are never closed to make room under the cap.
func closeOnUnreadBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		h.ServeHTTP(w, r)
		// The answer is written before the body is drained: a deadline already past
		// ends the drain at once, and the connection closes.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	})
}
