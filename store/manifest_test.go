package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

func openTest(t *testing.T, dir string) *Manifest {
	t.Helper()
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManifestPersistsAcrossReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifest-n1")
	m := openTest(t, dir)
	e := Entry{Status: StatusArchived, Size: 10, Archived: 10, Dev: 1, Ino: 7, HashState: []byte("x")}
	if err := m.Put([]byte("a/\xff.log"), e, true); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m = openTest(t, dir)
	defer m.Close()
	got, err := m.Get([]byte("a/\xff.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Archived != 10 || got.Ino != 7 || string(got.HashState) != "x" {
		t.Fatalf("after reopen: %+v", got)
	}
	if _, err := m.Get([]byte("missing.log")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) err = %v, want ErrNotFound", err)
	}
}

func TestFilesIteratesInWalkOrder(t *testing.T) {
	m := openTest(t, t.TempDir())
	defer m.Close()
	// Inserted out of order on purpose.
	paths := []string{"ab.log", "a.log", "a/c/d.log", "a/b.log"}
	for i, p := range paths {
		if err := m.Put([]byte(p), Entry{Status: StatusArchived, Size: int64(i)}, false); err != nil {
			t.Fatal(err)
		}
	}
	it, err := m.Files()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for ; it.Valid(); it.Next() {
		e, err := it.Entry()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%d", it.Path(), e.Size))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"a/b.log=3", "a/c/d.log=2", "a.log=1", "ab.log=0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestLookupInode(t *testing.T) {
	m := openTest(t, t.TempDir())
	defer m.Close()
	if err := m.Put([]byte("app.log"), Entry{Status: StatusArchived, Dev: 3, Ino: 100}, false); err != nil {
		t.Fatal(err)
	}
	p, e, err := m.LookupInode(3, 100)
	if err != nil || string(p) != "app.log" || e.Ino != 100 {
		t.Fatalf("LookupInode = %q %+v %v", p, e, err)
	}
	// The file got a new inode: the old index key is stale and must not match.
	if err := m.Put([]byte("app.log"), Entry{Status: StatusArchived, Dev: 3, Ino: 200}, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.LookupInode(3, 100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stale inode: err = %v, want ErrNotFound", err)
	}
	// A batch moves an entry to a new name atomically.
	b := m.NewBatch()
	if err := b.Delete([]byte("app.log")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put([]byte("app.log.1"), Entry{Status: StatusRotated, Dev: 3, Ino: 200, Remote: []byte("app.log")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	p, e, err = m.LookupInode(3, 200)
	if err != nil || string(p) != "app.log.1" || string(e.Remote) != "app.log" {
		t.Fatalf("after move: %q %+v %v", p, e, err)
	}
	if _, err := m.Get([]byte("app.log")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old name still present: %v", err)
	}
	if _, _, err := m.LookupInode(0, 0); !errors.Is(err, ErrNotFound) {
		t.Fatal("inode 0 must never match")
	}
}

func TestNextSeq(t *testing.T) {
	dir := t.TempDir()
	m := openTest(t, dir)
	for want := uint64(1); want <= 3; want++ {
		n, err := m.NextSeq("commit")
		if err != nil || n != want {
			t.Fatalf("NextSeq = %d, %v; want %d", n, err, want)
		}
	}
	m.Close()
	m = openTest(t, dir)
	defer m.Close()
	if n, _ := m.NextSeq("commit"); n != 4 {
		t.Fatalf("after reopen NextSeq = %d, want 4", n)
	}
}

func TestDirConfinesAgentID(t *testing.T) {
	for _, id := range []string{"../../etc", "..", "a/b"} {
		d := Dir("/state", id)
		if filepath.Dir(d) != "/state" {
			t.Errorf("Dir(%q) = %q escapes the state dir", id, d)
		}
	}
}
