package ftpfs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestParseServerURL(t *testing.T) {
	tests := []struct {
		in      string
		host    string
		port    int
		tls     bool
		wantErr string
	}{
		{in: "ftp://example.org", host: "example.org", port: 21},
		{in: "ftp://example.org:2121", host: "example.org", port: 2121},
		{in: "ftps://10.0.0.1:990/", host: "10.0.0.1", port: 990, tls: true},
		{in: "ftp://[::1]:2121", host: "::1", port: 2121},
		{in: "http://example.org", wantErr: "scheme"},
		{in: "example.org:21", wantErr: "scheme"},
		{in: "ftp://", wantErr: "no host"},
		{in: "ftp://h:0", wantErr: "bad port"},
		{in: "ftp://h:70000", wantErr: "bad port"},
		{in: "ftp://h/dir", wantErr: "path"},
		{in: "ftp://bob:hunter2@h:21", wantErr: "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			host, port, tls, err := ParseServerURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error text repeats the password: %v", err)
				}
				return
			}
			if err != nil || host != tt.host || port != tt.port || tls != tt.tls {
				t.Fatalf("got %q %d %v %v, want %q %d %v", host, port, tls, err, tt.host, tt.port, tt.tls)
			}
		})
	}
}

func TestParseFingerprint(t *testing.T) {
	sum := sha256.Sum256([]byte("cert"))
	plain := hex.EncodeToString(sum[:])
	var colons []string
	for i := 0; i < len(plain); i += 2 {
		colons = append(colons, strings.ToUpper(plain[i:i+2]))
	}
	for _, in := range []string{plain, "sha256:" + plain, "SHA256:" + strings.Join(colons, ":"), " " + plain + " "} {
		got, err := parseFingerprint(in)
		if err != nil || string(got) != string(sum[:]) {
			t.Errorf("parseFingerprint(%q) = %x, %v; want %x", in, got, err, sum)
		}
	}
	for _, in := range []string{"", "sha256:", "sha256:abcd", "md5:" + plain, plain + "00", "zz" + plain[2:]} {
		if _, err := parseFingerprint(in); err == nil {
			t.Errorf("parseFingerprint(%q) accepted a bad fingerprint", in)
		}
	}
}

func TestOpErrorSentinels(t *testing.T) {
	tests := []struct {
		op   string
		code int
		msg  string
		want error
	}{
		{"size", 550, "No such file or directory.", ErrNotFound},
		{"size", 550, "Could not get file size.", ErrNotFound},
		{"retr", 550, "Failed to open file.", ErrNotFound},
		{"retr", 550, "Permission denied.", ErrPermission},
		{"stor", 550, "Permission denied.", ErrPermission},
		{"stor", 553, "Could not create file.", ErrPermission},
		{"stor", 550, "No such file or directory.", ErrNotFound},
		{"mkdir", 550, "Create directory operation failed.", ErrPermission},
		{"mkdir", 550, "File exists.", ErrExists},
		{"stor", 550, "Invalid REST parameter.", ErrOffset},
		{"stor", 551, "upload /a: restart offset 9 is beyond the end of the file (3 bytes): bad restart offset", ErrOffset},
		{"login", 530, "Login incorrect.", ErrClientLogin},
		{"stor", 450, "File busy.", ErrBusy},
		{"stor", 421, "Too many connections.", ErrBusy},
		{"stor", 552, "Exceeded storage allocation.", nil},
		{"stor", 426, "Connection closed; transfer aborted.", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%d_%s", tt.op, tt.code, tt.msg), func(t *testing.T) {
			err := opError(tt.op, "/a/b.log", &textproto.Error{Code: tt.code, Msg: tt.msg})
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "/a/b.log") {
				t.Errorf("error %q lost the server's text or the path", err)
			}
			var tp *textproto.Error
			if !errors.As(err, &tp) || tp.Code != tt.code {
				t.Errorf("error %q does not wrap the reply", err)
			}
			for _, s := range []error{ErrNotFound, ErrPermission, ErrClientLogin, ErrBusy, ErrExists, ErrOffset} {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(%q, %v) = %v", err, s, got)
				}
			}
		})
	}
}

func TestIsTransient(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"421", &textproto.Error{Code: 421, Msg: "closing"}, true},
		{"425", &textproto.Error{Code: 425, Msg: "no data connection"}, true},
		{"426", &textproto.Error{Code: 426, Msg: "aborted"}, true},
		{"450 wrapped", opError("stor", "/x", &textproto.Error{Code: 450, Msg: "busy"}), true},
		{"530", opError("login", "", &textproto.Error{Code: 530, Msg: "no"}), false},
		{"550", opError("size", "/x", &textproto.Error{Code: 550, Msg: "no such file"}), false},
		{"553", &textproto.Error{Code: 553, Msg: "bad name"}, false},
		{"timeout", fmt.Errorf("stor /x: %w", timeout), true},
		{"reset", fmt.Errorf("stor /x: %w", &net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.ECONNRESET)}), true},
		{"eof", fmt.Errorf("noop: %w", io.EOF), true},
		{"unreachable", fmt.Errorf("connect: %w: refused", ErrUnreachable), true},
		{"busy", ErrBusy, true},
		{"canceled", fmt.Errorf("stor /x: %w", context.Canceled), false},
		{"deadline", fmt.Errorf("stor /x: %w", context.DeadlineExceeded), false},
		{"ctx with last error", fmt.Errorf("connect: %w; last error: %w", context.DeadlineExceeded, ErrUnreachable), false},
		{"login", fmt.Errorf("x: %w", ErrClientLogin), false},
		{"local read", &localError{op: "read source", err: timeout}, false},
		{"fingerprint", fmt.Errorf("connect: %w: %w", ErrUnreachable, errFingerprint), false},
		{"remote larger", ErrRemoteLarger, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTransient(tt.err); got != tt.want {
				t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestIdleConnResets shows that the deadline measures silence: a peer that
// trickles a byte at a time keeps the connection alive far longer than the
// timeout, and one that falls silent is cut after it.
func TestIdleConnResets(t *testing.T) {
	client, server := tcpPair(t)
	const timeout = 500 * time.Millisecond
	ic := newIdleConn(client, timeout, nil)
	const ticks = 20 // 20 × 50ms = twice the timeout
	go func() {
		for range ticks {
			time.Sleep(timeout / 10)
			if _, err := server.Write([]byte{'x'}); err != nil {
				return
			}
		}
		// Then silence, with the connection still open.
	}()
	buf := make([]byte, 1)
	for i := range ticks {
		if _, err := ic.Read(buf); err != nil {
			t.Fatalf("read %d of a trickling peer: %v", i, err)
		}
	}
	err := within(t, 10*time.Second, "read from a silent peer", func() error {
		_, err := ic.Read(buf)
		return err
	})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a silent peer: got %v, want a deadline error", err)
	}
	if !IsTransient(err) {
		t.Errorf("an idle timeout must count as transient: %v", err)
	}
}

func TestIdleConnWriteStall(t *testing.T) {
	client, _ := tcpPair(t) // the peer never reads
	ic := newIdleConn(client, 300*time.Millisecond, nil)
	err := within(t, 20*time.Second, "write to a peer that does not read", func() error {
		_, err := io.Copy(ic, io.LimitReader(zeroReader{}, 1<<30))
		return err
	})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a peer that does not read: got %v, want a deadline error", err)
	}
}

// TestDialSilentServer: a server that accepts but never greets must not
// hang Dial.
func TestDialSilentServer(t *testing.T) {
	ln := listen(t)
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // accept, then say nothing
		}
	}()
	cfg := ClientConfig{Server: "ftp://" + ln.Addr().String(), User: "u", Password: "p", DialTimeout: time.Second, IOTimeout: 300 * time.Millisecond}
	err := within(t, 10*time.Second, "dial to a silent server", func() error {
		c, err := Dial(context.Background(), cfg)
		if err == nil {
			_ = c.Close()
		}
		return err
	})
	if !errors.Is(err, ErrUnreachable) || !IsTransient(err) {
		t.Fatalf("dial to a silent server: got %v, want a transient ErrUnreachable", err)
	}
}

func TestDialRefused(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	_ = ln.Close()
	_, err := Dial(context.Background(), ClientConfig{Server: "ftp://" + addr, DialTimeout: time.Second})
	if !errors.Is(err, ErrUnreachable) || !IsTransient(err) {
		t.Fatalf("dial to a closed port: got %v, want a transient ErrUnreachable", err)
	}
}

func TestDialWrongPasswordNotInError(t *testing.T) {
	fake := startFakeFTP(t, fakeLoginFails)
	cfg := fake.config()
	cfg.Password = "very-secret-pw"
	_, err := Dial(context.Background(), cfg)
	if !errors.Is(err, ErrClientLogin) {
		t.Fatalf("dial with a refused password: got %v, want ErrClientLogin", err)
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Fatalf("error text contains the password: %v", err)
	}
}

// TestStoreStalls: a server that stops reading the data connection, or
// never confirms the transfer, makes Store fail after about IOTimeout
// instead of hanging; the client is then unusable and says so.
func TestStoreStalls(t *testing.T) {
	for _, mode := range []fakeMode{fakeStallData, fakeStallReply} {
		t.Run(mode.String(), func(t *testing.T) {
			fake := startFakeFTP(t, mode)
			c, err := Dial(context.Background(), fake.config())
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			src := io.LimitReader(zeroReader{}, 1<<30)
			if mode == fakeStallReply {
				src = io.LimitReader(zeroReader{}, 1<<20)
			}
			err = within(t, 20*time.Second, "store to a stalled server", func() error {
				_, err := c.Store(context.Background(), "/f.log", src, 0)
				return err
			})
			if err == nil || !IsTransient(err) {
				t.Fatalf("store to a stalled server: got %v, want a transient error", err)
			}
			if err := c.Noop(context.Background()); !errors.Is(err, ErrClientClosed) {
				t.Fatalf("noop after a stall: got %v, want ErrClientClosed", err)
			}
		})
	}
}

// TestStoreCancel: cancelling the context cuts a transfer that would
// otherwise wait for the (long) IOTimeout, and the error says it was
// cancelled, which is never transient.
func TestStoreCancel(t *testing.T) {
	fake := startFakeFTP(t, fakeStallData)
	cfg := fake.config()
	cfg.IOTimeout = time.Hour
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-fake.stor // the transfer is under way
		cancel()
	}()
	err = within(t, 20*time.Second, "cancelled store", func() error {
		_, err := c.Store(ctx, "/f.log", io.LimitReader(zeroReader{}, 1<<30), 0)
		return err
	})
	if !errors.Is(err, context.Canceled) || IsTransient(err) {
		t.Fatalf("cancelled store: got %v, want context.Canceled, not transient", err)
	}
	if err := c.Noop(context.Background()); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("noop after a cancelled store: got %v, want ErrClientClosed", err)
	}
}

// within runs f and fails the test if it does not return in limit: a
// liveness bound, not a speed measurement.
func within(t *testing.T, limit time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s did not return within %v", what, limit)
		return nil
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln := listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type fakeMode int

const (
	fakeLoginFails fakeMode = iota
	fakeStallData           // accepts the data connection, never reads it
	fakeStallReply          // reads the data, never sends 226
)

func (m fakeMode) String() string {
	return [...]string{"LoginFails", "StallData", "StallReply"}[m]
}

// fakeFTP is a scripted FTP server, just enough of one for jlaffaye/ftp to
// log in and start a STOR, then misbehave as its mode says.
type fakeFTP struct {
	addr string
	mode fakeMode
	// stor receives once the client has opened the data connection of a STOR.
	stor chan struct{}

	mu    sync.Mutex
	conns []io.Closer
}

func (f *fakeFTP) config() ClientConfig {
	return ClientConfig{Server: "ftp://" + f.addr, User: "u", Password: "p", DialTimeout: 2 * time.Second, IOTimeout: 300 * time.Millisecond}
}

func startFakeFTP(t *testing.T, mode fakeMode) *fakeFTP {
	t.Helper()
	ln := listen(t)
	f := &fakeFTP{addr: ln.Addr().String(), mode: mode, stor: make(chan struct{}, 16)}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.hold(c)
			go f.serve(c)
		}
	}()
	return f
}

// hold keeps c open until the test ends.
func (f *fakeFTP) hold(c io.Closer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = append(f.conns, c)
}

func (f *fakeFTP) serve(c net.Conn) {
	r := bufio.NewReader(c)
	reply := func(s string) { _, _ = io.WriteString(c, s+"\r\n") }
	reply("220 fake ready")
	var data net.Listener
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(cmd) {
		case "USER":
			reply("331 password please")
		case "PASS":
			if f.mode == fakeLoginFails {
				reply("530 Login incorrect.")
				continue
			}
			reply("230 welcome")
		case "FEAT":
			reply("502 no features")
		case "TYPE":
			reply("200 ok")
		case "PWD":
			reply(`257 "/" is the current directory`)
		case "NOOP":
			reply("200 ok")
		case "EPSV":
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				reply("425 cannot listen")
				continue
			}
			f.hold(ln)
			data = ln
			reply(fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)", ln.Addr().(*net.TCPAddr).Port))
		case "STOR":
			if data == nil {
				reply("425 use EPSV first")
				continue
			}
			dc, err := data.Accept()
			_ = data.Close()
			data = nil
			if err != nil {
				return
			}
			f.hold(dc)
			reply("150 go ahead")
			f.stor <- struct{}{}
			if f.mode == fakeStallReply {
				_, _ = io.Copy(io.Discard, dc)
				_ = dc.Close()
			}
			// Either way, never confirm: the control connection goes silent.
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}
