package ftpfs_test

// The data channel's integrity with TLS (issue 14, finding 4): a stranger
// on the client's own address who connects to a passive port and makes its
// own TLS handshake must neither take over the transfer (send the bytes of
// an upload, read a download) nor make it fail.

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
)

// attackerMark fills what a stranger sends on a data connection it got.
var attackerMark = []byte("ATTACKER-BYTES\n")

// tlsRaw is a raw FTPS control connection (AUTH TLS, PBSZ 0, PROT P).
type tlsRaw struct {
	*srvRaw
	conf *tls.Config // with this connection's session cache
}

// rawTLSLogin logs in as user over explicit TLS no newer than maxVersion,
// with a session cache of its own.
func (e *srvEnv) rawTLSLogin(user string, maxVersion uint16) *tlsRaw {
	e.t.Helper()
	r := e.raw()
	r.expect(234, "AUTH TLS")
	conf := &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion, ServerName: "127.0.0.1",
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	tc := tls.Client(r.conn, conf)
	if err := tc.Handshake(); err != nil {
		e.t.Fatalf("control handshake: %v", err)
	}
	r.conn = tc
	r.tp = textproto.NewConn(tc)
	r.expect(200, "PBSZ 0")
	r.expect(200, "PROT P")
	r.expect(331, "USER %s", user)
	r.expect(230, "PASS %s", srvPassword)
	r.expect(200, "TYPE I")
	return &tlsRaw{srvRaw: r, conf: conf}
}

// epsvPort asks for a passive port without connecting to it.
func (r *srvRaw) epsvPort() int {
	r.t.Helper()
	msg := r.expect(229, "EPSV")
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	port, err := strconv.Atoi(msg[i+4 : j])
	if i < 0 || j < i || err != nil {
		r.t.Fatalf("EPSV reply %q", msg)
	}
	return port
}

// dialFrom connects to port on 127.0.0.1 from the loopback address local.
func dialFrom(t *testing.T, local string, port int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("dial data port from %s: %v", local, err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// tlsSrvStart starts a server that requires TLS, with a short wait for data
// connections.
func tlsSrvStart(t *testing.T, mod func(*ftpfs.ServerConfig)) *srvEnv {
	t.Helper()
	return srvStart(t, func(cfg *ftpfs.ServerConfig) {
		cfg.TLSSelfSigned = true
		cfg.TLSRequired = true
		cfg.DataConnTimeout = 3 * time.Second
		if mod != nil {
			mod(cfg)
		}
	})
}

// TestServerFTPSDataSessionReuse: a stranger on the agent's address
// connects to the passive port before the agent and makes its own TLS
// handshake, either a new session or one resumed from its own control
// connection to the same server. Its connection is dropped, the agent's
// transfer (upload, then download) completes with the agent's bytes, and
// the stranger reads nothing. With TLS 1.2 and 1.3.
func TestServerFTPSDataSessionReuse(t *testing.T) {
	for _, v := range []struct {
		name string
		max  uint16
	}{{"TLS1.2", tls.VersionTLS12}, {"TLS1.3", tls.VersionTLS13}} {
		for _, attack := range []string{"new session", "own control session"} {
			t.Run(v.name+"/"+attack, func(t *testing.T) {
				e := tlsSrvStart(t, nil)
				victim := e.rawTLSLogin(srvAgent, v.max)
				attConf := &tls.Config{InsecureSkipVerify: true, MaxVersion: v.max, ServerName: "127.0.0.1"}
				if attack == "own control session" {
					// A session the server issued, on the attacker's
					// own control connection (another account).
					attConf = e.rawTLSLogin(srvOther, v.max).conf
				}
				data := srvRandom(t, 256<<10)

				// Upload: the stranger connects first and sends its bytes.
				port := victim.epsvPort()
				attacked := make(chan error, 1)
				ac := tls.Client(dialFrom(t, "127.0.0.1", port), attConf)
				go func() {
					err := ac.Handshake()
					if err == nil {
						_, err = ac.Write(bytes.Repeat(attackerMark, 1000))
					}
					attacked <- err
				}()
				vc := dialFrom(t, "127.0.0.1", port)
				if code, msg := victim.cmd("STOR /node1/a.log"); code != 150 {
					t.Fatalf("STOR: %d %s", code, msg)
				}
				tc := tls.Client(vc, victim.conf)
				if _, err := tc.Write(data); err != nil {
					t.Errorf("agent's data connection: %v", err)
				} else if !tc.ConnectionState().DidResume {
					t.Errorf("the agent's data connection did not resume its session")
				}
				_ = tc.Close()
				if code, msg := victim.reply(); code != 226 {
					t.Errorf("STOR ended with %d %s, want 226", code, msg)
				}
				<-attacked
				if got := e.read("/node1/a.log"); !bytes.Equal(got, data) {
					t.Fatalf("archived %d bytes (attacker's: %v), want the agent's %d", len(got), bytes.Contains(got, attackerMark), len(data))
				}

				// Download: the stranger connects first and reads.
				port = victim.epsvPort()
				stolen := make(chan int64, 1)
				ac = tls.Client(dialFrom(t, "127.0.0.1", port), attConf)
				go func() {
					n, _ := io.Copy(io.Discard, ac)
					stolen <- n
				}()
				vc = dialFrom(t, "127.0.0.1", port)
				if code, msg := victim.cmd("RETR /node1/a.log"); code != 150 {
					t.Fatalf("RETR: %d %s", code, msg)
				}
				got, err := io.ReadAll(tls.Client(vc, victim.conf))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("download: %d bytes, %v; want %d", len(got), err, len(data))
				}
				if code, msg := victim.reply(); code != 226 {
					t.Fatalf("RETR ended with %d %s, want 226", code, msg)
				}
				if n := <-stolen; n != 0 {
					t.Fatalf("the stranger read %d bytes of the download", n)
				}
				if !strings.Contains(e.log.String(), "TLS handshake failed") {
					t.Errorf("the refused connection was not logged")
				}
			})
		}
	}
}

// hijacker polls a passive port from the agent's own address, the way
// issue 14 measured finding 4: four workers each connect to the port as
// soon as it listens, handshake with a TLS session of their own, send
// their bytes and read what comes, then poll again.
type hijacker struct {
	got, readB atomic.Int64 // connections that completed a handshake; bytes read
	stop       chan struct{}
	done       sync.WaitGroup
}

func startHijacker(t *testing.T, port int) *hijacker {
	h := &hijacker{stop: make(chan struct{})}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for range 4 {
		h.done.Add(1)
		go func() {
			defer h.done.Done()
			for {
				select {
				case <-h.stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					time.Sleep(50 * time.Microsecond)
					continue
				}
				h.steal(c)
			}
		}()
	}
	t.Cleanup(h.close)
	return h
}

// steal handshakes on a data connection it got and sends and reads what it can.
func (h *hijacker) steal(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if tc.Handshake() != nil {
		return
	}
	h.got.Add(1)
	go func() { _, _ = tc.Write(bytes.Repeat(attackerMark, 100)); _ = tc.CloseWrite() }()
	n, _ := io.Copy(io.Discard, tc)
	h.readB.Add(n)
}

func (h *hijacker) close() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.done.Wait()
}

// reservePort picks a free loopback port for a one-port passive range and
// holds it until release is called: the server's control port, picked by
// the kernel meanwhile, cannot be the same one.
func reservePort(t *testing.T) (port int, release func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().(*net.TCPAddr).Port, func() { _ = ln.Close() }
}

// archivedWithMark lists the archived files (versions too) holding the
// attacker's bytes.
func archivedWithMark(t *testing.T, root string) []string {
	t.Helper()
	var bad []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, attackerMark) {
				bad = append(bad, strings.TrimPrefix(p, root))
			}
		}
		return nil
	})
	return bad
}

// TestServerFTPSDataHijackPush is finding 4 as issue 14 measured it: 30
// files uploaded and downloaded by syncer's client with a pinned
// fingerprint and TLS required, while a stranger on the same address
// polls the (single) passive port and handshakes with every connection it
// gets. No attacker byte is archived, every file arrives byte-identical,
// and the stranger reads nothing.
func TestServerFTPSDataHijackPush(t *testing.T) {
	const files = 30
	port, release := reservePort(t)
	e := tlsSrvStart(t, func(cfg *ftpfs.ServerConfig) {
		cfg.PassivePorts = ftpfs.PortRange{Lo: port, Hi: port}
	})
	release()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ccfg := ftpfs.ClientConfig{Server: "ftps://" + e.addr, User: srvAgent, Password: srvPassword,
		Fingerprint: e.srv.TLSFingerprint(), IOTimeout: 5 * time.Second}
	h := startHijacker(t, port)
	var c *ftpfs.Client
	redial := func() {
		if c != nil {
			_ = c.Close()
		}
		var err error
		if c, err = ftpfs.Dial(ctx, ccfg); err != nil {
			t.Fatalf("dial: %v", err)
		}
	}
	redial()
	defer func() { _ = c.Close() }()
	want := make([][]byte, files)
	failed := 0
	for i := range files {
		want[i] = srvRandom(t, 64<<10+i)
		if _, err := c.Upload(ctx, fmt.Sprintf("/node1/f%02d.log", i), bytes.NewReader(want[i]), int64(len(want[i]))); err != nil {
			failed++
			t.Logf("upload %d: %v", i, err)
			redial()
		}
	}
	for i := range files {
		var got bytes.Buffer
		if _, err := c.Retrieve(ctx, fmt.Sprintf("/node1/f%02d.log", i), &got, 0); err != nil {
			failed++
			t.Logf("download %d: %v", i, err)
			redial()
		} else if !bytes.Equal(got.Bytes(), want[i]) {
			t.Errorf("download %d differs", i)
		}
	}
	h.close()
	if bad := archivedWithMark(t, e.root); len(bad) > 0 {
		t.Errorf("%d of %d files archived with the attacker's bytes: %v", len(bad), files, bad)
	}
	for i := range files {
		if got, err := os.ReadFile(e.file(fmt.Sprintf("/node1/f%02d.log", i))); err != nil || !bytes.Equal(got, want[i]) {
			t.Errorf("f%02d.log archived differs (%d bytes, %v)", i, len(got), err)
		}
	}
	refused := strings.Count(e.log.String(), "TLS handshake failed")
	t.Logf("%d transfers failed; the server refused %d of the stranger's connections; the stranger completed %d handshakes and read %d bytes",
		failed, refused, h.got.Load(), h.readB.Load())
	if refused == 0 && h.got.Load() == 0 {
		t.Errorf("the stranger never reached a passive port: the test tested nothing")
	}
	if failed > 0 {
		for _, l := range strings.Split(e.log.String(), "\n") {
			if strings.Contains(l, "refused") || strings.Contains(l, "Unable") {
				if !strings.Contains(l, "did not resume") {
					t.Log(l)
				}
			}
		}
	}
	if failed > 0 || h.readB.Load() > 0 {
		t.Errorf("%d of %d transfers failed, the stranger read %d bytes", failed, 2*files, h.readB.Load())
	}
}
