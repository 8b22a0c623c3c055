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
// delete, so that the read never stops another program from renaming or
// deleting the file. (Replacing a file while any handle has it open is
// refused by Windows whatever the sharing: replaceFile retries that.)
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

// replaceFile renames src over dst. While any other process has dst open
// (a server reloading it, an editor, a virus scanner), Windows refuses the
// replace with "Access is denied" or a sharing violation: such readers
// hold it for moments, so the rename is retried for up to replaceTimeout.
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
