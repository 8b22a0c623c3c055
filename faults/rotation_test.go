package faults

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRotation drives the four logrotate styles between pushes and counts,
// for every line ever written, how often it appears in the archive (the
// agent's .syncer records left out). The guarantee tested, with the
// rotated name matched (--include '**/*.log.[0-9]') and one rotation per
// push interval: every line written to app.log is archived exactly once,
// in the version that was app.log when it was written (the superseded copy
// for lines before the rotation, the new app.log for lines after).
//
//   - rename-and-create: the rotated file's tail is appended to the old
//     copy, the new file becomes a new version;
//   - compress-after-rotate (logrotate's delaycompress): the .gz made after
//     the next push is not matched and adds nothing;
//   - delete-after-rotate: the rotated file deleted after the next push
//     stays archived;
//   - copytruncate: app.log.1 is a copy (new inode) and app.log is
//     truncated in place; the agent recognises the copy by its head
//     fingerprint as the archived app.log and appends its tail to it, then
//     stores the truncated app.log as a new version.
func TestRotation(t *testing.T) {
	type step func(t *testing.T, dir string, w *lineWriter)
	mv := func(t *testing.T, dir string, _ *lineWriter) {
		if err := os.Rename(filepath.Join(dir, "app.log"), filepath.Join(dir, "app.log.1")); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		steps []any // int: write that many lines; "push"; or a step
	}{
		{"rename-and-create", []any{10, "push", 5, step(mv), 7, "push", 3, "push"}},
		{"compress-after-rotate", []any{10, "push", 5, step(mv), 7, "push", step(func(t *testing.T, dir string, _ *lineWriter) {
			if out, err := exec.Command("gzip", filepath.Join(dir, "app.log.1")).CombinedOutput(); err != nil {
				t.Fatalf("gzip: %v %s", err, out)
			}
		}), 4, "push"}},
		{"delete-after-rotate", []any{10, "push", 5, step(mv), 7, "push", step(func(t *testing.T, dir string, _ *lineWriter) {
			if err := os.Remove(filepath.Join(dir, "app.log.1")); err != nil {
				t.Fatal(err)
			}
		}), 4, "push"}},
		{"copytruncate", []any{10, "push", 5, step(func(t *testing.T, dir string, _ *lineWriter) {
			if out, err := exec.Command("cp", "-p", filepath.Join(dir, "app.log"), filepath.Join(dir, "app.log.1")).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			if err := os.Truncate(filepath.Join(dir, "app.log"), 0); err != nil {
				t.Fatal(err)
			}
		}), 7, "push", 3, "push"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, logs, state := t.TempDir(), t.TempDir(), t.TempDir()
			addr, pw := inProcessServer(t, root)
			w := &lineWriter{t: t, path: filepath.Join(logs, "app.log"), prefix: tc.name}
			args := append(agentArgs("node1", addr, logs, state), "--include", "**/*.log", "--include", "**/*.log.[0-9]")
			for _, s := range tc.steps {
				switch s := s.(type) {
				case int:
					w.write(s)
				case string:
					if r := push(t, pw, args...); r.code != 0 {
						t.Fatalf("push: %d %s %s", r.code, r.stdout, r.stderr)
					}
				case step:
					s(t, logs, w)
				}
			}
			missing, dup, lost := tally(w.lines, archivedLines(t, filepath.Join(root, "node1")))
			// The right version: the archive's app.log is the local one,
			// and a rotated app.log.1 still on the node is a superseded
			// version of app.log, byte for byte.
			if err := sameVersions(logs, filepath.Join(root, "node1")); err != nil {
				t.Errorf("%v\narchive:\n%s", err, treeListing(filepath.Join(root, "node1")))
			}
			if missing > 0 || dup > 0 {
				t.Errorf("%d of %d lines not archived, %d archived more than once\narchive:\n%s", missing, len(w.lines), dup, treeListing(filepath.Join(root, "node1")))
			}
			report(t, "Log rotation during pushes: "+tc.name,
				fmt.Sprintf("%d lines written across the rotation: %d archived exactly once, %d twice or more, %d missing (`TestRotation/%s`)", len(w.lines), len(w.lines)-missing-dup, dup, missing, tc.name), lost)
		})
	}
}

// TestRotationReadBackCut: copytruncate while every download is cut, so
// the check of the archived app.log before the copy's tail is appended
// fails. The truncated app.log must not become a new version in that push
// (it would supersede the archived log without the tail, and the next push
// would archive the copy again in full): both wait, and the next healthy
// push archives every line exactly once.
func TestRotationReadBackCut(t *testing.T) {
	root, logs, state := t.TempDir(), t.TempDir(), t.TempDir()
	_, pw, p := proxiedServer(t, root, 11)
	w := &lineWriter{t: t, path: filepath.Join(logs, "app.log"), prefix: "cut"}
	args := append(agentArgs("node1", p.Addr(), logs, state), "--include", "**/*.log", "--include", "**/*.log.[0-9]")
	w.write(200)
	if r := push(t, pw, args...); r.code != 0 {
		t.Fatalf("push: %d %s %s", r.code, r.stdout, r.stderr)
	}
	w.write(30)
	if out, err := exec.Command("cp", "-p", w.path, filepath.Join(logs, "app.log.1")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.Truncate(w.path, 0); err != nil {
		t.Fatal(err)
	}
	w.write(40)
	p.SetFaults(Faults{}, Faults{Drop: 1, FromServer: true})
	r := push(t, pw, args...)
	if s := parseSummary(t, r); r.code == 0 || s.FilesFailed != 2 || superseded(t, filepath.Join(root, "node1")) != 0 {
		t.Fatalf("push with downloads cut: exit %d, %d failed (want the copy and app.log), %d versions (want 0)\n%s%s",
			r.code, s.FilesFailed, superseded(t, filepath.Join(root, "node1")), r.stdout, r.stderr)
	}
	p.SetFaults(Faults{}, Faults{})
	w.write(5)
	if r := push(t, pw, args...); r.code != 0 {
		t.Fatalf("healthy push: %d %s %s", r.code, r.stdout, r.stderr)
	}
	missing, dup, lost := tally(w.lines, archivedLines(t, filepath.Join(root, "node1")))
	if err := sameVersions(logs, filepath.Join(root, "node1")); err != nil || missing+dup > 0 {
		t.Errorf("%d lines missing, %d archived more than once; %v\narchive:\n%s", missing, dup, err, treeListing(filepath.Join(root, "node1")))
	}
	report(t, "Log rotation: copytruncate while every download is cut (the read-back before appending the copy's tail fails)",
		fmt.Sprintf("that push failed for the copy and postponed the new version of app.log; the next push archived all %d lines exactly once, the superseded app.log identical to app.log.1 (`TestRotationReadBackCut`)", len(w.lines)), lost)
}

// tally counts the lines written that are not archived (and their bytes,
// newline included) and those archived more than once.
func tally(lines []string, counts map[string]int) (missing, dup int, lost int64) {
	for _, l := range lines {
		switch counts[l] {
		case 0:
			missing++
			lost += int64(len(l) + 1)
		case 1:
		default:
			dup++
		}
	}
	return missing, dup, lost
}

// sameVersions checks that the archive's app.log equals the local app.log
// and that, when the local app.log.1 exists, one superseded version of
// app.log equals it.
func sameVersions(logs, archive string) error {
	local, err := os.ReadFile(filepath.Join(logs, "app.log"))
	if err != nil {
		return err
	}
	if got, err := os.ReadFile(filepath.Join(archive, "app.log")); err != nil || !bytes.Equal(got, local) {
		return fmt.Errorf("archived app.log (%d bytes, %v) differs from the local one (%d bytes)", len(got), err, len(local))
	}
	rotated, err := os.ReadFile(filepath.Join(logs, "app.log.1"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	versions, _ := filepath.Glob(filepath.Join(archive, "app.log.superseded-*"))
	for _, v := range versions {
		if got, err := os.ReadFile(v); err == nil && bytes.Equal(got, rotated) {
			return nil
		}
	}
	return fmt.Errorf("no superseded version of app.log equals the rotated app.log.1 (%d bytes) among %d", len(rotated), len(versions))
}

// lineWriter appends numbered, unique lines to a log file.
type lineWriter struct {
	t      *testing.T
	path   string
	prefix string
	lines  []string
}

func (w *lineWriter) write(n int) {
	var b strings.Builder
	for range n {
		l := fmt.Sprintf("%s line %04d payload", w.prefix, len(w.lines))
		w.lines = append(w.lines, l)
		b.WriteString(l + "\n")
	}
	appendFile(w.t, w.path, []byte(b.String()))
}

// archivedLines counts every line of every archived file outside .syncer.
func archivedLines(t *testing.T, dir string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if fi.IsDir() && fi.Name() == ".syncer" {
			return filepath.SkipDir
		}
		if fi.IsDir() || strings.HasSuffix(p, ".gz") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			counts[s.Text()]++
		}
		return nil
	})
	return counts
}

func treeListing(dir string) string {
	var b strings.Builder
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !strings.Contains(p, "/.syncer/") {
			rel, _ := filepath.Rel(dir, p)
			fmt.Fprintf(&b, "  %s %d\n", rel, fi.Size())
		}
		return nil
	})
	return b.String()
}
