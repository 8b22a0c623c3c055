//go:build !unix && !windows

package syncer

import (
	"io/fs"
	"os"
)

// fileID returns 0, 0 where the platform's stat carries no file identity.
// The agent then identifies files by their head fingerprint alone: appends
// and rewrites are told apart just as well, but a log renamed by rotation
// is uploaded once under its new name instead of being recognised.
func fileID(fi fs.FileInfo) (dev, ino uint64) { return 0, 0 }

// openLog opens a log file for reading.
func openLog(name string) (*os.File, error) { return os.Open(name) }

// statOpen returns the stat of the open file f.
func statOpen(f *os.File) (fs.FileInfo, error) { return f.Stat() }

// identify returns fi, the listing's stat of the file abs.
func identify(abs string, fi fs.FileInfo) (fs.FileInfo, error) { return fi, nil }

// lstatLog returns the stat of the file abs without following a symlink.
func lstatLog(abs string) (fs.FileInfo, error) { return os.Lstat(abs) }
