package faults

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawFTP is a line-level FTP client for abuse: it sends whatever it is told.
type rawFTP struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawFTP {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f := &rawFTP{t: t, c: c, r: bufio.NewReader(c)}
	if code, msg := f.reply(); code != 220 {
		t.Fatalf("greeting: %d %s", code, msg)
	}
	return f
}

// reply reads one (possibly multi-line) reply.
func (f *rawFTP) reply() (int, string) {
	f.t.Helper()
	_ = f.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := f.r.ReadString('\n')
	if err != nil {
		return 0, "connection: " + err.Error()
	}
	if len(line) < 4 {
		return 0, line
	}
	code, _ := strconv.Atoi(line[:3])
	msg := strings.TrimSpace(line[4:])
	if line[3] == '-' {
		end := line[:3] + " "
		for {
			l, err := f.r.ReadString('\n')
			if err != nil || strings.HasPrefix(l, end) {
				break
			}
		}
	}
	return code, msg
}

// send writes raw bytes as one command line and reads the reply.
func (f *rawFTP) send(line string) (int, string) {
	f.t.Helper()
	_ = f.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := f.c.Write([]byte(line + "\r\n")); err != nil {
		return 0, "connection: " + err.Error()
	}
	return f.reply()
}

func (f *rawFTP) login(user, pw string) {
	f.t.Helper()
	if code, msg := f.send("USER " + user); code != 331 {
		f.t.Fatalf("USER: %d %s", code, msg)
	}
	if code, msg := f.send("PASS " + pw); code != 230 {
		f.t.Fatalf("PASS: %d %s", code, msg)
	}
}

// TestFTPAbuse covers what the ftpfs package tests do not: very long
// names, huge and malformed REST offsets, commands out of order, and the
// bounce attack through PORT and EPRT naming another loopback address
// (127.0.0.2) than the client's own. Each gets a refusal, nothing on disk
// changes, and the server keeps serving.
func TestFTPAbuse(t *testing.T) {
	root := t.TempDir()
	addr, pw := inProcessServer(t, root)
	if err := os.MkdirAll(filepath.Join(root, "node1"), 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(root, "node1", "keep.log")
	if err := os.WriteFile(keep, []byte("0123456789\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := dialRaw(t, addr)
	f.login("node1", pw)
	refused := func(cmd string, wantCodes ...int) {
		t.Helper()
		code, msg := f.send(cmd)
		if code < 400 || code == 0 {
			t.Errorf("%.80s: %d %s, want a refusal", cmd, code, msg)
		}
	}
	long := strings.Repeat("x", 1000) // over NAME_MAX, under the line limit
	cases := []string{
		"MKD /node1/" + long,
		"SIZE /node1/" + long,
		"CWD /node1/" + strings.Repeat("a/", 1000),
		"MKD /node1/" + strings.Repeat("d/", 1000) + "x",
		"REST 99999999999999999999999",
		"REST 0x10",
		"RNTO /node1/x.log",               // RNTO without RNFR
		"RNFR /node1/missing.log",         // RNFR of nothing
		"APPE",                            // no argument
		"SITE CHMOD 4777 /node1/keep.log", // agent lacks M
		"MFMT 19700101000000 /node1",      // agent lacks T: its files' times only
		"DELE /node1/keep.log",            // agent lacks d
	}
	for _, c := range cases {
		refused(c)
	}
	// A huge or negative REST may be taken as a number; the transfer
	// after it is refused (beyond the end, or below it for an agent).
	for _, off := range []string{"9223372036854775807", "-5"} {
		code, msg := f.send("REST " + off)
		if code != 350 {
			if code < 400 {
				t.Errorf("REST %s: %d %s", off, code, msg)
			}
			continue
		}
		code, msg = f.send("EPSV")
		if code != 229 {
			t.Fatalf("EPSV: %d %s", code, msg)
		}
		port := msg[strings.Index(msg, "|||")+3 : strings.LastIndex(msg, "|")]
		dc, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		code, msg = f.send("STOR /node1/keep.log")
		if code == 150 || code == 125 {
			_, _ = dc.Write([]byte("overwrite"))
			dc.Close()
			code, msg = f.reply()
			t.Errorf("STOR after REST %s started a transfer (then %d %s)", off, code, msg)
		} else if code < 400 {
			t.Errorf("STOR after REST %s: %d %s", off, code, msg)
		}
		dc.Close()
	}
	if b, _ := os.ReadFile(keep); string(b) != "0123456789\n" {
		t.Errorf("keep.log changed: %q", b)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "node1"))
	if len(entries) != 1 {
		t.Errorf("node1 holds %d entries after refused commands, want 1", len(entries))
	}
	// The session survived all of it.
	if code, msg := f.send("SIZE /node1/keep.log"); code != 213 {
		t.Errorf("SIZE after abuse: %d %s", code, msg)
	}
	// A command line longer than the server reads (5,000 bytes) closes
	// that connection; the server goes on serving others.
	g := dialRaw(t, addr)
	g.login("node1", pw)
	if code, msg := g.send("MKD /node1/" + strings.Repeat("y", 5000)); code != 0 && code < 400 {
		t.Errorf("MKD with a 5,000-byte name: %d %s", code, msg)
	}
	h := dialRaw(t, addr)
	h.login("node1", pw)
	if code, msg := h.send("SIZE /node1/keep.log"); code != 213 {
		t.Errorf("SIZE on a new connection after a 5,000-byte line: %d %s", code, msg)
	}
	entries, _ = os.ReadDir(filepath.Join(root, "node1"))
	if len(entries) != 1 {
		t.Errorf("node1 holds %d entries after a 5,000-byte name, want 1", len(entries))
	}
	report(t, "FTP: names of 1,000 and 5,000 bytes, 1,000 levels, REST 2^63-1 / -5 (then STOR) / overflowing / hex, RNTO without RNFR, missing arguments, commands without the permission letter",
		"each refused with a 4xx/5xx reply (a 5,000-byte line closes that connection); nothing created or changed; the server keeps serving (`TestFTPAbuse`)", 0)
}

// TestFTPBounce: PORT and EPRT naming 127.0.0.2 (not the client's address
// 127.0.0.1) are refused or never connected to; the same commands naming
// the client's own address work, so active mode itself is not just off.
func TestFTPBounce(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address 127.0.0.2 on this machine: %v", err)
	}
	defer target.Close()
	hits := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			hits <- c
		}
	}()
	root := t.TempDir()
	addr, pw := inProcessServer(t, root)
	if err := os.MkdirAll(filepath.Join(root, "node1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "node1", "a.log"), []byte("secret-ish\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := dialRaw(t, addr)
	f.login("node1", pw)
	port := target.Addr().(*net.TCPAddr).Port
	for _, c := range []string{
		fmt.Sprintf("PORT 127,0,0,2,%d,%d", port>>8, port&0xff),
		fmt.Sprintf("EPRT |1|127.0.0.2|%d|", port),
	} {
		code, msg := f.send(c)
		if code < 400 {
			// Accepted as a command: the transfer must still not connect.
			code, msg = f.send("RETR /node1/a.log")
			if code == 150 {
				code, msg = f.reply()
			}
		}
		if code < 400 {
			t.Errorf("%s then RETR: %d %s, want a refusal", c, code, msg)
		}
	}
	select {
	case c := <-hits:
		c.Close()
		t.Fatal("the server connected to 127.0.0.2: bounce possible")
	case <-time.After(500 * time.Millisecond):
	}
	// Control: active mode to the client's own address works.
	own, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	op := own.Addr().(*net.TCPAddr).Port
	if code, msg := f.send(fmt.Sprintf("EPRT |1|127.0.0.1|%d|", op)); code != 200 {
		t.Fatalf("EPRT to own address: %d %s", code, msg)
	}
	got := make(chan string, 1)
	go func() {
		c, err := own.Accept()
		if err != nil {
			got <- ""
			return
		}
		defer c.Close()
		b := make([]byte, 100)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := c.Read(b)
		got <- string(b[:n])
	}()
	if code, msg := f.send("RETR /node1/a.log"); code != 150 && code != 125 {
		t.Fatalf("RETR in active mode to own address: %d %s", code, msg)
	}
	if s := <-got; s != "secret-ish\n" {
		t.Errorf("active RETR to own address got %q", s)
	}
	f.reply()
	report(t, "FTP: PORT and EPRT naming 127.0.0.2 (bounce attack; client on 127.0.0.1)",
		"refused; no connection reached 127.0.0.2; active mode to the client's own address still works (`TestFTPBounce`)", 0)
}
