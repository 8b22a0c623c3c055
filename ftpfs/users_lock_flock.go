//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package ftpfs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive flock on the file lockPath (created if
// needed, never removed: removing a flock file races with the next
// locker). flock locks belong to the open file, so two UserDBs in one
// process exclude each other as two processes do. A lock held by a dead
// process is released by the kernel, so there are no stale locks.
func lockFile(lockPath string, timeout time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", lockPath, errLockHeld)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keepOwner gives the new users file tmp the owner of the file it replaces
// when we run as root, so that `sudo syncer user add` does not make the file
// unreadable for the account the server runs as.
func keepOwner(tmp *os.File, old os.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	if int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid() {
		return nil
	}
	return tmp.Chown(int(st.Uid), int(st.Gid))
}

// syncDir makes a rename in dir durable. Errors are ignored: some file
// systems cannot sync a directory, and the data itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
