// Package statelock takes exclusive locks on files in syncer's state
// directories: the lock that keeps two servers off one state directory
// (Dir) and the lock around every change of a users file (File). On Unix
// the lock is flock, on Windows LockFileEx, both released by the kernel
// when the process dies; elsewhere an exclusively created file.
package statelock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrHeld is returned (wrapped) when another process, or another locker in
// this process, holds the lock past the timeout.
var ErrHeld = errors.New("held by another process")

// DirLockFile is the file in a state directory that Dir locks.
const DirLockFile = "serve.lock"

// Dir takes an exclusive lock on a server's state directory, so that two
// servers never share one (certificate, users file, index). It does not
// wait. The lock is released by release or, on Unix and Windows, when the
// process dies. A directory locked by someone else gives an error wrapping
// ErrHeld that says so.
func Dir(dir string) (release func(), err error) {
	unlock, err := File(filepath.Join(dir, DirLockFile), 0)
	if err != nil {
		if _, statErr := os.Stat(dir); statErr != nil {
			return nil, fmt.Errorf("lock state directory: %w", statErr)
		}
		if !errors.Is(err, ErrHeld) {
			return nil, fmt.Errorf("lock state directory %s: %v", dir, err)
		}
		return nil, fmt.Errorf("state directory %s is in use by another syncer serve (lock %s): %w", dir, DirLockFile, ErrHeld)
	}
	return unlock, nil
}
