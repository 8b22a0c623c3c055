//go:build windows

package syncer

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/windows"
)

// TestWindowsHandleIdentity: the handle-based stat of a candidate file
// (identify, lstatLog, statOpen) gives a non-zero file identity that
// survives a rename and differs between two files, and the current size
// of a file another handle is still writing. A log opened by openLog can
// be renamed and deleted while it is open. Runs under wine in CI
// (internal/winetest), and on Windows.
func TestWindowsHandleIdentity(t *testing.T) {
	dir := winTempDir(t)
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	// The logger: it shares delete so that the file can be rotated by
	// rename while it is open (as the agent's own handles do).
	h, err := windows.CreateFile(windows.StringToUTF16Ptr(a), windows.GENERIC_WRITE, shareAll, nil, windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := os.NewFile(uintptr(h), a)
	defer w.Close()
	if _, err := w.WriteString("first line\n"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lfi, err := os.Lstat(a)
	if err != nil {
		t.Fatal(err)
	}
	fa, err := identify(a, lfi)
	if err != nil {
		t.Fatal(err)
	}
	dev, ino := fileID(fa)
	if ino == 0 {
		t.Fatal("no file index from the handle")
	}
	if fa.Size() != int64(len("first line\n")) {
		t.Errorf("size %d while the writer holds the file open", fa.Size())
	}
	fb, err := lstatLog(b)
	if err != nil {
		t.Fatal(err)
	}
	if d, i := fileID(fb); d == dev && i == ino {
		t.Error("two files, one identity")
	}

	r, err := openLog(a)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The writer goes on; the handle's size follows (NTFS's directory
	// entry may not, which is why the scan asks the handle).
	if _, err := w.WriteString("second line\n"); err != nil {
		t.Fatal(err)
	}
	st, err := statOpen(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("first line\nsecond line\n")); st.Size() != want {
		t.Errorf("statOpen size %d, want %d", st.Size(), want)
	}
	// A rotation by rename while both handles are open.
	if err := os.Rename(a, a+".1"); err != nil {
		t.Fatalf("rename of a log the agent has open: %v", err)
	}
	moved, err := lstatLog(a + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if d, i := fileID(moved); d != dev || i != ino {
		t.Errorf("identity after rename (%d, %d), before (%d, %d)", d, i, dev, ino)
	}
	if d, i := fileID(st); d != dev || i != ino {
		t.Errorf("statOpen identity (%d, %d), identify's (%d, %d)", d, i, dev, ino)
	}
	// And a delete (the agent's handle keeps reading).
	rb, err := openLog(b)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	if err := os.Remove(b); err != nil {
		t.Fatalf("delete of a log the agent has open: %v", err)
	}
	buf := make([]byte, 5)
	if _, err := rb.ReadAt(buf, 0); err != nil || string(buf) != "other" {
		t.Errorf("read after delete: %q, %v", buf, err)
	}
}

// TestWindowsLongPath: longPath turns a path past MAX_PATH into the \\?\
// form, which openLog can open.
func TestWindowsLongPath(t *testing.T) {
	dir := winTempDir(t)
	p := dir
	for len(p) < 300 {
		p = filepath.Join(p, "a-rather-long-directory-name")
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(p, "deep.log")
	if err := os.WriteFile(f, []byte("deep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := openLog(f)
	if err != nil {
		t.Fatalf("openLog of a %d-character path: %v", len(f), err)
	}
	r.Close()
	if got := longPath(`C:\short`); got != `C:\short` {
		t.Errorf("longPath of a short path: %q", got)
	}
}

// winTempDir is t.TempDir without failing the test when the directory
// cannot be removed: Go 1.26's os.RemoveAll deletes with
// FileDispositionInformationEx, which wine 8 answers with "Invalid
// function" (not the status Go falls back on).
func winTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "syncer-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}
