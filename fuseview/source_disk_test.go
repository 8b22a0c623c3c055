package fuseview

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"
)

func TestCheckPath(t *testing.T) {
	cases := []struct {
		agent, path string
		want        error
	}{
		{"node1", "", nil},
		{"node1", "app/a.log", nil},
		{"node1", "app/.syncer/x", nil}, // only the agent-level .syncer is metadata
		{"", "", ErrBadPath},
		{"..", "", ErrBadPath},
		{".syncer", "", ErrBadPath},
		{"a/b", "", ErrBadPath},
		{"node1", "../node2/a.log", ErrBadPath},
		{"node1", "app/../../x", ErrBadPath},
		{"node1", "/etc/passwd", ErrBadPath},
		{"node1", "app//a.log", ErrBadPath},
		{"node1", "app/./a.log", ErrBadPath},
		{"node1", "a\x00b", ErrBadPath},
		{"node1", "caf\xe9.log", nil}, // names are archived byte-exact, UTF-8 or not
		{"caf\xe9", "app/\xff", nil},
		{"node1", ".syncer", ErrNotExist},
		{"node1", ".syncer/agent.json", ErrNotExist},
	}
	for _, c := range cases {
		err := checkPath(c.agent, c.path)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("checkPath(%q, %q) = %v, want %v", c.agent, c.path, err, c.want)
		}
	}
}

func newTestDiskSource(t *testing.T, root string) *DiskSource {
	t.Helper()
	s, err := NewDiskSource(root, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mkfile(t *testing.T, p string, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiskSourceShowsOnlyTheArchive: metadata, symlinks (even ones that
// point inside) and paths that walk out are not shown.
func TestDiskSourceShowsOnlyTheArchive(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	mkfile(t, filepath.Join(outside, "secret"), "secret\n")
	mkfile(t, filepath.Join(root, "node1/app/a.log"), "hello\n")
	mkfile(t, filepath.Join(root, "node1/.syncer/agent.json"), "{}\n")
	mkfile(t, filepath.Join(root, ".syncer/x"), "{}\n")
	mkfile(t, filepath.Join(root, "stray-file"), "not an agent\n")
	if runtime.GOOS != "windows" {
		if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "node1/app/out.log")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("a.log", filepath.Join(root, "node1/app/in.log")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(root, "node1/outdir")); err != nil {
			t.Fatal(err)
		}
	}
	s := newTestDiskSource(t, root)

	agents, err := s.Agents()
	if err != nil || len(agents) != 1 || agents[0] != "node1" {
		t.Fatalf("Agents() = %v, %v; want [node1]", agents, err)
	}
	ents, err := s.ReadDir("node1", "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	if len(names) != 1 || names[0] != "app" {
		t.Errorf("ReadDir(node1) = %v, want [app]", names)
	}
	ents, err = s.ReadDir("node1", "app")
	if err != nil || len(ents) != 1 || ents[0].Name != "a.log" || ents[0].Size != 6 || ents[0].IsDir() {
		t.Errorf("ReadDir(node1/app) = %+v, %v; want only a.log of 6 bytes", ents, err)
	}
	for _, p := range []string{".syncer", ".syncer/agent.json", "app/out.log", "app/in.log", "outdir", "outdir/secret", "app/nope.log", "app/a.log/x"} {
		if _, err := s.Lookup("node1", p); !errors.Is(err, ErrNotExist) {
			t.Errorf("Lookup(node1, %q) = %v, want ErrNotExist", p, err)
		}
	}
	for _, p := range []string{"../../" + filepath.Base(outside) + "/secret", "app/../../x"} {
		if _, err := s.Lookup("node1", p); !errors.Is(err, ErrBadPath) {
			t.Errorf("Lookup(node1, %q) = %v, want ErrBadPath", p, err)
		}
	}
	if _, err := s.ReadDir("node1", "outdir"); err == nil {
		t.Error("ReadDir through a symlink out of the archive succeeded")
	}
	a, err := s.Lookup("node1", "app/a.log")
	if err != nil || a.Size != 6 || a.IsDir() {
		t.Errorf("Lookup(node1, app/a.log) = %+v, %v", a, err)
	}
}

// TestDiskSourceReportsChanges: appends, new files and new agents in
// directories that were listed are reported; .syncer changes are not.
func TestDiskSourceReportsChanges(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "node1/app/a.log"), "hello\n")
	s := newTestDiskSource(t, root)
	got := make(chan Change, 100)
	cancel := s.Subscribe(func(c Change) { got <- c })
	defer cancel()
	if _, err := s.ReadDir("node1", "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadDir("node1", ""); err != nil {
		t.Fatal(err)
	}
	expect := func(want Change, do func()) {
		t.Helper()
		do()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case c := <-got:
				if c.Agent == "node1" && (c.Path == ".syncer" || len(c.Path) > 8 && c.Path[:8] == ".syncer/") {
					t.Errorf("metadata change reported: %+v", c)
				}
				if c == want {
					return
				}
			case <-deadline:
				t.Fatalf("no change %+v reported", want)
			}
		}
	}
	expect(Change{"node1", "app/a.log"}, func() {
		f, err := os.OpenFile(filepath.Join(root, "node1/app/a.log"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("more\n")
		f.Close()
	})
	expect(Change{"node1", "app/b.log"}, func() { mkfile(t, filepath.Join(root, "node1/app/b.log"), "b\n") })
	expect(Change{"node2", ""}, func() { mkfile(t, filepath.Join(root, "node2/x.log"), "x\n") })
	expect(Change{"node1", "other"}, func() {
		mkfile(t, filepath.Join(root, "node1/.syncer/agent.json"), "{}\n")
		mkfile(t, filepath.Join(root, "node1/other/c.log"), "c\n")
	})
}
