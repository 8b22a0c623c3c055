//go:build unix

package syncer

import (
	"io/fs"
	"os"
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

// openLog opens a log file for reading. On Unix an open file never stops
// another process from renaming or deleting it.
func openLog(name string) (*os.File, error) { return os.Open(name) }

// statOpen returns the stat of the open file f.
func statOpen(f *os.File) (fs.FileInfo, error) { return f.Stat() }

// identify returns the stat by which the scan judges the candidate file
// abs, fi its stat from the directory listing. On Unix the lstat is
// current and carries the inode: fi itself.
func identify(abs string, fi fs.FileInfo) (fs.FileInfo, error) { return fi, nil }

// lstatLog returns the stat of the file abs without following a symlink,
// with the identity fileID reads.
func lstatLog(abs string) (fs.FileInfo, error) { return os.Lstat(abs) }
