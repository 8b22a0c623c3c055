package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
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

// headEntry is an archived entry whose first archived bytes are content.
func headEntry(content string, archived int64) Entry {
	n := HeadLenFor(archived)
	return Entry{Status: StatusArchived, Size: archived, Archived: archived, HeadLen: n, Head: sha256.Sum256([]byte(content[:n]))}
}

func TestHeadLenFor(t *testing.T) {
	for _, c := range [][2]int64{{0, 0}, {-1, 0}, {1, 1}, {2, 2}, {3, 2}, {350, 256}, {4095, 2048}, {4096, 4096}, {1 << 40, 4096}} {
		if got := HeadLenFor(c[0]); got != c[1] {
			t.Errorf("HeadLenFor(%d) = %d, want %d", c[0], got, c[1])
		}
	}
}

// headKeys counts the head index keys, stale ones included.
func headKeys(t *testing.T, m *Manifest) int {
	t.Helper()
	it, err := m.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixHead}, UpperBound: []byte{prefixHead + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

func TestFindByHead(t *testing.T) {
	m := openTest(t, filepath.Join(t.TempDir(), "manifest-n1"))
	defer m.Close()
	log := strings.Repeat("2026-11-24T10:00:00Z node1 GET /x 200\n", 200) // 7600 bytes
	find := func(head string) []string {
		t.Helper()
		got, err := m.FindByHead([]byte(head[:min(len(head), FingerprintSpan)]), int64(len(head)), 10)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, g := range got {
			paths = append(paths, string(g.Path))
		}
		return paths
	}
	if got := find(log); got != nil {
		t.Fatalf("empty manifest found %q", got)
	}
	// Archived sizes on both sides of the 4 KiB span and below it; a
	// partial upload and an unrelated file are never found.
	put := func(path string, e Entry) {
		t.Helper()
		if err := m.Put([]byte(path), e, false); err != nil {
			t.Fatal(err)
		}
	}
	put("big.log", headEntry(log, 5000))
	put("small.log", headEntry(log, 350))
	put("tiny.log", headEntry(log, 1))
	put("other.log", headEntry(strings.Repeat("x", 5000), 5000))
	put("partial.log", Entry{Status: StatusPartial})
	gone := headEntry(log, 700)
	gone.Status = StatusGone
	put("gone.log", gone)
	if got, want := find(log), []string{"big.log", "gone.log", "small.log", "tiny.log"}; !slices.Equal(got, want) {
		t.Fatalf("FindByHead(log) = %q, want %q (longest head first)", got, want)
	}
	// A file shorter than an entry's head cannot begin with its archived bytes.
	if got, want := find(log[:300]), []string{"tiny.log"}; !slices.Equal(got, want) {
		t.Fatalf("FindByHead(300 bytes) = %q, want %q", got, want)
	}
	// A rewrite moves the entry's key; a delete drops it: no stale keys.
	before := headKeys(t, m)
	put("small.log", headEntry(strings.Repeat("y", 900), 900))
	if got, want := find(log), []string{"big.log", "gone.log", "tiny.log"}; !slices.Equal(got, want) {
		t.Fatalf("after rewriting small.log: %q, want %q", got, want)
	}
	b := m.NewBatch()
	if err := b.Delete([]byte("big.log")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	put("tiny.log", Entry{Status: StatusPartial})
	if got, want := find(log), []string{"gone.log"}; !slices.Equal(got, want) {
		t.Fatalf("after delete and restart: %q, want %q", got, want)
	}
	if got := headKeys(t, m); got != before-2 {
		t.Fatalf("head keys: %d, want %d (one deleted, one dropped by an upload under way)", got, before-2)
	}
}
