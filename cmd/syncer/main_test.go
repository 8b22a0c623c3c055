package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestSignalExitCodes: a command stopped by SIGINT exits 130 after its
// orderly stop, with one line saying so; SIGTERM, the service manager's
// stop, ends watch and serve normally (exit 0), as the systemd units
// expect. Each runs the real binary.
func TestSignalExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cmd      string
		sig      syscall.Signal
		wantCode int
		wantLine string // the only line of stderr that starts with "syncer:"
	}{
		{"watch SIGINT", "watch", syscall.SIGINT, 130, "syncer: interrupted by SIGINT"},
		{"watch SIGTERM", "watch", syscall.SIGTERM, 0, ""},
		{"serve SIGINT", "serve", syscall.SIGINT, 130, "syncer: interrupted by SIGINT"},
		{"serve SIGTERM", "serve", syscall.SIGTERM, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			var args []string
			var ready string
			switch tc.cmd {
			case "watch":
				// A server that is not there: watch runs, retrying.
				pw := filepath.Join(base, "pw")
				if err := os.WriteFile(pw, []byte("pw-signal-test\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				logs := filepath.Join(base, "logs")
				writeTestFile(t, filepath.Join(logs, "a.log"), "a line\n")
				args = []string{"watch", "--server", "ftp://" + testkit.FreeAddr(t), "--user", "node1",
					"--password-file", pw, "--state", filepath.Join(base, "state"), "--dir", logs, "--interval", "200ms"}
				ready = "server not reachable"
			case "serve":
				args = []string{"serve", "--root", filepath.Join(base, "archive"), "--state", filepath.Join(base, "state"),
					"--ftp", testkit.FreeAddr(t), "--http", testkit.FreeAddr(t)}
				ready = "http server listening"
			}
			cmd := exec.Command(testkit.SyncerBinary(t), args...)
			stderr := &testkit.LockedBuffer{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				if t.Failed() {
					t.Logf("stderr:\n%s", stderr.String())
				}
			})
			waitFor(t, "the command running", 30*time.Second, func() bool { return strings.Contains(stderr.String(), ready) })
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-exited:
			case <-time.After(30 * time.Second):
				t.Fatalf("still running 30s after %v", tc.sig)
			}
			code := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d", code, tc.wantCode)
			}
			var lines []string
			for _, l := range strings.Split(stderr.String(), "\n") {
				if strings.HasPrefix(l, "syncer:") {
					lines = append(lines, l)
				}
			}
			if tc.wantLine == "" && len(lines) != 0 || tc.wantLine != "" && (len(lines) != 1 || lines[0] != tc.wantLine) {
				t.Errorf("error lines %q, want %q", lines, tc.wantLine)
			}
		})
	}
}

// TestInterruptedOneShot: a command that is not a service exits 130 when
// a signal cut it, SIGTERM included; which commands are services.
func TestInterruptedOneShot(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(&interrupted{sig})
		if got := run(ctx, []string{"version"}); got != exitInterrupted {
			t.Errorf("version cut by %v: exit %d, want %d", sig, got, exitInterrupted)
		}
	}
	for name, want := range map[string]bool{"watch": true, "serve": true, "mount": true, "push": false, "user": false, "version": false} {
		if got := isService(name); got != want {
			t.Errorf("isService(%q) = %v, want %v", name, got, want)
		}
	}
}
