//go:build linux

package syncer

import (
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readDirStat lists dir sorted by name and lstats its non-directory
// entries. On Linux the lstat is fstatat relative to the open directory, as
// find does: the kernel does not resolve the directory's path again for
// every file, which is most of the cost of a quick check.
func readDirStat(dir string) ([]fs.DirEntry, []statted, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, nil, err
	}
	sortByName(entries)
	out := make([]statted, len(entries))
	// One allocation for the directory's stat results, not one per file.
	infos := make([]statInfo, len(entries))
	rc, err := f.SyscallConn()
	if err != nil {
		return entries, out, nil // the caller stats what is missing
	}
	statRange := func(fd, lo, hi int) {
		for i := lo; i < hi; i++ {
			if t := entries[i].Type(); t.IsDir() || t&fs.ModeSymlink != 0 {
				continue
			}
			si := &infos[i]
			si.name = entries[i].Name()
			var err error // per goroutine: statRange runs in several at once
			for {
				err = unix.Fstatat(fd, si.name, &si.st, unix.AT_SYMLINK_NOFOLLOW)
				if err != unix.EINTR {
					break
				}
			}
			if err != nil {
				out[i].err = &fs.PathError{Op: "lstat", Path: si.name, Err: err}
				continue
			}
			out[i].fi = si
		}
	}
	_ = rc.Control(func(fd uintptr) {
		n := len(entries)
		if n < 64 {
			statRange(int(fd), 0, n)
			return
		}
		var wg sync.WaitGroup
		chunk := (n + statParallel - 1) / statParallel
		for lo := 0; lo < n; lo += chunk {
			hi := min(lo+chunk, n)
			wg.Add(1)
			go func() {
				defer wg.Done()
				statRange(int(fd), lo, hi)
			}()
		}
		wg.Wait()
	})
	return entries, out, nil
}

// sortByName sorts entries by name. The names are fetched once: comparing
// through the fs.DirEntry interface (two method calls per comparison) cost
// more than the rest of the merge in directories of thousands of files.
func sortByName(entries []fs.DirEntry) {
	type named struct {
		name string
		de   fs.DirEntry
	}
	byName := make([]named, len(entries))
	for i, de := range entries {
		byName[i] = named{de.Name(), de}
	}
	slices.SortFunc(byName, func(a, b named) int { return strings.Compare(a.name, b.name) })
	for i := range byName {
		entries[i] = byName[i].de
	}
}

// statInfo is an fs.FileInfo over a raw stat (Sys returns *unix.Stat_t).
type statInfo struct {
	name string
	st   unix.Stat_t
}

// fileID gives fileID the identity without a type switch on Sys.
func (s *statInfo) fileID() (dev, ino uint64) { return uint64(s.st.Dev), uint64(s.st.Ino) }

func (s *statInfo) Name() string       { return s.name }
func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s *statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *statInfo) Sys() any           { return &s.st }

func (s *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	}
	if s.st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if s.st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if s.st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
