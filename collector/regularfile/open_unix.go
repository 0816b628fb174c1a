//go:build unix

package regularfile

import (
	"os"
	"syscall"
)

// openNonBlocking opens a file for reading without waiting for a writer, should it be a
// FIFO: Open refuses it once it is open.
func openNonBlocking(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
