//go:build unix

package syncer

import (
	"io/fs"
	"syscall"
)

// fileID returns the device and inode numbers of fi, which identify a file
// across renames: a rotated log keeps its inode under its new name.
func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if id, ok := fi.(interface{ fileID() (uint64, uint64) }); ok {
		return id.fileID()
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // Dev is int32 on darwin
	}
	return 0, 0
}
