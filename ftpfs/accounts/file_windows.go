//go:build windows

package accounts

import "os"

// keepOwner does nothing on Windows: the new file inherits the directory's
// access control list.
func keepOwner(*os.File, os.FileInfo) error { return nil }

// syncDir does nothing on Windows, which cannot open a directory for sync;
// the rename is durable once the file system journals it.
func syncDir(string) {}
