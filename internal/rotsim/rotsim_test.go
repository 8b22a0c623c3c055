package rotsim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStyles runs every style for a few rotations, fewer than it keeps, and
// wants each line written on the node's disk exactly once, in as many
// files as there were rotations plus the live log.
func TestStyles(t *testing.T) {
	for _, s := range Styles() {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			if err := s.Check(); err != nil {
				t.Skipf("%v (CI installs logrotate, nginx-light and python3)", err)
			}
			dir := t.TempDir()
			w, err := New(dir, s, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := w.Close(); err != nil {
					t.Error(err)
				}
			}()
			const rotations = 3
			for range rotations {
				if err := w.Write(10); err != nil {
					t.Fatal(err)
				}
				if err := w.Rotate(); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Write(5); err != nil {
				t.Fatal(err)
			}
			if w.Rotations() < rotations {
				t.Errorf("Rotations() = %d, want at least %d", w.Rotations(), rotations)
			}
			c, err := Tally(w.Lines(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if !c.OK() || c.Files != w.Rotations()+1 {
				t.Errorf("on disk: %v in %d files (want %d)\n%s", c, c.Files, w.Rotations()+1, listing(dir))
			}
			var n int64
			for _, l := range w.Lines() {
				n += int64(len(l)) + 1
			}
			if n != w.BytesWritten() {
				t.Errorf("BytesWritten() = %d, lines hold %d", w.BytesWritten(), n)
			}
			if s.OldDir != "" {
				if m, _ := filepath.Glob(filepath.Join(dir, s.OldDir, "*")); len(m) != w.Rotations() {
					t.Errorf("%s holds %d files, want %d", s.OldDir, len(m), w.Rotations())
				}
			}
			t.Logf("%v\n%s", c, listing(dir))
		})
	}
}

func listing(dir string) string {
	var b strings.Builder
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			b.WriteString("  " + rel + "\n")
		}
		return nil
	})
	return b.String()
}
