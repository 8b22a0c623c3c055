// Package lazyfs is a FUSE file system for power-cut tests, in the manner
// of LazyFS (https://github.com/dsrhaslab/lazyfs): it passes every
// operation through to a backing directory, and remembers what a real
// disk would keep if the power went out now. That is, under POSIX's
// rules and nothing kinder:
//
//   - a file's data as of its last fsync or fdatasync (a file never synced
//     is empty);
//   - a directory's entries (name -> inode) as of its last fsync (a
//     directory never synced has none);
//   - the whole tree as it was at Mount.
//
// Crash freezes that state (later syncs change nothing); Survivors writes
// the tree that state describes into a new directory, on which a test
// mounts again and restarts the program under test. This kernel has no
// device-mapper (dm-log-writes, dm-flakey), which is the usual way; a
// FUSE layer works on any kernel with /dev/fuse and makes the outcome of
// a crash the strictest one the rules allow, not whatever the page cache
// happened to have written back.
//
// It is test support: everything it keeps is in memory and in a store
// directory beside the backing one, copied at each sync.
package lazyfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// FS is one mounted lazy file system.
type FS struct {
	backing, store, mountpoint string
	server                     *fuse.Server
	rootIno                    uint64

	mu      sync.Mutex
	crashed bool
	// dirs holds each directory's durable entries, by inode.
	dirs map[uint64]map[string]entry
	// files holds the mode of each inode whose data is durable; the data
	// is store/<ino>.
	files map[uint64]os.FileMode
	syncs int // fsyncs recorded, for the test's log

	written map[string]int64 // bytes written, by Count's patterns
	count   func(path string) string
	first   map[string]int64 // lowest offset written, by path counted
}

type entry struct {
	ino uint64
	dir bool
}

// Mount mounts a lazy view of backing at mountpoint; store is an empty
// directory outside both for the synced copies. Everything under backing
// now counts as durable.
func Mount(mountpoint, backing, store string) (*FS, error) {
	f := &FS{backing: backing, store: store, mountpoint: mountpoint,
		dirs: map[uint64]map[string]entry{}, files: map[uint64]os.FileMode{}}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("lazyfs: backing %s: %w", backing, err)
	}
	f.rootIno = st.Ino
	if err := f.snapshot(backing, st.Ino); err != nil {
		return nil, fmt.Errorf("lazyfs: snapshot of %s: %w", backing, err)
	}
	lr := &gofs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	root := &node{LoopbackNode: gofs.LoopbackNode{RootData: lr}, fs: f}
	lr.RootNode = root
	srv, err := gofs.Mount(mountpoint, root, &gofs.Options{MountOptions: fuse.MountOptions{
		DirectMountStrict: true, FsName: "lazyfs", Name: "lazyfs", DisableXAttrs: true, MaxBackground: 64,
	}})
	if err != nil {
		return nil, fmt.Errorf("lazyfs: mount %s: %w", mountpoint, err)
	}
	f.server = srv
	return f, nil
}

// snapshot records the tree under dir (inode ino) as durable.
func (f *FS) snapshot(dir string, ino uint64) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	ents := map[string]entry{}
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			return err
		}
		e := entry{ino: fi.Sys().(*syscall.Stat_t).Ino, dir: fi.IsDir()}
		p := filepath.Join(dir, de.Name())
		switch {
		case e.dir:
			if err := f.snapshot(p, e.ino); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := f.keepFile(p, e.ino, fi.Mode().Perm()); err != nil {
				return err
			}
		default:
			continue // not kept: sockets, links, devices
		}
		ents[de.Name()] = e
	}
	f.dirs[ino] = ents
	return nil
}

// keepFile copies the backing file at p (inode ino) to the store.
func (f *FS) keepFile(p string, ino uint64, mode os.FileMode) error {
	src, err := os.Open(p)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := filepath.Join(f.store, strconv.FormatUint(ino, 10)+".tmp")
	dst, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(f.store, strconv.FormatUint(ino, 10))); err != nil {
		return err
	}
	f.files[ino] = mode
	return nil
}

// Crash is the power cut: what is durable now is all that survives; syncs
// from now on record nothing (they still succeed, like a disk that lies,
// so that the program under test is not told).
func (f *FS) Crash() {
	f.mu.Lock()
	f.crashed = true
	f.mu.Unlock()
}

// Count makes Written count the bytes written to each file under the
// key that key(path) returns ("" to not count); path is relative to the
// mount.
func (f *FS) Count(key func(path string) string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count, f.written, f.first = key, map[string]int64{}, map[string]int64{}
}

// FirstWrite is the lowest offset written to the file at path (relative
// to the mount) since Count, if Count counts it and it was written.
func (f *FS) FirstWrite(path string) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	off, ok := f.first[path]
	return off, ok
}

// Written is the bytes written to files under key, counted since Count.
func (f *FS) Written(key string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written[key]
}

func (f *FS) wrote(path string, off, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.count != nil {
		if k := f.count(path); k != "" {
			f.written[k] += n
			if o, ok := f.first[path]; !ok || off < o {
				f.first[path] = off
			}
		}
	}
}

// Syncs is how many fsyncs (files and directories) were recorded.
func (f *FS) Syncs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

// Unmount unmounts the file system; after Crash, whatever the processes
// above it still do is lost. A mount still in use (a file left open) is
// aborted, as the kernel does when a FUSE daemon dies: its pending and
// later requests fail, and it is detached.
func (f *FS) Unmount() error {
	var st syscall.Stat_t
	statErr := syscall.Stat(f.mountpoint, &st)
	if err := f.server.Unmount(); err != nil {
		if statErr == nil {
			abort(st.Dev)
		}
		if derr := unix.Unmount(f.mountpoint, unix.MNT_DETACH); derr != nil && !errors.Is(derr, unix.EINVAL) {
			return fmt.Errorf("lazyfs: unmount %s: %w", f.mountpoint, errors.Join(err, derr))
		}
	}
	f.server.Wait()
	return nil
}

// abort ends the FUSE connection of device dev through fusectl.
func abort(dev uint64) {
	const ctl = "/sys/fs/fuse/connections"
	if _, err := os.Stat(filepath.Join(ctl, "0")); err != nil {
		_ = unix.Mount("none", ctl, "fusectl", 0, "")
	}
	_ = os.WriteFile(filepath.Join(ctl, strconv.FormatUint(uint64(unix.Minor(dev)), 10), "abort"), []byte("1"), 0)
}

// Survivors writes the durable tree into dst, an empty directory.
func (f *FS) Survivors(dst string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writeDir(dst, f.rootIno)
}

func (f *FS) writeDir(dst string, ino uint64) error {
	for name, e := range f.dirs[ino] {
		p := filepath.Join(dst, name)
		if e.dir {
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			if err := f.writeDir(p, e.ino); err != nil {
				return err
			}
			continue
		}
		mode, ok := f.files[e.ino]
		if !ok {
			// The name is durable, its data never was.
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(filepath.Join(f.store, strconv.FormatUint(e.ino, 10)), p, mode); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, mode)
	}
	return err
}

// syncFile records the data of the file with inode ino, at backing path
// p (opened again: the handle synced may be write-only).
func (f *FS) syncFile(ino uint64, p string) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return 0
	}
	fi, err := os.Stat(p)
	if err != nil {
		return gofs.ToErrno(err)
	}
	if fi.Sys().(*syscall.Stat_t).Ino != ino {
		return syscall.ESTALE // renamed over meanwhile: no test here does that
	}
	if err := f.keepFile(p, ino, fi.Mode().Perm()); err != nil {
		return gofs.ToErrno(err)
	}
	f.syncs++
	return 0
}

// syncDir records the entries of the directory at backing path p.
func (f *FS) syncDir(p string, ino uint64) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return 0
	}
	des, err := os.ReadDir(p)
	if err != nil {
		return gofs.ToErrno(err)
	}
	ents := map[string]entry{}
	for _, de := range des {
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return gofs.ToErrno(err)
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			continue
		}
		ents[de.Name()] = entry{ino: fi.Sys().(*syscall.Stat_t).Ino, dir: fi.IsDir()}
	}
	f.dirs[ino] = ents
	f.syncs++
	return 0
}

// fresh forgets what was durable of an inode number the backing file
// system just gave a new file or directory (numbers are reused).
func (f *FS) fresh(ino uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return
	}
	delete(f.files, ino)
	delete(f.dirs, ino)
}
