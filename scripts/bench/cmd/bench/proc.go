//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// runResult is one finished command: wall time, peak RSS and what it printed.
type runResult struct {
	Seconds float64
	RSSKiB  int64
	Stdout  []byte // at most maxCapture bytes, unless the output went to a file
}

const maxCapture = 8 << 20

// cappedBuffer keeps the first max bytes written to it and drops the rest.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it (for error messages).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// cmdSpec describes one command to time.
type cmdSpec struct {
	Name    string
	Args    []string
	Env     []string      // added to the driver's environment
	Dir     string        // working directory ("" = the driver's)
	OutFile string        // stdout goes here ("" = captured)
	Stdin   string        // fed to the command's standard input
	Timeout time.Duration // 0 = 10 minutes
}

// run executes c in its own process group and waits for it. The whole
// group is killed when the command exits, times out or ctx ends, so no
// client is left behind. Peak RSS comes from wait4's rusage (the largest
// of the process and the children it waited for). Passwords are passed in
// the environment or in files, never as arguments, so they do not show in
// process lists or in these error messages.
func run(ctx context.Context, c cmdSpec) (runResult, error) {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out cappedBuffer
	out.max = maxCapture
	if c.OutFile != "" {
		f, err := os.Create(c.OutFile)
		if err != nil {
			return runResult{}, err
		}
		defer f.Close()
		cmd.Stdout = f
	} else {
		cmd.Stdout = &out
	}
	if c.Stdin != "" {
		cmd.Stdin = strings.NewReader(c.Stdin)
	}
	stderr := &tailBuffer{max: 2048}
	cmd.Stderr = stderr
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of the group
	}
	res := runResult{Seconds: d.Seconds(), Stdout: out.buf.Bytes()}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.RSSKiB = ru.Maxrss
		}
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v", c.Timeout)
		}
		return res, fmt.Errorf("%s: %w: %s", c.Name, err, stderr.String())
	}
	return res, nil
}

// server is a long-running process (an FTP or HTTP server, a mount) in its
// own process group.
type server struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
	rss  int64
}

// servers are the ones still running, stopped by stopAll on every exit path.
var (
	serversMu sync.Mutex
	servers   = map[*server]bool{}
)

// startServer starts name with args, stdout and stderr to logFile.
func startServer(label, logFile string, env []string, name string, args ...string) (*server, error) {
	lf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	s := &server{name: label, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() {
		_ = cmd.Wait()
		lf.Close()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.rss = ru.Maxrss
		}
		close(s.done)
	}()
	serversMu.Lock()
	servers[s] = true
	serversMu.Unlock()
	return s, nil
}

// alive reports whether the server has not exited.
func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// logTail is the end of the server's log, for error messages.
func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return strings.TrimSpace(string(b))
}

// stop ends the server (SIGTERM, then SIGKILL after 20 s) and returns its
// peak RSS in KiB.
func (s *server) stop() int64 {
	if s.alive() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) // children that outlived it
	serversMu.Lock()
	delete(servers, s)
	serversMu.Unlock()
	return s.rss
}

// stopAll stops every server still running.
func stopAll() {
	serversMu.Lock()
	var all []*server
	for s := range servers {
		all = append(all, s)
	}
	serversMu.Unlock()
	for _, s := range all {
		s.stop()
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFTP waits until something on port greets with an FTP 220.
func waitFTP(ctx context.Context, s *server, port int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !s.alive() {
			return fmt.Errorf("%s exited: %s", s.name, s.logTail())
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 3)
			_, err = io.ReadFull(c, buf)
			c.Close()
			if err == nil && string(buf) == "220" {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer on port %d: %s", s.name, port, s.logTail())
}

// waitHTTP waits until url answers 200.
func waitHTTP(ctx context.Context, s *server, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !s.alive() {
			return fmt.Errorf("%s exited: %s", s.name, s.logTail())
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s: %s", s.name, url, s.logTail())
}
