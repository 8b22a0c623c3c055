//go:build linux

package fuseview

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"golang.org/x/sys/unix"
)

// openFlags open an archived file for reading only. O_NOFOLLOW refuses a
// symlink put in the file's place; O_NONBLOCK keeps a FIFO put there from
// hanging the daemon (Open then refuses it as not a regular file).
const openFlags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY

// openFile opens <root>/<agent>/<p> for reading and returns the bare
// descriptor; the caller closes it.
//
// Nothing outside the archive root can be opened. This is enforced by the
// kernel: the path is resolved in one openat2 call relative to the root's
// descriptor with RESOLVE_BENEATH (no "..", absolute path or symlink leads
// above the root: EXDEV) and RESOLVE_NO_SYMLINKS (no symlink anywhere on
// the path: the view shows none, so a path through one is not a path it
// offered). One syscall instead of os.Root's openat and close per
// component, which was most of what the daemon spent on an open. Kernels
// without openat2 (before 5.6) get os.Root for the directories and openat
// with O_NOFOLLOW for the file: also confined to the root.
func (v *view) openFile(agent, p string) (int, error) {
	r := rel(agent, p)
	if !v.noOpenat2.Load() {
		how := unix.OpenHow{
			Flags:   openFlags,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		}
		for tries := 0; ; tries++ {
			fd, err := unix.Openat2(v.rootFD, r, &how)
			switch {
			case err == nil:
				return fd, nil
			case err == unix.EINTR, err == unix.EAGAIN && tries < 16:
				// EAGAIN: a rename raced with the resolution; try again.
				continue
			case err == unix.ELOOP, err == unix.EXDEV:
				// A symlink on the path, or a way out of the root: the view
				// never offered this path.
				return -1, fmt.Errorf("open %s: %w (%v)", r, ErrNotExist, err)
			case err == unix.ENOSYS:
				v.noOpenat2.Store(true)
			default:
				return -1, &fs.PathError{Op: "openat2", Path: r, Err: err}
			}
			break
		}
	}
	// The fallback: os.Root opens the parent directory (confined to the
	// root, one component at a time), and openat with O_NOFOLLOW opens the
	// file in it, refusing a symlink in the file's place (os.Root's
	// OpenFile follows one that points inside the root).
	dir, base := path.Split(r)
	if dir == "" {
		dir = "."
	}
	d, err := v.root.Open(dir)
	if err != nil {
		return -1, err
	}
	defer d.Close()
	sc, err := d.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if cerr := sc.Control(func(dfd uintptr) {
		fd, err = unix.Openat(int(dfd), base, openFlags, 0)
	}); cerr != nil {
		return -1, cerr
	}
	if errors.Is(err, unix.ELOOP) {
		return -1, fmt.Errorf("open %s: %w (%v)", r, ErrNotExist, err) // a symlink in the file's place
	}
	if err != nil {
		return -1, &fs.PathError{Op: "openat", Path: r, Err: err}
	}
	return fd, nil
}
