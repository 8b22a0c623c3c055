//go:build windows

package accounts

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// TestWindowsReplaceWhileRead: Windows refuses to replace a file another
// handle holds open (as os.Open opens it); the users file's replace waits
// for such a reader. Runs under wine in CI (internal/winetest).
func TestWindowsReplaceWhileRead(t *testing.T) {
	// Not t.TempDir: under wine its cleanup fails (see winTempDir in
	// syncer's tests).
	dir, err := os.MkdirTemp("", "syncer-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(p, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The control: a plain rename over a file held by os.Open fails.
	held, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.WriteFile(tmp, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err == nil {
		t.Fatal("rename over a file held without FILE_SHARE_DELETE succeeded: the platform does not check sharing, this test shows nothing")
	} else if !errorIsAny(err, windows.ERROR_ACCESS_DENIED, windows.ERROR_SHARING_VIOLATION) {
		t.Fatalf("rename over a held file: %v; want access denied or a sharing violation", err)
	}

	// The fix: writeFileAtomic waits for the reader to close.
	go func() {
		time.Sleep(300 * time.Millisecond)
		held.Close()
	}()
	if err := writeFileAtomic(p, []byte("new\n")); err != nil {
		t.Fatalf("replace while another reader held the file for 300ms: %v", err)
	}
	if b, _ := readShared(p); string(b) != "new\n" {
		t.Fatalf("after replace: %q", b)
	}

}

func errorIsAny(err error, targets ...windows.Errno) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
