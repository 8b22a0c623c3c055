package testkit

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// StartServe runs the syncer binary with args (a `serve` command line
// whose --http is httpAddr, without a web login), its stderr into
// stderr, and waits up to 60 s until GET /healthz answers "ok". It
// returns the running command and a channel that receives its Wait
// result once; when serve exits first, the error carries its output (an
// "address already in use" in it tells the caller to try other ports).
func StartServe(t testing.TB, httpAddr string, stderr *LockedBuffer, args ...string) (*exec.Cmd, chan error, error) {
	t.Helper()
	cmd := exec.Command(SyncerBinary(t), args...)
	cmd.Stderr = stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) == "ok" {
				return cmd, done, nil
			}
		}
		select {
		case err := <-done:
			done <- err
			return cmd, done, fmt.Errorf("serve exited at start: %v\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			return cmd, done, fmt.Errorf("serve not ready: %v\n%s", err, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
