//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package accounts

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestUserDBKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: checks that root keeps the users file's owner")
	}
	p := filepath.Join(t.TempDir(), "users.yaml")
	db, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	fast(db)
	if err := db.Add(User{Name: "a"}, "pw"); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 65534, 65534 // nobody
	if err := os.Chown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := db.Add(User{Name: "b"}, "pw"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no unix owner on this platform")
	}
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("owner after save %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
}
