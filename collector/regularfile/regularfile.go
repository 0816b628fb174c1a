// Package regularfile opens the files the exporter reads (its configuration, secrets, CA
// bundle, snapshot and checkpoint) only when they are regular files: a named pipe, a
// device, a directory or a socket is refused once open, and the open itself does not
// block, so a FIFO cannot hang the reader (nor SIGTERM, which waits for it) and
// /dev/zero cannot be read without end.
package regularfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Open opens path for reading without blocking and returns it with its state, or an
// error without the path (the caller names the file: a path may be a secret mistyped
// into the wrong key).
func Open(path string) (*os.File, fs.FileInfo, error) {
	f, err := openNonBlocking(path)
	if err != nil {
		return nil, nil, Pathless(err)
	}
	st, err := f.Stat()
	if err == nil {
		err = Check(st)
	}
	if err != nil {
		f.Close()
		return nil, nil, Pathless(err)
	}
	return f, st, nil
}

// Check refuses a file that is not regular, saying what it is.
func Check(st fs.FileInfo) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", Kind(st.Mode()))
	}
	return nil
}

// Kind names what a file that is not regular is: "a named pipe", "a directory", ...
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// Pathless drops the path from an os error: "open /x: no such file or directory" says
// "no such file or directory". Other errors are returned as they are.
func Pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
