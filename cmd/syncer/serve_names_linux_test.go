package main

import (
	"bytes"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLatin1NamesThroughTheMount: logs whose names are not UTF-8 (Latin-1
// from an old node) are archived byte-exact by the real agent, verified by
// the historian (commit records carry the exact names, also for a rotated
// log continuing its old name's copy), and listed and read through the
// FUSE view: find and grep -r over the mount see them.
func TestLatin1NamesThroughTheMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting the FUSE view needs root (CI runs these tests as root)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("mounting the FUSE view needs /dev/fuse: %v", err)
	}
	const pw = "pw-node1-latin1"
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	// A serve killed by a failed test leaves its mount behind: detach it
	// before the temporary directory is removed.
	t.Cleanup(func() { _ = syscall.Unmount(mp, syscall.MNT_DETACH) })
	c := newServeConfig(t, pw, "mount: "+mp+"\n")
	logs := filepath.Join(c.base, "logs")
	cafe, dir := "caf\xe9.log", "r\xe9pertoire"
	files := map[string]string{
		cafe:                      "first line\nneedle-latin1 in a Latin-1 name\n",
		dir + "/app.log":          "needle-latin1 in a Latin-1 directory\n",
		"plain.log":               "no match here\n",
		dir + "/\xfc\xe9\xff.log": "needle-latin1 three invalid bytes\n",
	}
	for rel, data := range files {
		writeTestFile(t, filepath.Join(logs, rel), data)
	}
	p := startServe(t, c.config, c.http)
	push := func() {
		t.Helper()
		r := runAgent(t, pw, "push", "--server", "ftp://"+c.ftp, "--user", "node1",
			"--agent-id", "node1", "--dir", logs, "--state", filepath.Join(c.base, "agent"), "--json")
		if r.code != 0 {
			t.Fatalf("push: %d %s %s", r.code, r.stdout, r.stderr)
		}
	}
	push()
	for rel := range files {
		waitVerified(t, p, rel, len(files[rel]))
	}

	// find lists every name byte for byte.
	out, err := exec.Command("find", filepath.Join(mp, "node1"), "-type", "f").Output()
	if err != nil {
		t.Fatalf("find: %v", err)
	}
	for rel := range files {
		if !bytes.Contains(out, []byte(filepath.Join(mp, "node1", rel)+"\n")) {
			t.Errorf("find through the mount does not list %q:\n%q", rel, out)
		}
	}
	// grep -r finds the lines in every one of them.
	out, err = exec.Command("grep", "-r", "needle-latin1", mp).Output()
	if err != nil {
		t.Fatalf("grep -r: %v %q", err, out)
	}
	if n := strings.Count(string(out), "needle-latin1"); n != 3 {
		t.Errorf("grep -r through the mount: %d matches, want 3:\n%q", n, out)
	}
	for rel, data := range files {
		got, err := os.ReadFile(filepath.Join(mp, "node1", rel))
		if err != nil || string(got) != data {
			t.Errorf("read %q through the mount: %q, %v", rel, got, err)
		}
	}

	// Rotate the Latin-1 log with lines written after the push: the agent
	// sends them to the old copy (its commit entry names the local
	// café.log.1 and the archived café.log) and the new café.log becomes
	// the next version. Both are verified.
	appendFile(t, filepath.Join(logs, cafe), "needle-latin1 written before the rotation\n")
	if err := os.Rename(filepath.Join(logs, cafe), filepath.Join(logs, cafe+".1")); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(logs, cafe), "the new log\n")
	push()
	f := waitVerified(t, p, cafe, len("the new log\n"))
	if len(f.Versions) != 1 || f.Versions[0].Size != int64(len(files[cafe])+len("needle-latin1 written before the rotation\n")) || f.Versions[0].Status != "verified" {
		t.Errorf("the rotated Latin-1 log's archived copy: %+v", f.Versions)
	}
	out, _ = exec.Command("grep", "-rc", "needle-latin1", filepath.Join(mp, "node1")).Output()
	if !bytes.Contains(out, []byte(cafe+".superseded-")) {
		t.Errorf("grep -rc through the mount does not show the superseded copy:\n%q", out)
	}
	p.stop(t)
}

type fileStatus struct {
	Size     int64  `json:"size"`
	Status   string `json:"status"`
	Versions []struct {
		Size   int64  `json:"size"`
		Status string `json:"status"`
	} `json:"versions"`
}

// waitVerified waits until the historian shows node1's rel verified at size.
func waitVerified(t *testing.T, p *serveProc, rel string, size int) fileStatus {
	t.Helper()
	var f fileStatus
	u := "/api/v1/files/node1/" + (&url.URL{Path: rel}).EscapedPath()
	deadline := time.Now().Add(15 * time.Second)
	for {
		f = fileStatus{}
		p.getJSON(t, u, &f)
		if f.Status == "verified" && f.Size == int64(size) && (len(f.Versions) == 0 || f.Versions[0].Status == "verified") {
			return f
		}
		if time.Now().After(deadline) {
			t.Errorf("%q: %+v, want verified at %d bytes", rel, f, size)
			return f
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func appendFile(t *testing.T, p, data string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}
