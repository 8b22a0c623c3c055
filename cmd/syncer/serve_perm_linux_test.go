package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// A local user without privileges, and the group the operator lets read
// the archive.
const (
	nobody  = 65534
	readers = 4243
)

// asNobody runs a command as uid 65534, in the group readers if group (and
// no other), as a local user without privileges would.
func asNobody(group bool, args ...string) (string, error) {
	priv := []string{fmt.Sprintf("--reuid=%d", nobody), fmt.Sprintf("--regid=%d", nobody), "--clear-groups"}
	if group {
		priv[2] = fmt.Sprintf("--groups=%d", readers)
	}
	out, err := exec.Command("setpriv", append(append(priv, "--"), args...)...).CombinedOutput()
	return string(out), err
}

// requireMountAsOthers skips a test that needs to mount the FUSE view and
// run readers as other users.
func requireMountAsOthers(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting the FUSE view and running a reader as another user need root (CI runs these tests as root)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("mounting the FUSE view needs /dev/fuse: %v", err)
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("running a reader as another user needs setpriv (util-linux)")
	}
}

// TestServeMountLocalUsers: a local user who is not root, with the tools a
// shell user has, against `serve --mount`. The operator gave the archive to
// the group "readers" (chgrp, setgid) and chmod-ed agent node2's tree 700.
// With --mount-allow-other, a member of the group reads node1's logs
// through the mount and nothing of node2's; a user outside the group reads
// nothing. Without the flag (the default) the mount refuses users other
// than root entirely. What serve archived is 0640 in 2750 directories with
// the archive's group. (Before: the mount was allow_other and showed every
// file 0444 root-owned, the archive 0644/0755; node2's tree was readable.)
func TestServeMountLocalUsers(t *testing.T) {
	requireMountAsOthers(t)
	pw := map[string]string{"node1": "pw-node1-perm", "node2": "pw-node2-perm"}
	c := newServeConfig(t, pw["node1"], "")
	for _, d := range []string{filepath.Dir(c.base), c.base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	add := exec.Command(testkit.SyncerBinary(t), "user", "add", "node2", "--password-stdin", "--state", c.state)
	add.Stdin = strings.NewReader(pw["node2"] + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	// The operator's part: the archive belongs to the group, setgid.
	if err := os.Mkdir(c.root, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(c.root, 0, readers); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(c.root, 0o750|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(c.base, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mp, syscall.MNT_DETACH) })
	configs := map[bool]string{}
	base, err := os.ReadFile(c.config)
	if err != nil {
		t.Fatal(err)
	}
	for _, allow := range []bool{true, false} {
		configs[allow] = filepath.Join(c.base, fmt.Sprintf("serve-allow-other-%v.yaml", allow))
		extra := fmt.Sprintf("mount: %s\nmount-allow-other: %v\n", mp, allow)
		if err := os.WriteFile(configs[allow], append(base, extra...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := startServe(t, configs[true], c.http)
	for _, node := range []string{"node1", "node2"} {
		logs := filepath.Join(c.base, "logs-"+node)
		writeTestFile(t, filepath.Join(logs, "app", "app.log"), "log of "+node+"\n")
		r := runAgent(t, pw[node], "push", "--server", "ftp://"+c.ftp, "--user", node, "--agent-id", node,
			"--dir", logs, "--state", filepath.Join(c.base, "agent-"+node), "--json")
		if r.code != 0 {
			t.Fatalf("push %s: %d %s %s", node, r.code, r.stdout, r.stderr)
		}
		// The view lists from the index, which follows the uploads.
		deadline := time.Now().Add(15 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(mp, node, "app", "app.log")); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("%s's log not in the mount: %v", node, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// What serve created: the configured modes, the archive's group.
	for rel, want := range map[string]os.FileMode{
		"node1": 0o750 | os.ModeDir | os.ModeSetgid, "node1/app": 0o750 | os.ModeDir | os.ModeSetgid,
		"node1/app/app.log": 0o640,
	} {
		fi, err := os.Stat(filepath.Join(c.root, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want || fi.Sys().(*syscall.Stat_t).Gid != readers {
			t.Errorf("archived %s: %v gid %d, want %v gid %d", rel, fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid, want, readers)
		}
	}
	if err := os.Chmod(filepath.Join(c.root, "node2"), 0o700); err != nil {
		t.Fatal(err)
	}
	// No upload tells the index of a chmod: the view shows it once the
	// kernel's attribute cache (1s) asks again.
	deadline := time.Now().Add(15 * time.Second)
	for {
		fi, err := os.Stat(filepath.Join(mp, "node2"))
		if err == nil && fi.Mode().Perm() == 0o500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node2 through the mount after chmod 700: %v %v, want dr-x------", fi, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	check := func(allow bool) {
		t.Helper()
		for _, tc := range []struct {
			group bool
			args  []string
			want  string // in the output when allowed
			ok    bool
		}{
			{true, []string{"cat", filepath.Join(mp, "node1/app/app.log")}, "log of node1", allow},
			{true, []string{"cat", filepath.Join(mp, "node2/app/app.log")}, "", false},
			{true, []string{"ls", filepath.Join(mp, "node2")}, "", false},
			{true, []string{"ls", mp}, "node2", allow},
			{false, []string{"cat", filepath.Join(mp, "node1/app/app.log")}, "", false},
			{false, []string{"ls", mp}, "", false},
		} {
			out, err := asNobody(tc.group, tc.args...)
			if tc.ok && (err != nil || !strings.Contains(out, tc.want)) {
				t.Errorf("allow-other %v: nobody (group %v) %v: %v %q, want %q", allow, tc.group, tc.args, err, out, tc.want)
			}
			if !tc.ok && (err == nil || !strings.Contains(out, "Permission denied")) {
				t.Errorf("allow-other %v: nobody (group %v) %v: %v %q, want Permission denied", allow, tc.group, tc.args, err, out)
			}
		}
		out, _ := asNobody(true, "grep", "-r", "log of", mp)
		if strings.Contains(out, "log of node2") || (allow && !strings.Contains(out, "log of node1")) {
			t.Errorf("allow-other %v: grep -r over the mount as a member of the group: %q", allow, out)
		}
		// Root, who mounted it, reads everything.
		if b, err := os.ReadFile(filepath.Join(mp, "node2/app/app.log")); err != nil || string(b) != "log of node2\n" {
			t.Errorf("root reads node2's log through the mount: %q %v", b, err)
		}
	}
	check(true)
	p.stop(t)

	p = startServe(t, configs[false], c.http)
	check(false)
	p.stop(t)
}
