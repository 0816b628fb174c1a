//go:build !unix

package store

import "os"

// openNonBlocking opens a file for reading; openRegular refuses what is not a regular
// file once it is open.
func openNonBlocking(path string) (*os.File, error) { return os.Open(path) }
