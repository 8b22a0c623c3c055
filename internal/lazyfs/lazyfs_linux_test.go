package lazyfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/syncer-dev/syncer/internal/testkit"
)

func mountTest(t *testing.T) (*FS, string, string) {
	t.Helper()
	testkit.RequireRoot(t, "mounts a FUSE file system")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testkit.Unavailable(t, "no /dev/fuse")
	}
	base := t.TempDir()
	backing, store, mnt := filepath.Join(base, "backing"), filepath.Join(base, "store"), filepath.Join(base, "mnt")
	for _, d := range []string{backing, store, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(backing, "old"), []byte("before the mount"), 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := Mount(mnt, backing, store)
	if err != nil {
		t.Fatal(err)
	}
	unmounted := false
	t.Cleanup(func() {
		if !unmounted {
			_ = f.Unmount()
		}
	})
	return f, mnt, base
}

func write(t *testing.T, p, data string, sync bool) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func syncDir(t *testing.T, p string) {
	t.Helper()
	d, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestPowerCut: only what was fsynced survives, by POSIX's rules: a file's
// data as of its last fsync, a directory's names as of its last fsync.
func TestPowerCut(t *testing.T) {
	f, mnt, base := mountTest(t)
	f.Count(func(p string) string { return filepath.Dir(p) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(mnt, "d"), 0o755))
	write(t, filepath.Join(mnt, "d", "synced"), "one", true).Close()
	write(t, filepath.Join(mnt, "d", "unsynced"), "lost data", false).Close()
	syncDir(t, filepath.Join(mnt, "d"))
	syncDir(t, mnt)
	write(t, filepath.Join(mnt, "d", "synced"), " two", false).Close() // appended, not synced
	write(t, filepath.Join(mnt, "d", "noname"), "data synced, name not", true).Close()
	must(os.Link(filepath.Join(mnt, "old"), filepath.Join(mnt, "old.v1"))) // name not synced
	must(os.Mkdir(filepath.Join(mnt, "newdir"), 0o755))                    // parent not synced after
	write(t, filepath.Join(mnt, "newdir", "x"), "x", true).Close()
	syncDir(t, filepath.Join(mnt, "newdir"))
	if n := f.Written("d"); n != int64(len("one")+len("lost data")+len(" two")+len("data synced, name not")) {
		t.Errorf("Written(d) = %d", n)
	}
	if off, ok := f.FirstWrite("d/synced"); !ok || off != 0 {
		t.Errorf("FirstWrite(d/synced) = %d, %v; want 0, true", off, ok)
	}
	f.Crash()
	syncDir(t, mnt) // after the crash: records nothing
	must(f.Unmount())
	out := filepath.Join(base, "out")
	must(os.Mkdir(out, 0o755))
	must(f.Survivors(out))

	want := map[string]string{"old": "before the mount", "d/synced": "one", "d/unsynced": ""}
	got := map[string]string{}
	must(filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(out, p)
		got[rel] = string(b)
		return err
	}))
	if len(got) != len(want) {
		t.Errorf("survivors %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q survived, want %q", k, got[k], v)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "old")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("old: %v %v, want mode 0640 kept", fi.Mode(), err)
	}
}
