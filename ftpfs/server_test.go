package ftpfs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"golang.org/x/crypto/bcrypt"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
)

// Test accounts of srvStart: two agents and an admin, one password.
const (
	srvPassword = "correct-horse-9"
	srvAgent    = "node1"
	srvOther    = "node2"
	srvAdmin    = "ops"
)

// srvEnv is a running server on a loopback port with its archive root, a
// copy of its log and the upload events it reported.
type srvEnv struct {
	t      *testing.T
	srv    *ftpfs.Server
	root   string
	state  string
	addr   string
	log    *srvLogBuf
	events *srvEvents
}

// srvLogBuf collects the server's log; safe for concurrent use.
type srvLogBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *srvLogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *srvLogBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// srvEvents records upload events.
type srvEvents struct {
	mu  sync.Mutex
	evs []activity.UploadEvent
}

func (e *srvEvents) add(ev activity.UploadEvent) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

// forPath returns the events of one archive path, in order.
func (e *srvEvents) forPath(p string) []activity.UploadEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []activity.UploadEvent
	for _, ev := range e.evs {
		if ev.Path == p {
			out = append(out, ev)
		}
	}
	return out
}

// srvStart starts a server with accounts node1, node2 (agents) and ops
// (admin); mod may change the configuration first.
func srvStart(t *testing.T, mod func(*ftpfs.ServerConfig)) *srvEnv {
	t.Helper()
	e := &srvEnv{t: t, root: t.TempDir(), state: t.TempDir(), log: &srvLogBuf{}, events: &srvEvents{}}
	ts := ftptest.NewServer(t, e.root, ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) {
		cfg.StateDir = e.state
		cfg.Users = srvUsers(t, e.state, nil)
		cfg.LoginFailDelay = time.Millisecond
		cfg.BanAfter = 0 // the server's default
		cfg.Logger = slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		cfg.OnUpload = e.events.add
		if mod != nil {
			mod(cfg)
		}
	}))
	// Runs before ftptest's own Close, which then does nothing.
	t.Cleanup(func() {
		if err := ts.Close(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if strings.Contains(e.log.String(), srvPassword) {
			t.Errorf("the server logged a password:\n%s", e.log.String())
		}
	})
	e.srv = ts.FTP()
	e.addr = ts.Addr
	return e
}

// srvHash is a bcrypt hash of srvPassword at the lowest cost, so that the
// race detector's slowdown of bcrypt does not dominate the tests.
var srvHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(srvPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// srvUsers writes a users file with node1, node2 (agents), ops (admin)
// and the extra accounts, all with srvPassword, and opens it.
func srvUsers(t *testing.T, dir string, extra []accounts.User) *accounts.DB {
	t.Helper()
	users := append([]accounts.User{{Name: srvAgent}, {Name: srvOther}, {Name: srvAdmin, Admin: true}}, extra...)
	var b strings.Builder
	b.WriteString("users:\n")
	for _, u := range users {
		fmt.Fprintf(&b, "  - name: %s\n    password_hash: %q\n", u.Name, srvHash())
		if u.Admin {
			b.WriteString("    admin: true\n")
		}
		if u.Perm != "" {
			fmt.Fprintf(&b, "    perm: %q\n", u.Perm)
		}
		if u.MaxUploadRate != 0 {
			fmt.Fprintf(&b, "    max_upload_rate: %d\n", int64(u.MaxUploadRate))
		}
		if u.MaxDownloadRate != 0 {
			fmt.Fprintf(&b, "    max_download_rate: %d\n", int64(u.MaxDownloadRate))
		}
	}
	p := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := accounts.Open(p)
	if err != nil {
		t.Fatalf("accounts.Open: %v\n%s", err, b.String())
	}
	return db
}

// dial logs in with jlaffaye/ftp; the connection is closed at cleanup.
func (e *srvEnv) dial(user, password string) *ftp.ServerConn {
	e.t.Helper()
	c, err := e.tryDial(user, password)
	if err != nil {
		e.t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func (e *srvEnv) tryDial(user, password string, opts ...ftp.DialOption) (*ftp.ServerConn, error) {
	opts = append([]ftp.DialOption{ftp.DialWithTimeout(5 * time.Second)}, opts...)
	c, err := ftp.Dial(e.addr, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, password); err != nil {
		_ = c.Quit()
		return nil, err
	}
	e.t.Cleanup(func() { _ = c.Quit() })
	return c, nil
}

// file returns the path in the archive root of an archive path.
func (e *srvEnv) file(p string) string {
	return filepath.Join(e.root, filepath.FromSlash(strings.TrimPrefix(p, "/")))
}

// put writes a file into the archive directly (fixtures).
func (e *srvEnv) put(p string, data []byte) {
	e.t.Helper()
	f := e.file(p)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(f, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// read returns an archived file's bytes.
func (e *srvEnv) read(p string) []byte {
	e.t.Helper()
	b, err := os.ReadFile(e.file(p))
	if err != nil {
		e.t.Fatalf("read archived %s: %v", p, err)
	}
	return b
}

// srvRandom returns n random bytes.
func srvRandom(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// srvRaw is a control connection driven by hand, for exact replies.
type srvRaw struct {
	t    *testing.T
	conn net.Conn
	tp   *textproto.Conn
}

// raw connects without logging in and reads the greeting.
func (e *srvEnv) raw() *srvRaw {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := &srvRaw{t: e.t, conn: c, tp: textproto.NewConn(c)}
	e.t.Cleanup(func() { _ = r.tp.Close() })
	if code, msg := r.reply(); code != 220 {
		e.t.Fatalf("greeting: %d %s", code, msg)
	}
	return r
}

// rawLogin connects and logs in.
func (e *srvEnv) rawLogin(user string) *srvRaw {
	e.t.Helper()
	r := e.raw()
	r.expect(331, "USER %s", user)
	r.expect(230, "PASS %s", srvPassword)
	r.expect(200, "TYPE I")
	return r
}

// reply reads one reply; code 0 means the connection ended.
func (r *srvRaw) reply() (int, string) {
	code, msg, err := r.tp.ReadResponse(0)
	if err != nil {
		var pe *textproto.Error
		if errors.As(err, &pe) {
			return pe.Code, pe.Msg
		}
		return 0, err.Error()
	}
	return code, msg
}

// cmd sends a command and returns its reply.
func (r *srvRaw) cmd(format string, args ...any) (int, string) {
	r.t.Helper()
	if err := r.tp.PrintfLine(format, args...); err != nil {
		return 0, err.Error()
	}
	return r.reply()
}

// expect fails the test unless the command's reply has code want.
func (r *srvRaw) expect(want int, format string, args ...any) string {
	r.t.Helper()
	code, msg := r.cmd(format, args...)
	if code != want {
		r.t.Fatalf("%s: got %d %s, want %d", strings.Fields(fmt.Sprintf(format, args...))[0], code, msg, want)
	}
	return msg
}

// epsv opens a passive data connection.
func (r *srvRaw) epsv() net.Conn {
	r.t.Helper()
	msg := r.expect(229, "EPSV")
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	if i < 0 || j < i {
		r.t.Fatalf("EPSV reply %q", msg)
	}
	port, err := strconv.Atoi(msg[i+4 : j])
	if err != nil {
		r.t.Fatalf("EPSV reply %q: %v", msg, err)
	}
	host, _, _ := net.SplitHostPort(r.conn.RemoteAddr().String())
	dc, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		r.t.Fatalf("data connection: %v", err)
	}
	_ = dc.SetDeadline(time.Now().Add(30 * time.Second))
	r.t.Cleanup(func() { _ = dc.Close() })
	return dc
}

// store uploads data with STOR (after REST offset if offset > 0) and
// returns the final reply.
func (r *srvRaw) store(verb, p string, offset int64, data []byte) (int, string) {
	r.t.Helper()
	if offset > 0 {
		r.expect(350, "REST %d", offset)
	}
	dc := r.epsv()
	code, msg := r.cmd("%s %s", verb, p)
	if code != 150 {
		_ = dc.Close()
		return code, msg
	}
	if _, err := dc.Write(data); err != nil {
		r.t.Fatalf("write data: %v", err)
	}
	_ = dc.Close()
	return r.reply()
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerLogin(t *testing.T) {
	e := srvStart(t, nil)
	tests := []struct {
		name, user, password string
		ok                   bool
	}{
		{"agent", srvAgent, srvPassword, true},
		{"admin", srvAdmin, srvPassword, true},
		{"wrong password", srvAgent, "wrong", false},
		{"unknown user", "nobody", srvPassword, false},
		{"empty password", srvAgent, "", false},
		{"anonymous", "anonymous", "guest@example.com", false},
		{"ftp", "ftp", "guest@example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.tryDial(tt.user, tt.password)
			if tt.ok {
				if err != nil {
					t.Fatalf("login: %v", err)
				}
				if err := c.NoOp(); err != nil {
					t.Fatalf("NOOP after login: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("login as %q succeeded", tt.user)
			}
			// jlaffaye/ftp returns the 530 of PASS as a textproto.Error,
			// and a refusal at USER as the bare message.
			var pe *textproto.Error
			if errors.As(err, &pe) && pe.Code != 530 {
				t.Fatalf("login error %v, want a 530 reply", err)
			}
			if strings.Contains(err.Error(), tt.password) && tt.password != "" {
				t.Fatalf("error echoes the password: %v", err)
			}
		})
	}
}

func TestServerCommandsBeforeLogin(t *testing.T) {
	e := srvStart(t, nil)
	r := e.raw()
	for _, c := range []string{"LIST /", "SIZE /node1/a", "CWD /", "STOR /node1/x", "MKD /x", "DELE /x"} {
		if code, msg := r.cmd("%s", c); code != 530 {
			t.Errorf("%s before login: %d %s, want 530", c, code, msg)
		}
	}
	// PASS without USER is no login either.
	if code, msg := r.cmd("PASS %s", srvPassword); code == 230 {
		t.Errorf("PASS without USER logged in: %d %s", code, msg)
	}
}

func TestServerConfigValidation(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		cfg   ftpfs.ServerConfig
		field string
	}{
		{"no root", ftpfs.ServerConfig{}, "Root"},
		{"missing root", ftpfs.ServerConfig{Root: filepath.Join(dir, "nope")}, "Root"},
		{"root is a file", ftpfs.ServerConfig{Root: file}, "Root"},
		{"bad listen", ftpfs.ServerConfig{Root: dir, ListenAddr: "localhost"}, "ListenAddr"},
		{"bad ports", ftpfs.ServerConfig{Root: dir, PassivePorts: ftpfs.PortRange{Lo: 6000, Hi: 5000}}, "PassivePorts"},
		{"bad public host", ftpfs.ServerConfig{Root: dir, PublicHost: "example.com"}, "PublicHost"},
		{"cert without key", ftpfs.ServerConfig{Root: dir, TLSCertFile: "c.pem"}, "TLSCertFile"},
		{"missing cert files", ftpfs.ServerConfig{Root: dir, TLSCertFile: "c.pem", TLSKeyFile: "k.pem"}, "TLSCertFile"},
		{"self-signed without state", ftpfs.ServerConfig{Root: dir, TLSSelfSigned: true}, "StateDir"},
		{"required without cert", ftpfs.ServerConfig{Root: dir, TLSRequired: true}, "TLSRequired"},
		{"negative rate", ftpfs.ServerConfig{Root: dir, MaxUploadRate: -1}, "MaxUploadRate"},
		{"negative conns", ftpfs.ServerConfig{Root: dir, MaxConns: -1}, "MaxConns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ftpfs.NewServer(tt.cfg)
			if err == nil {
				t.Fatal("NewServer accepted the configuration")
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name the field %s", err, tt.field)
			}
		})
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in   string
		want ftpfs.PortRange
		ok   bool
	}{
		{"50000-50100", ftpfs.PortRange{Lo: 50000, Hi: 50100}, true},
		{"2000-2000", ftpfs.PortRange{Lo: 2000, Hi: 2000}, true},
		{"", ftpfs.PortRange{}, true},
		{"50100-50000", ftpfs.PortRange{}, false},
		{"0-10", ftpfs.PortRange{}, false},
		{"1-70000", ftpfs.PortRange{}, false},
		{"5000", ftpfs.PortRange{}, false},
		{"a-b", ftpfs.PortRange{}, false},
	}
	for _, tt := range tests {
		got, err := ftpfs.ParsePortRange(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestServerStopCutsTransfers(t *testing.T) {
	e := srvStart(t, nil)
	r := e.rawLogin(srvAgent)
	dc := r.epsv()
	r.expect(150, "STOR /node1/open.log")
	if _, err := dc.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the upload to be registered", func() bool {
		for _, c := range e.srv.Connections() {
			if len(c.Transfers) == 1 && c.Transfers[0].Bytes == 7 {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Stop(ctx); err != nil {
		t.Fatalf("Stop with an open upload: %v", err)
	}
	if n := len(e.srv.Connections()); n != 0 {
		t.Fatalf("%d connections after Stop", n)
	}
	if _, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		t.Fatal("server still accepts connections after Stop")
	}
	evs := e.events.forPath("/node1/open.log")
	if len(evs) == 0 || evs[len(evs)-1].Kind != activity.UploadFailed {
		t.Fatalf("events %v, want the cut upload to end with UploadFailed", evs)
	}
	if got := e.read("/node1/open.log"); string(got) != "partial" {
		t.Fatalf("file holds %q, want the bytes received before the stop", got)
	}
	_, _ = io.Copy(io.Discard, dc)
}
