//go:build !unix

package regularfile

import "os"

// openNonBlocking opens a file for reading; Open refuses what is not a regular
// file once it is open.
func openNonBlocking(path string) (*os.File, error) { return os.Open(path) }
