package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRotationVerification: the historian's verification stays
// meaningful through rotation. Each version a rotation pushes aside is
// verified, also when the push that stored the new file took seconds (the
// version is named after the second it was pushed aside, before the push
// ended). A version whose tail the agent could not archive (rotated twice
// and deleted between two pushes) is shown as incomplete, never as
// verified.
func TestServeRotationVerification(t *testing.T) {
	pw := "pw-node1-secret"
	// 256 KiB/s: storing the 700 KiB new log takes about three seconds.
	c := newServeConfig(t, pw, "max-upload-rate: 256KiB\n")
	base, ftpAddr := c.base, c.ftp
	logs := filepath.Join(base, "logs")
	p := startServe(t, c.config, c.http)
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
