//go:build windows

package accounts

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// keepOwner does nothing on Windows: the new file inherits the directory's
// access control list.
func keepOwner(*os.File, os.FileInfo) error { return nil }

// syncDir does nothing on Windows, which cannot open a directory for sync;
// the rename is durable once the file system journals it.
func syncDir(string) {}

// readShared reads the file p through a handle that shares read, write and
// delete. os.ReadFile does not share delete, and while any process holds
// the users file open that way Windows refuses to replace it ("Access is
// denied"): a server reloading the file would make a concurrent
// `syncer user add` fail.
func readShared(p string) ([]byte, error) {
	name, err := windows.UTF16PtrFromString(p)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(h), p)
	defer f.Close()
	return io.ReadAll(f)
}

// replaceTimeout bounds how long replaceFile waits for another process to
// close the file it replaces.
const replaceTimeout = 5 * time.Second

// replaceFile renames src over dst. Another program (an editor, a virus
// scanner, an older syncer) may hold dst open without delete sharing for a
// moment, and Windows then refuses the replace with "Access is denied" or a
// sharing violation: the rename is retried for up to replaceTimeout.
func replaceFile(src, dst string) error {
	deadline := time.Now().Add(replaceTimeout)
	for {
		err := os.Rename(src, dst)
		if err == nil || !(errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_SHARING_VIOLATION)) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (another program kept %s open for %s)", err, dst, replaceTimeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
