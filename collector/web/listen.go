package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/mdlayher/vsock"
	toolkit "github.com/prometheus/exporter-toolkit/web"
)

// ListenAndServe serves on the listeners flags name (as exporter-toolkit's
// ListenAndServe does: each --web.listen-address, a vsock:// one included, or the
// systemd socket with --web.systemd-socket) with TLS and basic auth from
// --web.config.file; it returns when the server is shut down or fails.
func (s *Server) ListenAndServe(flags *toolkit.FlagConfig, logger *slog.Logger) error {
	listeners, err := Listen(flags, logger)
	if err != nil {
		return err
	}
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	return s.Serve(listeners, flags, logger)
}

// Serve serves on listeners, within the connection cap, with TLS and basic auth from
// --web.config.file.
func (s *Server) Serve(listeners []net.Listener, flags *toolkit.FlagConfig, logger *slog.Logger) error {
	limited := make([]net.Listener, len(listeners))
	for i, l := range listeners {
		limited[i] = s.conns.wrap(l)
	}
	return toolkit.ServeMultiple(limited, s.HTTP, flags, logger)
}

// Stats returns the connection limiter's figures.
func (s *Server) Stats() Stats { return s.conns.Stats() }

// Listen opens the listeners flags name: the sockets systemd passed (with
// --web.systemd-socket), or one for each --web.listen-address, TCP or vsock://. On an
// error it closes what it opened.
func Listen(flags *toolkit.FlagConfig, logger *slog.Logger) ([]net.Listener, error) {
	if flags == nil || flags.WebConfigFile == nil {
		return nil, toolkit.ErrMissingFlag
	}
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		return inherited(logger)
	}
	if flags.WebListenAddresses == nil || len(*flags.WebListenAddresses) == 0 {
		return nil, toolkit.ErrNoListeners
	}
	opened := make([]net.Listener, 0, len(*flags.WebListenAddresses))
	for _, address := range *flags.WebListenAddresses {
		l, err := listen(address)
		if err != nil {
			for _, o := range opened {
				_ = o.Close()
			}
			return nil, fmt.Errorf("listening on %s: %w", address, err)
		}
		opened = append(opened, l)
	}
	return opened, nil
}

// inherited returns the sockets systemd passed to the process (socket activation).
func inherited(logger *slog.Logger) ([]net.Listener, error) {
	passed, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("systemd socket activation: %w", err)
	}
	var out []net.Listener
	for _, l := range passed {
		if l != nil { // a passed descriptor that is not a stream socket
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--web.systemd-socket: systemd passed no listening socket")
	}
	logger.Info("serving on the sockets systemd passed (--web.systemd-socket); --web.listen-address is not used", "sockets", len(out))
	return out, nil
}

// listen opens one --web.listen-address: host:port over TCP, or vsock://host:port on
// the port given.
func listen(address string) (net.Listener, error) {
	rest, isVsock := strings.CutPrefix(address, "vsock://")
	if !isVsock {
		return net.Listen("tcp", address)
	}
	u, err := url.Parse("vsock://" + rest)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(u.Port(), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("the vsock port: %w", err)
	}
	return vsock.Listen(uint32(port), nil)
}
