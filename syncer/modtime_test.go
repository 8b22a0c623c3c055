package syncer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
)

// TestArchiveKeepsNodeTimes: archived files carry their node's mtime (to
// the second), through a new file, an append and a rewrite; the version a
// rewrite pushes aside keeps the time of the content it holds. Before,
// every archived file had its upload time (agent accounts lack T).
func TestArchiveKeepsNodeTimes(t *testing.T) {
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	at := func(rel string, when time.Time) {
		t.Helper()
		if err := os.Chtimes(filepath.Join(e.dir, rel), when, when); err != nil {
			t.Fatal(err)
		}
	}
	want := func(rel string, when time.Time) {
		t.Helper()
		fi, err := os.Stat(filepath.Join(tg.tree, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(when.Truncate(time.Second)) {
			t.Errorf("%s archived with mtime %s, want the node's %s", rel, fi.ModTime().UTC(), when.UTC())
		}
	}
	t1 := time.Date(2025, 3, 4, 5, 6, 7, 800_000_000, time.UTC)
	e.write("app/a.log", []byte("one\n"))
	at("app/a.log", t1)
	e.push()
	want("app/a.log", t1)

	t2 := t1.Add(26 * time.Hour)
	e.appendTo("app/a.log", []byte("two\n"))
	at("app/a.log", t2)
	e.push()
	want("app/a.log", t2)

	t3 := t2.Add(time.Hour)
	e.write("app/a.log", []byte("rewritten\n"))
	at("app/a.log", t3)
	e.push()
	want("app/a.log", t3)
	entries, err := os.ReadDir(filepath.Join(tg.tree, "app"))
	if err != nil {
		t.Fatal(err)
	}
	var versions int
	for _, de := range entries {
		if _, _, ok := archive.VersionOf(de.Name()); ok && strings.HasPrefix(de.Name(), "a.log") {
			versions++
			want(filepath.Join("app", de.Name()), t2)
		}
	}
	if versions != 1 {
		t.Errorf("%d versions of a.log, want 1: %v", versions, entries)
	}
}
