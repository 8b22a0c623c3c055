//go:build linux

package fuseview

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Local users of the tests below: nobody, alone or in the group that may
// read one agent's tree.
const (
	nobodyID    = 65534
	readerGroup = 4242
)

// asNobody runs the command as uid 65534, with readerGroup as its only
// supplementary group if inGroup, as a local user without privileges
// would, and returns its output and error.
func asNobody(t *testing.T, inGroup bool, args ...string) (string, error) {
	t.Helper()
	priv := []string{fmt.Sprintf("--reuid=%d", nobodyID), fmt.Sprintf("--regid=%d", nobodyID), "--clear-groups"}
	if inGroup {
		priv[2] = fmt.Sprintf("--groups=%d", readerGroup)
	}
	out, err := exec.Command("setpriv", append(append(priv, "--"), args...)...).CombinedOutput()
	return string(out), err
}

// requireSetpriv skips the test without setpriv (util-linux).
func requireSetpriv(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("running a reader as another user needs setpriv (util-linux)")
	}
}

// permArchive makes an archive that a local user may partly read: agent
// "secret" chmod 700 by the operator, "shared" readable by readerGroup
// (but its private.log by no group), "open" readable by all. Everything
// is root's. The test's directories are opened up so that nobody can
// reach the archive and the mount point at all.
func permArchive(t *testing.T) (root, mp string) {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, mp = filepath.Join(base, "archive"), filepath.Join(base, "mnt")
	type entry struct {
		rel  string
		mode os.FileMode
		gid  int
	}
	for _, e := range []entry{
		{"", 0o755, 0}, {"secret", 0o700, 0}, {"secret/app", 0o750, 0}, {"secret/app/app.log", 0o640, 0},
		{"shared", 0o750, readerGroup}, {"shared/app.log", 0o640, readerGroup}, {"shared/private.log", 0o600, readerGroup},
		{"open", 0o755, 0}, {"open/app.log", 0o644, 0},
	} {
		p := filepath.Join(root, e.rel)
		var err error
		if strings.HasSuffix(e.rel, ".log") {
			err = os.WriteFile(p, []byte("log of "+e.rel+"\n"), e.mode)
		} else {
			err = os.MkdirAll(p, e.mode)
		}
		if err == nil {
			err = os.Chmod(p, e.mode)
		}
		if err == nil {
			err = os.Chown(p, 0, e.gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, mp
}

// TestMountEnforcesArchiveModes: through the mount, a local user who is
// not root reads exactly what the archive's modes and owners let it read,
// from both sources: nothing of an agent's tree chmod-ed 700, what its
// group may read, not a group-less file; stat shows the archive's modes
// without write bits and its owners. Without AllowOther it cannot use the
// mount at all, group or not. (Before, the index-backed view showed every
// file 0444 and every directory 0555, root's: the 700 tree was readable.)
func TestMountEnforcesArchiveModes(t *testing.T) {
	requireFUSE(t)
	requireSetpriv(t)
	for _, srcName := range []string{"disk", "index"} {
		for _, allowOther := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/allow_other=%v", srcName, allowOther), func(t *testing.T) {
				root, mp := permArchive(t)
				var src Source
				if srcName == "disk" {
					ds, err := NewDiskSource(root, testLogger(t))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { ds.Close() })
					src = ds
				} else {
					is, err := NewIndexSource(openIndex(t, root), root)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { is.Close() })
					src = is
				}
				m, err := Mount(context.Background(), src, root, mp, Options{Logger: testLogger(t), AllowOther: allowOther})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { unmountRetrying(t, m) })

				// Root (the mounting user) reads everything, as on disk.
				for _, rel := range []string{"secret/app/app.log", "shared/private.log", "open/app.log"} {
					if b, err := os.ReadFile(filepath.Join(mp, rel)); err != nil || string(b) != "log of "+rel+"\n" {
						t.Errorf("root reads %s: %q, %v", rel, b, err)
					}
				}
				out, err := exec.Command("stat", "-c", "%n %a %u %g",
					filepath.Join(mp, "secret"), filepath.Join(mp, "shared"), filepath.Join(mp, "shared/app.log"),
					filepath.Join(mp, "shared/private.log"), filepath.Join(mp, "open/app.log")).CombinedOutput()
				want := fmt.Sprintf("%[1]s/secret 500 0 0\n%[1]s/shared 550 0 %[2]d\n%[1]s/shared/app.log 440 0 %[2]d\n%[1]s/shared/private.log 400 0 %[2]d\n%[1]s/open/app.log 444 0 0\n", mp, readerGroup)
				if err != nil || string(out) != want {
					t.Errorf("stat through the mount: %v\n%s\nwant\n%s", err, out, want)
				}

				type read struct {
					inGroup bool
					rel     string
					ok      bool
				}
				reads := []read{
					{false, "open/app.log", true},
					{false, "secret/app/app.log", false},
					{false, "shared/app.log", false},
					{true, "shared/app.log", true},
					{true, "shared/private.log", false},
					{true, "secret/app/app.log", false},
					{true, "open/app.log", true},
				}
				if !allowOther {
					for i := range reads {
						reads[i].ok = false
					}
				}
				for _, r := range reads {
					out, err := asNobody(t, r.inGroup, "cat", filepath.Join(mp, r.rel))
					switch {
					case r.ok && (err != nil || out != "log of "+r.rel+"\n"):
						t.Errorf("nobody (group %v) cannot read %s through the mount: %v %s", r.inGroup, r.rel, err, out)
					case !r.ok && err == nil:
						t.Errorf("nobody (group %v) read %s through the mount: %q", r.inGroup, r.rel, out)
					case !r.ok && !strings.Contains(out, "Permission denied"):
						t.Errorf("nobody (group %v) reading %s: %v %s, want Permission denied", r.inGroup, r.rel, err, out)
					}
				}
				// Nor can it list the 700 tree, or find a name in it.
				for _, args := range [][]string{{"ls", filepath.Join(mp, "secret")}, {"find", filepath.Join(mp, "secret")}, {"grep", "-r", "log", filepath.Join(mp, "secret")}} {
					if out, err := asNobody(t, true, args...); err == nil || strings.Contains(out, "app.log") {
						t.Errorf("nobody ran %v on the 700 tree: %v %q", args, err, out)
					}
				}
				// A grep -r over the whole mount finds only what it may read.
				all, _ := asNobody(t, true, "grep", "-r", "log of", mp)
				for _, rel := range []string{"secret/app/app.log", "shared/private.log"} {
					if strings.Contains(all, "log of "+rel) {
						t.Errorf("grep -r over the mount as nobody found %s: %q", rel, all)
					}
				}
				if allowOther && !strings.Contains(all, "log of shared/app.log") {
					t.Errorf("grep -r over the mount as nobody in the group did not find shared/app.log: %q", all)
				}
			})
		}
	}
}
