//go:build linux

package fuseview

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// listingString renders a listing for comparison: names, types, sizes,
// mtimes and inodes, sorted.
func listingString(ents []DirEntry) string {
	lines := make([]string, 0, len(ents))
	for _, e := range ents {
		lines = append(lines, fmt.Sprintf("%s %v %d %d %d", e.Name, e.Mode, e.Size, e.MTime.UnixNano(), e.Ino))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestDiskSourceKeepsListings: a watched directory's listing is kept
// (find and grep -r list every directory on every run), and every kind of
// change drops it, so the next listing matches the disk again within the
// time a change may take to show.
func TestDiskSourceKeepsListings(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "node1/app/a.log"), "hello\n")
	mkfile(t, filepath.Join(root, "node1/app/b.log"), "b\n")
	mkfile(t, filepath.Join(root, "node1/app/sub/c.log"), "c\n")

	// fresh lists a directory from the disk, bypassing any kept listing.
	fresh := func(agent, dir string) string {
		t.Helper()
		s := newTestDiskSource(t, root)
		ents, err := s.ReadDir(agent, dir)
		if err != nil {
			t.Fatal(err)
		}
		return listingString(ents)
	}

	t.Run("not kept without change reports", func(t *testing.T) {
		s := newTestDiskSource(t, root)
		if _, err := s.ReadDir("node1", "app"); err != nil {
			t.Fatal(err)
		}
		if len(s.listings.dirs) != 0 {
			t.Errorf("listings kept with nobody subscribed (no watches): %v", s.listings.dirs)
		}
	})

	s := newTestDiskSource(t, root)
	cancel := s.Subscribe(func(Change) {})
	defer cancel()
	first, err := s.ReadDir("node1", "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.listings.dirs["node1/app"]; !ok {
		t.Fatalf("the listing of a watched directory was not kept")
	}
	// A caller may filter its copy in place; the kept listing stays whole.
	want := listingString(first)
	first[0] = DirEntry{Name: "scribbled"}
	again, err := s.ReadDir("node1", "app")
	if err != nil {
		t.Fatal(err)
	}
	if got := listingString(again); got != want {
		t.Fatalf("second listing differs from the first:\n%s\nwant\n%s", got, want)
	}

	// Each change must show in the next listings; a listing kept across it
	// would not.
	changes := []struct {
		name string
		dir  string
		do   func()
	}{
		{"append", "app", func() {
			f, err := os.OpenFile(filepath.Join(root, "node1/app/a.log"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("more\n")
			f.Close()
		}},
		{"new file", "app", func() { mkfile(t, filepath.Join(root, "node1/app/new.log"), "new\n") }},
		{"mtime", "app", func() {
			mt := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
			if err := os.Chtimes(filepath.Join(root, "node1/app/b.log"), mt, mt); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced", "app", func() {
			p := filepath.Join(root, "node1/app/b.log")
			if err := os.Rename(p, p+".superseded-20261124T120000Z"); err != nil {
				t.Fatal(err)
			}
			mkfile(t, p, "new version\n")
		}},
		{"removed", "app", func() {
			if err := os.Remove(filepath.Join(root, "node1/app/new.log")); err != nil {
				t.Fatal(err)
			}
		}},
		{"file in a subdirectory", "app/sub", func() { mkfile(t, filepath.Join(root, "node1/app/sub/d.log"), "d\n") }},
		{"subdirectory renamed", "app", func() {
			if err := os.Rename(filepath.Join(root, "node1/app/sub"), filepath.Join(root, "node1/app/sub2")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			// Both directories listed (and kept) before the change.
			for _, d := range []string{"app", "app/sub", "app/sub2"} {
				s.ReadDir("node1", d)
			}
			before := fresh("node1", c.dir)
			c.do()
			after := fresh("node1", c.dir)
			if after == before {
				t.Fatalf("the change did not alter the listing on disk; the test proves nothing")
			}
			eventually(t, time.Second, "the change in the listing", func() error {
				ents, err := s.ReadDir("node1", c.dir)
				if err != nil {
					return err
				}
				if got := listingString(ents); got != after {
					return fmt.Errorf("listing\n%s\nwant\n%s", got, after)
				}
				return nil
			})
		})
	}
	if _, err := s.ReadDir("node1", "app/sub"); err == nil {
		t.Errorf("the renamed directory is still listed under its old name")
	}
}
