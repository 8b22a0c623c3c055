//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package accounts

import "os"

// keepOwner does nothing on this platform.
func keepOwner(*os.File, os.FileInfo) error { return nil }

// syncDir makes a rename in dir durable where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// readShared reads the file p.
func readShared(p string) ([]byte, error) { return os.ReadFile(p) }

// replaceFile renames src over dst.
func replaceFile(src, dst string) error { return os.Rename(src, dst) }
