//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package statelock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// File takes the lock by creating path exclusively and removes it
// to unlock. Unlike flock, a lock left by a killed process stays: the error
// names the file so an operator can remove it.
func File(path string, timeout time.Duration) (unlock func(), err error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: %w (the file exists; if no other syncer is running, remove it)", path, ErrHeld)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
