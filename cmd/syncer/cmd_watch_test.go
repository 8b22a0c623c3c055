package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sameFile(a, b string) bool {
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// TestWatchSurvivesServerDown: watch starts while the historian is down,
// logs the failures, catches up when it comes up, pushes appends, and
// exits 0 on SIGTERM.
func TestWatchSurvivesServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	root, logs, state := t.TempDir(), t.TempDir(), t.TempDir()
	local := filepath.Join(logs, "app", "a.log")
	writeLog(t, local, 30_000)
	pwFile := filepath.Join(t.TempDir(), "pw")

	cmd := exec.Command(testkit.SyncerBinary(t), "watch", "--server", "ftp://"+addr, "--user", "node1", "--agent-id", "node1",
		"--password-file", pwFile, "--state", state, "--dir", logs, "--interval", "200ms")
	stderr := &testkit.LockedBuffer{}
	cmd.Stderr = stderr
	// The agent reads the password file at start, before the historian
	// exists.
	pass := "pw-watch-test-0123"
	if err := os.WriteFile(pwFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("watch stderr:\n%s", stderr.String())
		}
	})
	waitFor(t, "a logged connection failure", 20*time.Second, func() bool {
		return strings.Contains(stderr.String(), "server not reachable")
	})

	h := startHistorianWithPassword(t, root, addr, pass)
	remote := filepath.Join(h.root, "node1", "app", "a.log")
	waitFor(t, "the file on the server", 30*time.Second, func() bool { return sameFile(local, remote) })

	f, err := os.OpenFile(local, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("2026-11-24T11:00:00Z ERROR appended while watching\n")
	f.Close()
	waitFor(t, "the append on the server", 30*time.Second, func() bool { return sameFile(local, remote) })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("watch did not exit 0 on SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not exit within 20s of SIGTERM")
	}
	if strings.Contains(stderr.String(), pass) {
		t.Error("the password appears in the log")
	}
	// One clear line per failed attempt, no stack traces.
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "goroutine ") || strings.Contains(l, "panic") {
			t.Errorf("unexpected output: %s", l)
		}
	}
}

// TestWatchSIGTERMMidTransfer: SIGTERM during a large upload exits 0
// promptly; the next push completes the file, re-sending at most a buffer.
func TestWatchSIGTERMMidTransfer(t *testing.T) {
	root, logs, state := t.TempDir(), t.TempDir(), t.TempDir()
	h := startHistorian(t, root, "", 20<<20)
	const size = 100 << 20
	big := filepath.Join(logs, "big.log")
	writeLog(t, big, size)
	args := []string{"--server", "ftp://" + h.addr, "--user", "node1", "--agent-id", "node1",
		"--state", state, "--dir", logs}
	cmd := exec.Command(testkit.SyncerBinary(t), append([]string{"watch", "--interval", "1s"}, args...)...)
	cmd.Env = append(os.Environ(), "SYNCER_PASSWORD="+h.pass)
	stderr := &testkit.LockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(root, "node1", "big.log")
	waitFor(t, "the upload to start", 30*time.Second, func() bool {
		fi, err := os.Stat(remote)
		return err == nil && fi.Size() > 10<<20
	})
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("watch still running 15s after SIGTERM\n%s", stderr.String())
	}
	t.Logf("watch exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	h.stop()
	fi, err := os.Stat(remote)
	if err != nil {
		t.Fatal(err)
	}
	had := fi.Size()
	if had >= size {
		t.Skipf("the upload finished before SIGTERM (%d bytes); nothing to resume", had)
	}
	h2 := startHistorian(t, root, "", 0)
	args[1] = "ftp://" + h2.addr
	r := runAgent(t, h2.pass, append([]string{"push", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("push after SIGTERM: exit %d: %s", r.code, r.stderr)
	}
	s := parseSummary(t, r)
	if resent := s.BytesSent - (size - had); resent < 0 || resent > 64<<10 {
		t.Errorf("sent %d after the server had %d of %d: re-sent %d", s.BytesSent, had, size, resent)
	}
	if sum(t, remote) != sum(t, big) {
		t.Fatal("server copy differs after resume")
	}
}
