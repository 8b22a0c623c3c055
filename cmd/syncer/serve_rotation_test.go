package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestServeRotationVerification: the historian's verification stays
// meaningful through rotation. Each version a rotation pushes aside is
// verified, also when the push that stored the new file took seconds (the
// version is named after the second it was pushed aside, before the push
// ended). A version whose tail the agent could not archive (rotated twice
// and deleted between two pushes) is shown as incomplete, never as
// verified.
func TestServeRotationVerification(t *testing.T) {
	base := t.TempDir()
	root, state, logs := filepath.Join(base, "archive"), filepath.Join(base, "state"), filepath.Join(base, "logs")
	ftpAddr, httpAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	config := filepath.Join(base, "serve.yaml")
	// 256 KiB/s: storing the 700 KiB new log takes about three seconds.
	cfg := fmt.Sprintf("root: %s\nstate: %s\nftp: %s\nhttp: %s\nmax-upload-rate: 256KiB\n", root, state, ftpAddr, httpAddr)
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	pw := "pw-node1-secret"
	add := exec.Command(testkit.SyncerBinary(t), "user", "add", "node1", "--password-stdin", "--state", state)
	add.Stdin = strings.NewReader(pw + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	p := startServe(t, config, httpAddr)
	app := filepath.Join(logs, "svc", "app.log")
	n := 0
	write := func(lines int, width int) {
		t.Helper()
		var b strings.Builder
		for range lines {
			fmt.Fprintf(&b, "line %07d %s\n", n, strings.Repeat("x", width))
			n++
		}
		if err := os.MkdirAll(filepath.Dir(app), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(app, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(b.String()); err != nil {
			t.Fatal(err)
		}
	}
	rotate := func() {
		t.Helper()
		if err := os.Rename(app, app+".1"); err != nil {
			t.Fatal(err)
		}
		write(0, 0)
	}
	push := func() summary {
		t.Helper()
		r := runAgent(t, pw, "push", "--server", "ftp://"+ftpAddr, "--user", "node1", "--agent-id", "node1",
			"--dir", logs, "--state", filepath.Join(base, "agent"), "--json")
		if r.code != 0 {
			t.Fatalf("push: %d %s %s", r.code, r.stdout, r.stderr)
		}
		return parseSummary(t, r)
	}
	write(100, 60)
	push()
	write(10, 60)
	rotate()
	write(10_000, 60) // 700 KiB
	push()
	write(10, 60) // lost: this log is rotated twice before the next push
	rotate()
	write(10, 60)
	rotate()
	write(5, 60)
	push()

	// Every file of svc/: the versions and app.log.
	type file struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	var listing struct {
		Entries []file `json:"entries"`
	}
	want := func(files []file) string {
		var verified, incomplete, other int
		for _, f := range files {
			switch f.Status {
			case "verified":
				verified++
			case "incomplete":
				incomplete++
			default:
				other++
			}
		}
		// Versions: the first log, the 700 KiB one (incomplete), the
		// generation after it; plus app.log.
		if verified == 3 && incomplete == 1 && other == 0 {
			return ""
		}
		return fmt.Sprintf("%d verified, %d incomplete, %d other: %+v", verified, incomplete, other, files)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.getJSON(t, "/api/v1/files/node1/svc", &listing)
		msg := want(listing.Entries)
		if msg == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses of svc/: %s", msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop(t)
}
