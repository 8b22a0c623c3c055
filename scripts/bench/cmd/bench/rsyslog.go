//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// rsyslogdBin is Debian's rsyslogd (/usr/sbin is not on every PATH).
const rsyslogdBin = "/usr/sbin/rsyslogd"

// The rsyslog pair of scenario 8: a sender that follows app.log with imfile
// and forwards every line over TCP, and a central receiver that writes each
// message's text, one per line, to a file. Both are private rsyslogd
// processes on loopback: own config, work directory and pid file, no
// imuxsock or imklog (no /dev/log, no kernel log), nothing of the system's
// rsyslog touched.

// rsyslogSenderConf follows logFile with imfile in inotify mode (the
// default, as a packaged rsyslog runs it) and forwards to 127.0.0.1:port.
//
//   - One File, no wildcard: imfile follows the file through rotation by
//     itself (it reads the renamed file to its end, then the new one from
//     the start); a wildcard over the rotated names would send them again.
//   - reopenOnTruncate only for copytruncate, as rsyslog's own logrotate
//     copytruncate test sets it: rsyslog calls it experimental and advises
//     against it otherwise.
//   - freshStartTail off (the default): a new file is read from its start.
//   - RFC 5424 forwarding (RSYSLOG_SyslogProtocol23Format), so the
//     receiver's msg is the line exactly (the traditional format adds a
//     leading space).
//   - The forwarding action has its own in-memory queue and retries for
//     ever (action.resumeRetryCount -1), rsyslog's advice for reliable
//     forwarding: no line is dropped on the TCP side while the receiver is
//     up, so what is missing was lost by imfile.
//   - The input has its own ruleset, so rsyslogd's own messages are not
//     forwarded.
func rsyslogSenderConf(work, logFile string, port int, reopenOnTruncate bool) string {
	reopen := "off"
	if reopenOnTruncate {
		reopen = "on"
	}
	return fmt.Sprintf(`global(workDirectory=%q net.enableDNS="off")
module(load="imfile" mode="inotify")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp"
         template="RSYSLOG_SyslogProtocol23Format"
         queue.type="LinkedList" queue.size="200000"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}
input(type="imfile" file=%q tag="app" ruleset="fwd"
      reopenOnTruncate=%q freshStartTail="off")
`, work, port, logFile, reopen)
}

// rsyslogReceiverConf takes syslog over TCP on 127.0.0.1:port and writes
// each message's text (%msg%) as one line to out.
func rsyslogReceiverConf(work, out string, port int) string {
	return fmt.Sprintf(`global(workDirectory=%q net.enableDNS="off")
module(load="imtcp")
template(name="msgonly" type="string" string="%%msg%%\n")
ruleset(name="rcv") {
  action(type="omfile" file=%q template="msgonly")
}
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="rcv")
`, work, out, port)
}

// rsyslogPair is a running sender and receiver with a counting proxy
// between them.
type rsyslogPair struct {
	sender, receiver *server
	proxy            *byteProxy
	received         string // the receiver's output file
}

// startRsyslog starts the receiver, the proxy and the sender under dir,
// the sender following logFile, and waits until the sender follows it.
func startRsyslog(ctx context.Context, dir, logFile string, reopenOnTruncate bool) (*rsyslogPair, error) {
	p := &rsyslogPair{received: filepath.Join(dir, "received", "app.log")}
	swork, rwork := filepath.Join(dir, "sender-work"), filepath.Join(dir, "receiver-work")
	for _, d := range []string{swork, rwork, filepath.Dir(p.received)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	rport, err := freePort()
	if err != nil {
		return nil, err
	}
	rconf := filepath.Join(dir, "receiver.conf")
	if err := os.WriteFile(rconf, []byte(rsyslogReceiverConf(rwork, p.received, rport)), 0o644); err != nil {
		return nil, err
	}
	if p.receiver, err = startServer("rsyslogd (receiver)", filepath.Join(dir, "receiver.log"), nil,
		rsyslogdBin, "-n", "-f", rconf, "-i", filepath.Join(dir, "receiver.pid")); err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, p.receiver, rport); err != nil {
		p.stop()
		return nil, err
	}
	if p.proxy, err = newByteProxy(fmt.Sprintf("127.0.0.1:%d", rport)); err != nil {
		p.stop()
		return nil, err
	}
	sconf := filepath.Join(dir, "sender.conf")
	if err := os.WriteFile(sconf, []byte(rsyslogSenderConf(swork, logFile, p.proxy.port(), reopenOnTruncate)), 0o644); err != nil {
		p.stop()
		return nil, err
	}
	if p.sender, err = startServer("rsyslogd (sender)", filepath.Join(dir, "sender.log"), nil,
		rsyslogdBin, "-n", "-f", sconf, "-i", filepath.Join(dir, "sender.pid")); err != nil {
		p.stop()
		return nil, err
	}
	if err := waitFollowing(ctx, p.sender, logFile); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// stop ends both rsyslogd processes and the proxy.
func (p *rsyslogPair) stop() {
	if p.sender != nil {
		p.sender.stop()
	}
	if p.receiver != nil {
		p.receiver.stop()
	}
	if p.proxy != nil {
		p.proxy.close()
	}
}

// catchUp waits until the receiver has written want lines and nothing more
// arrives for settle, or until nothing has arrived for idle (lines were
// lost), or until limit. It returns the lines received.
func (p *rsyslogPair) catchUp(ctx context.Context, want int, settle, idle, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	last, lastChange := -1, time.Now()
	for {
		n := countLines(p.received)
		if n < 0 {
			n = 0 // nothing received yet
		}
		now := time.Now()
		if n != last {
			last, lastChange = n, now
		}
		quiet := now.Sub(lastChange)
		switch {
		case n >= want && quiet >= settle, quiet >= idle, now.After(deadline):
			return n, nil
		case ctx.Err() != nil:
			return n, ctx.Err()
		case !p.sender.alive():
			return n, fmt.Errorf("rsyslogd (sender) exited: %s", p.sender.logTail())
		case !p.receiver.alive():
			return n, fmt.Errorf("rsyslogd (receiver) exited: %s", p.receiver.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitTCP waits until something accepts connections on port.
func waitTCP(ctx context.Context, s *server, port int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !s.alive() {
			return fmt.Errorf("%s exited: %s", s.name, s.logTail())
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not listen on port %d: %s", s.name, port, s.logTail())
}

// waitFollowing waits until process s has file open and an inotify watch
// on it: from then on imfile sees every write and rename.
func waitFollowing(ctx context.Context, s *server, file string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		return fmt.Errorf("stat %s: %w", file, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !s.alive() {
			return fmt.Errorf("%s exited: %s", s.name, s.logTail())
		}
		open, watched := procFollows(s.cmd.Process.Pid, file, st.Ino)
		if open && watched {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not start following %s: %s", s.name, file, s.logTail())
}

// procFollows reports whether process pid has file open and an inotify
// watch on inode ino (from /proc/PID/fd and fdinfo).
func procFollows(pid int, file string, ino uint64) (open, watched bool) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return false, false
	}
	want := "ino:" + strconv.FormatUint(ino, 16) + " "
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue
		}
		switch target {
		case file:
			open = true
		case "anon_inode:inotify":
			info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
			if err == nil && bytes.Contains(info, []byte(want)) {
				watched = true
			}
		}
	}
	return open, watched
}

// byteProxy forwards TCP connections to a target and counts the bytes
// sent towards it (the sender's wire bytes).
type byteProxy struct {
	ln     net.Listener
	target string
	sent   atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func newByteProxy(target string) (*byteProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p := &byteProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *byteProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *byteProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(countWriter{up, &p.sent}, c)
			closeWrite(up)
		}()
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(c, up)
			closeWrite(c)
		}()
	}
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// bytesSent is what has gone through towards the target so far.
func (p *byteProxy) bytesSent() int64 { return p.sent.Load() }

// countWriter adds what it writes to n.
type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countWriter) Write(b []byte) (int, error) {
	k, err := c.w.Write(b)
	c.n.Add(int64(k))
	return k, err
}

// close stops accepting, cuts every connection and waits for the copies.
func (p *byteProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
