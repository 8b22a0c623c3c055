//go:build unix

package fuseview

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func sysAttr(fi fs.FileInfo, a *Attr) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		a.Uid, a.Gid = st.Uid, st.Gid
		a.Ino, a.Dev = uint64(st.Ino), uint64(st.Dev)
	}
}

func isENOTDIR(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

// readDirAttrs lists the open directory f and stats every entry relative to
// it (fstatat, no symlink following), so a listing costs one syscall per
// entry and never resolves a path again.
func readDirAttrs(root *os.Root, r string, f *os.File) ([]DirEntry, error) {
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	return statEach(root, r, f, names)
}

// statEach stats the named entries of the open directory f (archive-relative
// path r) without following symlinks; names that are gone are left out.
func statEach(_ *os.Root, _ string, f *os.File, names []string) ([]DirEntry, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, 0, len(names))
	var statErr error
	cerr := sc.Control(func(fd uintptr) {
		for _, name := range names {
			var st unix.Stat_t
			if err := unix.Fstatat(int(fd), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue // removed since the listing
				}
				statErr = &fs.PathError{Op: "fstatat", Path: name, Err: err}
				return
			}
			out = append(out, DirEntry{Name: name, Attr: attrOfStat(&st)})
		}
	})
	if cerr != nil {
		return nil, cerr
	}
	return out, statErr
}

func attrOfStat(st *unix.Stat_t) Attr {
	a := Attr{
		Mode:  fs.FileMode(st.Mode & 0o777),
		Size:  st.Size,
		MTime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)),
		Uid:   st.Uid, Gid: st.Gid,
		Ino: uint64(st.Ino), Dev: uint64(st.Dev),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		a.Mode |= fs.ModeDir
		a.Size = 4096
	case unix.S_IFREG:
	default:
		a.Mode |= fs.ModeIrregular
	}
	return a
}
