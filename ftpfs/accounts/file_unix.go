//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package accounts

import (
	"os"
	"syscall"
)

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

// readShared reads the file p; on Unix an open file never blocks its
// replacement.
func readShared(p string) ([]byte, error) { return os.ReadFile(p) }

// replaceFile renames src over dst.
func replaceFile(src, dst string) error { return os.Rename(src, dst) }
