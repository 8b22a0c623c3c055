package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestMountCommandLocalUsers: `syncer mount` (the standalone view over the
// archive directory) lets no other user in by default, group or not; with
// --mount-allow-other, or the old --allow-other (deprecated, said so), a
// member of the group that may read node1's tree reads it, and nothing of
// node2's tree, chmod 700. (Before: --allow-other defaulted to true, so
// every local user could use the mount.)
func TestMountCommandLocalUsers(t *testing.T) {
	requireMountAsOthers(t)
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, state, mp := filepath.Join(base, "archive"), filepath.Join(base, "state"), filepath.Join(base, "mnt")
	for _, e := range []struct {
		rel  string
		mode os.FileMode
		gid  int
	}{
		{"", 0o755, 0}, {"node1", 0o750, readers}, {"node1/app.log", 0o640, readers},
		{"node2", 0o700, 0}, {"node2/app.log", 0o640, 0},
	} {
		p := filepath.Join(root, e.rel)
		var err error
		if strings.HasSuffix(e.rel, ".log") {
			err = os.WriteFile(p, []byte("log of "+filepath.Dir(e.rel)+"\n"), e.mode)
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
	for _, d := range []string{state, mp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = syscall.Unmount(mp, syscall.MNT_DETACH) })

	for _, tc := range []struct {
		name  string
		flags []string
		allow bool
	}{
		{"default", nil, false},
		{"mount-allow-other", []string{"--mount-allow-other"}, true},
		{"allow-other", []string{"--allow-other"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"mount", "--root", root, "--state", state}, tc.flags...)
			cmd := exec.Command(testkit.SyncerBinary(t), append(args, mp)...)
			var stderr testkit.LockedBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			stop := func() {
				t.Helper()
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("mount after SIGTERM: %v\n%s", err, &stderr)
					}
				case <-time.After(30 * time.Second):
					_ = cmd.Process.Kill()
					t.Errorf("mount did not stop after SIGTERM\n%s", &stderr)
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, err := os.Stat(filepath.Join(mp, "node1", "app.log")); err == nil {
					break
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatalf("the view did not show up\n%s", &stderr)
				}
				time.Sleep(50 * time.Millisecond)
			}
			defer stop()
			if tc.name == "allow-other" && !strings.Contains(stderr.String(), "use --mount-allow-other") {
				t.Errorf("--allow-other is not said to be deprecated: %s", &stderr)
			}
			for _, r := range []struct {
				group bool
				args  []string
				want  string
				ok    bool
			}{
				{true, []string{"cat", filepath.Join(mp, "node1/app.log")}, "log of node1", tc.allow},
				{true, []string{"cat", filepath.Join(mp, "node2/app.log")}, "", false},
				{true, []string{"ls", filepath.Join(mp, "node2")}, "", false},
				{false, []string{"cat", filepath.Join(mp, "node1/app.log")}, "", false},
				{false, []string{"ls", mp}, "node2", tc.allow},
			} {
				out, err := asNobody(r.group, r.args...)
				if r.ok && (err != nil || !strings.Contains(out, r.want)) {
					t.Errorf("nobody (group %v) %v: %v %q, want %q", r.group, r.args, err, out, r.want)
				}
				if !r.ok && (err == nil || !strings.Contains(out, "Permission denied")) {
					t.Errorf("nobody (group %v) %v: %v %q, want Permission denied", r.group, r.args, err, out)
				}
			}
		})
	}
}
