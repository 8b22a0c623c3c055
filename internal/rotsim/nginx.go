package rotsim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// nginxConf runs one master and one worker in the foreground with every
// file of its own under the private prefix, and logs each request to
// /r/... as one line: the client's address, the request line and the
// status, so that each line is known to the client that made the request.
// /sync is not logged: its answer tells the client that every request
// before it on the connection has been logged (one worker handles a
// connection's requests in order, logging each before reading the next).
const nginxConf = `daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
%[4]s
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    log_format rotsim '$remote_addr "$request" $status';
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    server {
        listen %[2]s;
        location = /sync { return 204; }
        location / { access_log %[3]s rotsim; return 200 "ok\n"; }
    }
}
`

// nginx is a running nginx master with one worker and one client
// connection to it.
type nginx struct {
	cmd     *exec.Cmd
	done    chan error
	prefix  string
	pidFile string
	addr    string
	path    string // URL path prefix of the logged requests

	mu   sync.Mutex // guards the fields below
	conn net.Conn
	rd   *bufio.Reader
	seq  int // number of the next logged request
}

func startNginx(logPath, linePrefix, work string) (*nginx, error) {
	user := ""
	if os.Geteuid() == 0 {
		// Workers run as nobody by default and could not reopen a log in
		// a private (0700) directory.
		user = "user root root;"
	}
	var lastErr error
	for try := 0; try < 5; try++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		ng := &nginx{prefix: work, pidFile: filepath.Join(work, "nginx.pid"), addr: addr,
			path: "/r/" + linePrefix + "/", done: make(chan error, 1)}
		conf := filepath.Join(work, "nginx.conf")
		if err := writeFile(conf, fmt.Sprintf(nginxConf, work, addr, logPath, user)); err != nil {
			return nil, err
		}
		ng.cmd = exec.Command(Nginx, "-p", work, "-c", conf, "-e", filepath.Join(work, "error.log"))
		if err := ng.cmd.Start(); err != nil {
			return nil, fmt.Errorf("rotsim: start %s: %w", Nginx, err)
		}
		go func() { ng.done <- ng.cmd.Wait() }()
		if lastErr = ng.waitReady(); lastErr == nil {
			return ng, nil
		}
		_ = ng.close()
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	return nil, lastErr
}

// waitReady waits for the pid file and a connection.
func (ng *nginx) waitReady() error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-ng.done:
			ng.done <- err
			return fmt.Errorf("rotsim: nginx exited at start: %v\n%s", err, ng.errors())
		default:
		}
		if _, err := os.Stat(ng.pidFile); err == nil {
			if c, err := net.DialTimeout("tcp", ng.addr, time.Second); err == nil {
				ng.conn, ng.rd = c, bufio.NewReader(c)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rotsim: nginx not ready within 20s\n%s", ng.errors())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// request makes n logged requests, then /sync, and passes the access-log
// lines of the answered ones to record as they come.
func (ng *nginx) request(n int, record func(...string)) error {
	ng.mu.Lock()
	defer ng.mu.Unlock()
	for range n {
		uri := fmt.Sprintf("%s%06d", ng.path, ng.seq)
		ng.seq++
		if err := ng.get(uri, 200); err != nil {
			return err
		}
		record(fmt.Sprintf(`127.0.0.1 "GET %s HTTP/1.1" 200`, uri))
	}
	return ng.get("/sync", 204)
}

// get makes one request on the client connection and wants status; it
// reconnects once if nginx closed the connection.
func (ng *nginx) get(uri string, status int) error {
	var err error
	for try := 0; try < 2; try++ {
		if ng.conn == nil {
			c, derr := net.DialTimeout("tcp", ng.addr, 5*time.Second)
			if derr != nil {
				return fmt.Errorf("rotsim: nginx: %w", derr)
			}
			ng.conn, ng.rd = c, bufio.NewReader(c)
		}
		_ = ng.conn.SetDeadline(time.Now().Add(10 * time.Second))
		var resp *http.Response
		if _, err = fmt.Fprintf(ng.conn, "GET %s HTTP/1.1\r\nHost: rotsim\r\n\r\n", uri); err == nil {
			resp, err = http.ReadResponse(ng.rd, nil)
		}
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.Close {
				ng.conn.Close()
				ng.conn = nil
			}
			if resp.StatusCode != status {
				return fmt.Errorf("rotsim: nginx answered GET %s with %s", uri, resp.Status)
			}
			return nil
		}
		ng.conn.Close()
		ng.conn = nil
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
			break
		}
	}
	return fmt.Errorf("rotsim: nginx: GET %s: %w", uri, err)
}

// waitReopened waits until nginx's processes all hold the file now at
// path open (after SIGUSR1 the master reopens its logs and tells the
// worker to). Where /proc cannot tell, it makes logged requests (passed
// to record) until one lands in the file at path.
func (ng *nginx) waitReopened(path string, d time.Duration, record func(...string)) error {
	deadline := time.Now().Add(d)
	for {
		fi, err := os.Stat(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotsim: %w", err)
		}
		if err == nil {
			done, err := ng.holdOpen(fi)
			if err != nil {
				// No /proc to read: a request logged in the new file
				// shows the worker has reopened it.
				if fi.Size() > 0 {
					return nil
				}
				if err := ng.request(1, record); err != nil {
					return err
				}
			} else if done {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rotsim: nginx did not reopen %s within %s after SIGUSR1\n%s", path, d, ng.errors())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// holdOpen reports whether the master and every worker have fi open.
func (ng *nginx) holdOpen(fi os.FileInfo) (bool, error) {
	master := ng.cmd.Process.Pid
	pids := []int{master}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return false, fmt.Errorf("no /proc")
	}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split
		// after its closing parenthesis.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		var state string
		var pid, ppid int
		if _, err := fmt.Sscan(strings.TrimSpace(string(b[:bytes.IndexByte(b, ' ')])), &pid); err != nil {
			continue
		}
		if _, err := fmt.Sscan(rest, &state, &ppid); err == nil && ppid == master {
			pids = append(pids, pid)
		}
	}
	if len(pids) < 2 {
		return false, nil // the worker is not up (yet)
	}
	for _, pid := range pids {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			return false, err
		}
		found := false
		for _, fd := range fds {
			if o, err := os.Stat(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && os.SameFile(o, fi) {
				found = true
				break
			}
		}
		if !found {
			return false, nil
		}
	}
	return true, nil
}

// errors is nginx's error log.
func (ng *nginx) errors() string {
	b, _ := os.ReadFile(filepath.Join(ng.prefix, "error.log"))
	return strings.TrimSpace(string(b))
}

// close makes nginx quit gracefully (SIGQUIT), within 10 s, else kills it.
func (ng *nginx) close() error {
	ng.mu.Lock()
	if ng.conn != nil {
		ng.conn.Close()
		ng.conn = nil
	}
	ng.mu.Unlock()
	if ng.cmd.Process == nil {
		return nil
	}
	_ = ng.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case err := <-ng.done:
		ng.done <- err
		return nil
	case <-time.After(10 * time.Second):
		_ = ng.cmd.Process.Kill()
		err := <-ng.done
		ng.done <- err
		return fmt.Errorf("rotsim: nginx did not quit within 10s of SIGQUIT")
	}
}

// freeAddr is a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("rotsim: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
