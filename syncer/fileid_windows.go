//go:build windows

package syncer

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/windows"
)

// On Windows the agent reads every log through a handle opened with read,
// write and delete sharing, and takes a candidate file's size, last write
// time and identity from that handle (GetFileInformationByHandle):
//
//   - Go's os.Open shares read and write but not delete, so a logger that
//     rotates by renaming its file while the agent uploads it would get a
//     sharing violation. With FILE_SHARE_DELETE the rename (or delete)
//     succeeds and the agent goes on reading the file under its new name,
//     as on Unix.
//   - NTFS updates the size and last write time in a directory entry
//     lazily while a writer keeps the file open (the normal case for a
//     service's log): a listing may show a log that grows all day as
//     unchanged. The handle's values are current.
//   - The volume serial number and the 64-bit file index identify a file
//     across renames as the device and inode do on Unix.
//
// When the handle is consulted: the walk lists each directory (one
// FindFirstFile/FindNextFile pass, no per-file call) and filters by the
// include and exclude globs; every matched regular file, the candidates,
// is then opened once for FILE_READ_ATTRIBUTES only (which no sharing mode
// of another process refuses), queried and closed. Files the globs do not
// match cost nothing beyond the listing. The rotation search lists a
// directory's unmatched files the same way, only when a log left its name.

// shareAll is the sharing mode of every handle the agent opens on a log.
const shareAll = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE

// handleInfo is an fs.FileInfo taken from an open handle.
type handleInfo struct {
	name  string
	size  int64
	mtime time.Time
	attrs uint32
	vol   uint32
	idx   uint64
}

func (h *handleInfo) fileID() (dev, ino uint64) { return uint64(h.vol), h.idx }

func (h *handleInfo) Name() string       { return h.name }
func (h *handleInfo) Size() int64        { return h.size }
func (h *handleInfo) ModTime() time.Time { return h.mtime }
func (h *handleInfo) IsDir() bool        { return h.Mode().IsDir() }
func (h *handleInfo) Sys() any           { return nil }

func (h *handleInfo) Mode() fs.FileMode {
	m := fs.FileMode(0o666)
	if h.attrs&windows.FILE_ATTRIBUTE_READONLY != 0 {
		m = 0o444
	}
	if h.attrs&windows.FILE_ATTRIBUTE_DIRECTORY != 0 {
		m |= fs.ModeDir | 0o111
	}
	return m
}

// fileID returns the volume serial number and file index of fi when it
// was taken from a handle (identify, lstatLog, statOpen), else 0, 0.
func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if id, ok := fi.(interface{ fileID() (uint64, uint64) }); ok {
		return id.fileID()
	}
	return 0, 0
}

// handleStat queries the open handle h for the stat of the file name.
func handleStat(h windows.Handle, name string) (*handleInfo, error) {
	var d windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &d); err != nil {
		return nil, &fs.PathError{Op: "GetFileInformationByHandle", Path: name, Err: err}
	}
	return &handleInfo{
		name:  filepath.Base(name),
		size:  int64(d.FileSizeHigh)<<32 | int64(d.FileSizeLow),
		mtime: time.Unix(0, d.LastWriteTime.Nanoseconds()),
		attrs: d.FileAttributes,
		vol:   d.VolumeSerialNumber,
		idx:   uint64(d.FileIndexHigh)<<32 | uint64(d.FileIndexLow),
	}, nil
}

// createFile opens name with every sharing mode.
func createFile(name string, access, flags uint32) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(longPath(name))
	if err != nil {
		return windows.InvalidHandle, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	h, err := windows.CreateFile(p, access, shareAll, nil, windows.OPEN_EXISTING, flags, 0)
	if err != nil {
		return windows.InvalidHandle, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return h, nil
}

// openLog opens a log file for reading with read, write and delete
// sharing: the agent never stops a logger from writing, renaming or
// deleting the file it reads.
func openLog(name string) (*os.File, error) {
	h, err := createFile(name, windows.GENERIC_READ, windows.FILE_ATTRIBUTE_NORMAL)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(h), name), nil
}

// statOpen returns the stat of the open file f from its handle, with its
// identity.
func statOpen(f *os.File) (fs.FileInfo, error) {
	return handleStat(windows.Handle(f.Fd()), f.Name())
}

// identify returns the stat by which the scan judges the candidate file
// abs, fi its stat from the directory listing: for a regular file the
// handle's (current size and last write time, and the file index), else
// fi.
func identify(abs string, fi fs.FileInfo) (fs.FileInfo, error) {
	if !fi.Mode().IsRegular() {
		return fi, nil
	}
	h, err := createFile(abs, windows.FILE_READ_ATTRIBUTES, windows.FILE_ATTRIBUTE_NORMAL)
	if err != nil {
		return nil, err
	}
	defer windows.CloseHandle(h)
	return handleStat(h, abs)
}

// lstatLog returns the stat of the file abs without following a symlink;
// a regular file's from a handle, with its identity.
func lstatLog(abs string) (fs.FileInfo, error) {
	fi, err := os.Lstat(abs)
	if err != nil {
		return nil, err
	}
	return identify(abs, fi)
}

// longPath returns name in the \\?\ form when it is too long for the
// Win32 path limit (MAX_PATH, 260 characters with the terminating NUL):
// os does this for its own calls, CreateFile here does not.
func longPath(name string) string {
	if len(name) < 248 || strings.HasPrefix(name, `\\?\`) {
		return name
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return name
	}
	if strings.HasPrefix(abs, `\\`) {
		return `\\?\UNC\` + abs[2:]
	}
	return `\\?\` + abs
}
