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

// Listen opens the listeners flags name.
func Listen(flags *toolkit.FlagConfig, logger *slog.Logger) ([]net.Listener, error) {
	if flags == nil || flags.WebConfigFile == nil {
		return nil, toolkit.ErrMissingFlag
	}
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		logger.Info("Listening on systemd activated listeners instead of port listeners.")
		all, err := activation.Listeners()
		if err != nil {
			return nil, err
		}
		var listeners []net.Listener
		for _, l := range all {
			if l != nil {
				listeners = append(listeners, l)
			}
		}
		if len(listeners) == 0 {
			return nil, errors.New("no socket activation file descriptors found")
		}
		return listeners, nil
	}
	if flags.WebListenAddresses == nil || len(*flags.WebListenAddresses) == 0 {
		return nil, toolkit.ErrNoListeners
	}
	var listeners []net.Listener
	for _, address := range *flags.WebListenAddresses {
		l, err := listen(address)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return nil, err
		}
		listeners = append(listeners, l)
	}
	return listeners, nil
}

func listen(address string) (net.Listener, error) {
	if !strings.HasPrefix(address, "vsock://") {
		return net.Listen("tcp", address)
	}
	u, err := url.Parse(address)
	if err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseUint(port, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", address, err)
	}
	return vsock.Listen(uint32(n), nil)
}
