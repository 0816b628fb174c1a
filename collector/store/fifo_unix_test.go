//go:build unix

package store

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A named pipe at the snapshot's path, or at its checkpoint's, made the open block until
// a writer came: the poll loop hung, and SIGTERM (which waits for it) with it. Both
// loads now refuse it at once, naming the file and what it is, and a save replaces it.
func TestNamedPipeIsRefusedWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "snapshot")
	for _, p := range []string{path, ListingPath(path)} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	type result struct{ err error }
	done := make(chan result, 2)
	go func() { _, err := Load(path, nil); done <- result{err} }()
	go func() { _, err := LoadListing(ListingPath(path)); done <- result{err} }()
	for range 2 {
		select {
		case r := <-done:
			if r.err == nil || errors.Is(r.err, ErrNoSnapshot) || errors.Is(r.err, ErrNoListing) ||
				!strings.Contains(r.err.Error(), "not a regular file (a named pipe)") || !strings.Contains(r.err.Error(), path) {
				t.Fatalf("a named pipe: got %v, want an error naming the file and the pipe", r.err)
			}
		case <-time.After(10 * time.Second):
			// Not a sleep: a bound on a test that would otherwise hang for ever.
			t.Fatal("loading from a named pipe blocked")
		}
	}
	// A save renames its temporary file over the pipe: the next load reads a snapshot.
	if err := Save(path, generated(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err != nil {
		t.Fatalf("after a save over the pipe: %v", err)
	}
}

// A device is refused as well, before anything is read from it.
func TestDeviceIsRefused(t *testing.T) {
	_, err := Load("/dev/zero", nil)
	if err == nil || !strings.Contains(err.Error(), "not a regular file (a character device)") {
		t.Fatalf("/dev/zero: got %v", err)
	}
}
