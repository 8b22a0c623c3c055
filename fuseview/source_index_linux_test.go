//go:build linux

package fuseview

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/store"
)

// openIndex builds the historian's index over root and runs it until the
// test ends.
func openIndex(t *testing.T, root string) *store.Index {
	t.Helper()
	ix, err := store.OpenIndex(store.IndexConfig{Dir: filepath.Join(t.TempDir(), "index"), Root: root, ReconcileEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		ix.Close()
	})
	select {
	case <-ix.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("index not ready after 30s")
	}
	return ix
}

// TestIndexBackedView: the view over the index shows the archive as the
// disk does, follows the index's changes, and a file superseded by a new
// upload opens as the new file while an old reader keeps the old bytes
// (the index knows no inode numbers: the view finds out at open).
func TestIndexBackedView(t *testing.T) {
	requireFUSE(t)
	root := makeArchive(t)
	ix := openIndex(t, root)
	src, err := NewIndexSource(ix, root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	mp := t.TempDir()
	m, err := Mount(context.Background(), src, root, mp, Options{
		Logger: testLogger(t), EntryTimeout: time.Minute, AttrTimeout: time.Minute, NegativeTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountRetrying(t, m) })

	if out, err := exec.Command("diff", "-r", "-x", archive.MetaDir, root, mp).CombinedOutput(); err != nil {
		t.Fatalf("diff -r archive view: %v\n%s", err, out)
	}

	logPath := "node1/app/2026-11-24.log"
	old, err := os.ReadFile(filepath.Join(root, logPath))
	if err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(filepath.Join(mp, logPath))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	// Supersede: old content under a version name, a new file in its place.
	if err := os.Rename(filepath.Join(root, logPath), filepath.Join(root, logPath+".superseded-20261124T120000Z")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, logPath, []byte("the new upload\n"), time.Now())
	writeFile(t, root, "node1/app/fresh.log", []byte("fresh\n"), time.Now())
	if err := ix.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the new version and the new file through the index", func() error {
		got, err := os.ReadFile(filepath.Join(mp, logPath))
		if err != nil || string(got) != "the new upload\n" {
			return errors.New("not the new version")
		}
		if got, err := os.ReadFile(filepath.Join(mp, "node1/app/fresh.log")); err != nil || string(got) != "fresh\n" {
			return errors.New("fresh.log not there")
		}
		return nil
	})
	if got, err := io.ReadAll(held); err != nil || !bytes.Equal(got, old) {
		t.Errorf("the old reader read %d bytes (%v), want the superseded %d", len(got), err, len(old))
	}
}

// TestIndexBackedViewTimesAndDots: through the index, directories show
// their real times (agent directories showed 1970), files their archived
// mtime (the node's, which agents set), and listings have "." and "..".
func TestIndexBackedViewTimesAndDots(t *testing.T) {
	requireFUSE(t)
	root := makeArchive(t)
	dirTime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fileTime := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(root, "node1", "app", "2026-11-24.log"), fileTime, fileTime); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"node1", "node1/app"} {
		if err := os.Chtimes(filepath.Join(root, d), dirTime, dirTime); err != nil {
			t.Fatal(err)
		}
	}
	ix := openIndex(t, root)
	src, err := NewIndexSource(ix, root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	mp := t.TempDir()
	m, err := Mount(context.Background(), src, root, mp, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountRetrying(t, m) })
	for rel, want := range map[string]time.Time{"node1": dirTime, "node1/app": dirTime, "node1/app/2026-11-24.log": fileTime} {
		fi, err := os.Stat(filepath.Join(mp, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(want) {
			t.Errorf("%s: mtime %s through the mount, want %s", rel, fi.ModTime().UTC(), want)
		}
	}
	out, err := exec.Command("ls", "-a", filepath.Join(mp, "node1")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if names := strings.Fields(string(out)); len(names) < 3 || names[0] != "." || names[1] != ".." {
		t.Errorf("ls -a node1: %q, want . and .. first", names)
	}
	if out, err := exec.Command("find", mp, "-maxdepth", "1", "-type", "d").Output(); err != nil || !strings.Contains(string(out), "node1") {
		t.Errorf("find through the mount: %v %s", err, out)
	}
}
