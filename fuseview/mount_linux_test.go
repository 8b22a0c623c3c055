//go:build linux

package fuseview

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestViewMatchesArchive: diff -r, grep -r and find on the mount agree
// with the archive minus .syncer/, and sizes and mtimes are exact.
func TestViewMatchesArchive(t *testing.T) {
	requireFUSE(t)
	for _, pt := range []struct {
		name string
		off  bool
	}{{"passthrough", false}, {"daemon-reads", true}} {
		t.Run(pt.name, func(t *testing.T) {
			root := makeArchive(t)
			m, mp := mountView(t, root, Options{NoPassthrough: pt.off})

			if _, err := exec.LookPath("diff"); err != nil {
				t.Skip("diff not installed")
			}
			out, err := exec.Command("diff", "-r", "-x", MetaDir, root, mp).CombinedOutput()
			if err != nil {
				t.Fatalf("diff -r archive view: %v\n%s", err, out)
			}

			want := filesUnder(t, root, true)
			if got := filesUnder(t, mp, false); !reflect.DeepEqual(got, want) {
				t.Fatalf("files in the view:\n%v\nwant:\n%v", got, want)
			}
			findOut, err := exec.Command("find", mp, "-type", "f").Output()
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			for _, l := range strings.Split(strings.TrimSpace(string(findOut)), "\n") {
				found = append(found, strings.TrimPrefix(l, mp+"/"))
			}
			sort.Strings(found)
			if !reflect.DeepEqual(found, want) {
				t.Fatalf("find -type f:\n%v\nwant:\n%v", found, want)
			}

			grep := func(dir string) []string {
				out, err := exec.Command("grep", "-r", "ERROR", dir).Output()
				if err != nil {
					t.Fatalf("grep -r %s: %v", dir, err)
				}
				var lines []string
				for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
					l = strings.TrimPrefix(l, dir+"/")
					if strings.Contains(l, "/"+MetaDir+"/") {
						continue
					}
					lines = append(lines, l)
				}
				sort.Strings(lines)
				return lines
			}
			wantLines := grep(root)
			if len(wantLines) < 100 {
				t.Fatalf("the test archive has too few ERROR lines (%d) to prove anything", len(wantLines))
			}
			if got := grep(mp); !reflect.DeepEqual(got, wantLines) {
				t.Fatalf("grep -r through the view found %d lines, the archive %d", len(got), len(wantLines))
			}

			for _, rel := range want {
				a, err := os.Stat(filepath.Join(root, rel))
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.Stat(filepath.Join(mp, rel))
				if err != nil {
					t.Fatal(err)
				}
				if a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()) {
					t.Errorf("%s: view size %d mtime %v, archive %d %v", rel, b.Size(), b.ModTime(), a.Size(), a.ModTime())
				}
			}
			for _, p := range []string{"node1/.syncer", "node1/.syncer/agent.json", "node2/.syncer", ".syncer"} {
				if _, err := os.Stat(filepath.Join(mp, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("stat %s in the view: %v, want not exist (hidden)", p, err)
				}
			}

			st := m.Stats()
			t.Logf("passthrough %v, %+v", m.Passthrough(), st)
			if st.Opens == 0 {
				t.Fatal("no file was opened through the view")
			}
			if pt.off && st.DaemonReads == 0 {
				t.Error("reads were not served by the daemon with NoPassthrough")
			}
			if !pt.off && m.Passthrough() && st.DaemonReads != 0 {
				t.Errorf("passthrough is on but %d reads went through the daemon", st.DaemonReads)
			}
		})
	}
}

// TestMountIsReadOnlyInKernel: the mount carries ro,nosuid,nodev.
func TestMountIsReadOnlyInKernel(t *testing.T) {
	requireFUSE(t)
	root := makeArchive(t)
	_, mp := mountView(t, root, Options{})
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		bit  int64
	}{{"ro", unix.ST_RDONLY}, {"nosuid", unix.ST_NOSUID}, {"nodev", unix.ST_NODEV}} {
		if st.Flags&f.bit == 0 {
			t.Errorf("mount flags %#x lack %s", st.Flags, f.name)
		}
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(" "+mp+" ro,")) {
		t.Errorf("mountinfo has no read-only entry for %s", mp)
	}
}
