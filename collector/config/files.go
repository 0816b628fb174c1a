package config

import (
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/certview-exporter/certview_exporter/collector/regularfile"
)

// Size caps of the files the configuration reads. A file past its cap is refused, not
// cut: a secret or a configuration read in part is a wrong one.
const (
	MaxConfigFileBytes = 1 << 20  // --config.file
	MaxSecretFileBytes = 64 << 10 // qualys.password_file, qualys.client_secret_file
	MaxCAFileBytes     = 1 << 20  // qualys.ca_file
)

// readLimited reads a regular file of at most limit bytes. Anything else (a FIFO, a
// device such as /dev/zero, a directory, a socket) is refused before it is read, and
// the file is opened without blocking, so neither a pipe nor an endless device can stall
// start-up or fill the memory. Its errors never hold the path: the caller names the key
// or flag, and a path may itself be a secret mistyped into the wrong key.
func readLimited(path string, limit int64) ([]byte, error) {
	if err := checkRegular(path, limit); err != nil {
		return nil, err
	}
	f, st, err := regularfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The file may have been swapped since the first check: check what was opened.
	if err := regular(st, limit); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, regularfile.Pathless(err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("the file is larger than the limit of %s", byteSize(limit))
	}
	return b, nil
}

// checkRegular stats path (following links, as Kubernetes mounts secrets) and refuses
// anything but a regular file of at most limit bytes.
func checkRegular(path string, limit int64) error {
	st, err := os.Stat(path)
	if err != nil {
		return regularfile.Pathless(err)
	}
	return regular(st, limit)
}

func regular(st fs.FileInfo, limit int64) error {
	if err := regularfile.Check(st); err != nil {
		return err
	}
	if st.Size() > limit {
		return fmt.Errorf("the file is larger than the limit of %s (%d bytes)", byteSize(limit), st.Size())
	}
	return nil
}

func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
