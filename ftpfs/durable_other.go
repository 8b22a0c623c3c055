//go:build !linux

package ftpfs

import "os"

// datasync is the platform's full fsync.
func datasync(f *os.File) error { return f.Sync() }

// startWriteback: no portable way to start writeback without waiting.
func startWriteback(*os.File, int64, int64) {}
