package testkit

import (
	"bufio"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// proc is the current process of a server that a test may stop and
// start again; its methods are safe for concurrent use.
type proc struct {
	name   string
	stderr *LockedBuffer
	mu     sync.Mutex
	cmd    *exec.Cmd
}

// newProc returns a proc whose server output goes to a 1 MiB buffer, and
// arranges for the server to be stopped when the test ends, its output
// logged if the test failed.
func newProc(t testing.TB, name string) *proc {
	p := &proc{name: name, stderr: &LockedBuffer{Limit: 1 << 20}}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.stderr.String())
		}
	})
	return p
}

// set records c, just started, as the running process.
func (p *proc) set(c *exec.Cmd) {
	p.mu.Lock()
	p.cmd = c
	p.mu.Unlock()
}

// stop kills the running process, if any, and reaps it.
func (p *proc) stop() {
	p.mu.Lock()
	c := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if c != nil {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
}

// readPort reads the port number a server prints on its first line of r,
// waiting at most 20 s; it kills c and fails the test otherwise. The rest
// of r is discarded, so that the server never blocks writing to it.
func readPort(t testing.TB, r io.Reader, c *exec.Cmd) int {
	t.Helper()
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		ch <- result{line, err}
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case res := <-ch:
		port, err := strconv.Atoi(strings.TrimSpace(res.line))
		if err != nil {
			_ = c.Process.Kill()
			t.Fatalf("server did not print its port: %q, %v", res.line, res.err)
		}
		return port
	case <-time.After(20 * time.Second):
		_ = c.Process.Kill()
		t.Fatal("server did not start within 20s")
	}
	return 0
}
