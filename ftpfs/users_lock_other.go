//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package ftpfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lockFile takes the lock by creating lockPath exclusively and removes it
// to unlock. Unlike flock, a lock left by a killed process stays: the error
// names the file so an operator can remove it.
func lockFile(lockPath string, timeout time.Duration) (unlock func(), err error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(lockPath) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: %w (the file exists; if no other syncer is running, remove it)", lockPath, errLockHeld)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keepOwner does nothing on this platform.
func keepOwner(*os.File, os.FileInfo) error { return nil }

// syncDir makes a rename in dir durable where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
