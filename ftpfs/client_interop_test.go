package ftpfs_test

// Interoperability of our client with third-party servers: pyftpdlib and
// vsftpd (Debian packages), each started by the test on a loopback port in
// a temporary directory. A test skips, saying why, when its server is not
// installed; CI installs both (.ci/run).

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/internal/testkit"
)

// ftpTarget is a running third-party server with one account that may
// write under Dir ("/" unless the server confines uploads to a subtree).
type ftpTarget struct {
	Name        string
	URL         string
	User        string
	Password    string
	CAFile      string
	Fingerprint string
	Root        string // local directory the server serves
	Dir         string // FTP directory the account may write in
	// Stop stops the server; Start starts it again on the same port.
	Stop  func()
	Start func(t testing.TB)
	// WrongLogin is a ClientConfig whose login the server refuses.
	WrongLogin ftpfs.ClientConfig
}

func (tg *ftpTarget) config() ftpfs.ClientConfig {
	return ftpfs.ClientConfig{
		Server:      tg.URL,
		User:        tg.User,
		Password:    tg.Password,
		CAFile:      tg.CAFile,
		Fingerprint: tg.Fingerprint,
		DialTimeout: 5 * time.Second,
		IOTimeout:   10 * time.Second,
	}
}

// local maps an FTP path under the target to the file the server wrote.
func (tg *ftpTarget) local(p string) string {
	return filepath.Join(tg.Root, filepath.FromSlash(p))
}

// startPyftpd starts pyftpdlib serving a temporary directory; with cert it
// speaks explicit TLS only.
func startPyftpd(t testing.TB, cert string) *ftpTarget {
	t.Helper()
	pass := "pw-" + rand.Text()[:12]
	srv := testkit.StartPyftpd(t, testkit.PyftpdConfig{User: "agent", Password: pass, CertFile: cert,
		AuthFailedTimeout: 100 * time.Millisecond})
	tg := &ftpTarget{Name: "pyftpdlib", URL: srv.URL, User: "agent", Password: pass, Root: srv.Root, Dir: "/",
		Stop: srv.Stop, Start: srv.Start}
	tg.WrongLogin = tg.config()
	tg.WrongLogin.Password = "wrong-" + tg.Password
	return tg
}

// startVsftpd starts vsftpd (see testkit.StartVsftpd) with anonymous
// access, uploads allowed in a temporary directory.
func startVsftpd(t testing.TB) *ftpTarget {
	t.Helper()
	srv := testkit.StartVsftpd(t)
	tg := &ftpTarget{
		Name: "vsftpd", URL: "ftp://" + srv.Addr, User: "anonymous", Password: "agent@example.org",
		// Without a chroot vsftpd's paths are the real ones.
		Root: "/", Dir: filepath.ToSlash(srv.Pub), Stop: srv.Stop, Start: srv.Start,
	}
	// vsftpd is configured anonymous-only: any other user is refused.
	tg.WrongLogin = tg.config()
	tg.WrongLogin.User = "no-such-user"
	return tg
}

func TestClientPyftpdlib(t *testing.T) { runClientSuite(t, startPyftpd(t, "")) }
func TestClientVsftpd(t *testing.T)    { runClientSuite(t, startVsftpd(t)) }
func TestClientOwnServer(t *testing.T) { runClientSuite(t, startOwnServer(t, false)) }

// TestClientOwnServerRefusals: what an agent account meets at the
// boundaries of our archive arrives as the package's sentinels.
func TestClientOwnServerRefusals(t *testing.T) {
	tg := startOwnServer(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := ftpfs.Dial(ctx, tg.config())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := path.Join(tg.Dir, "r.log")
	if _, err := c.Store(ctx, p, strings.NewReader("abc"), 0); err != nil {
		t.Fatalf("store: %v", err)
	}
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"rest beyond the end", func() error {
			_, err := c.Store(ctx, p, strings.NewReader("x"), 9)
			return err
		}, ftpfs.ErrOffset},
		{"store outside home", func() error {
			_, err := c.Store(ctx, "/node2/x.log", strings.NewReader("x"), 0)
			return err
		}, ftpfs.ErrPermission},
		{"mkdir outside home", func() error { return c.MkdirAll(ctx, "/node2/d") }, ftpfs.ErrPermission},
		{"size outside home", func() error {
			_, err := c.Size(ctx, "/node2/x.log")
			return err
		}, ftpfs.ErrPermission},
		{"size missing in home", func() error {
			_, err := c.Size(ctx, path.Join(tg.Dir, "nope.log"))
			return err
		}, ftpfs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, tt.want) || ftpfs.IsTransient(err) {
				t.Fatalf("got %v, want %v (not transient)", err, tt.want)
			}
			if err := c.Noop(ctx); err != nil {
				t.Fatalf("connection unusable after a refusal: %v", err)
			}
		})
	}
	assertSameFile(t, tg.local(p), []byte("abc"))
}

// TestClientPyftpdlibTLS runs the suite over explicit TLS (control and
// data connections protected), verifying pyftpdlib's certificate with a CA
// file, then checks pinning.
func TestClientPyftpdlibTLS(t *testing.T) {
	if err := exec.Command(testkit.DebianPython, "-c", "import OpenSSL").Run(); err != nil {
		t.Skipf("pyftpdlib's TLS needs python3-openssl (import OpenSSL: %v)", err)
	}
	certPEM, keyPEM, fp := selfSignedCert(t)
	dir := t.TempDir()
	combined := filepath.Join(dir, "server.pem")
	if err := os.WriteFile(combined, append(append([]byte{}, certPEM...), keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := startPyftpd(t, combined)
	tg.CAFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(tg.CAFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tg.WrongLogin.CAFile = tg.CAFile
	runClientSuite(t, tg)
	testTLSVerification(t, tg, fp)
}

// TestClientOwnServerTLS pins the fingerprint our server prints at start.
func TestClientOwnServerTLS(t *testing.T) {
	tg := startOwnServer(t, true)
	runClientSuite(t, tg)
	testTLSVerification(t, tg, tg.Fingerprint)
}

// testTLSVerification: the right pin or CA connects; a wrong pin, or no CA
// for a self-signed certificate, is refused for good (not transient).
func testTLSVerification(t *testing.T, tg *ftpTarget, fingerprint string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := tg.config()
	base.CAFile, base.Fingerprint = "", ""
	wrong := strings.Repeat("ab", 32)
	tests := []struct {
		name        string
		ca, pin     string
		wantRefused bool
	}{
		{name: "pinned", pin: fingerprint},
		{name: "pinned with colons", pin: colonHex(fingerprint)},
		{name: "wrong pin", pin: "sha256:" + wrong, wantRefused: true},
		{name: "wrong pin beats a good CA", ca: tg.CAFile, pin: "sha256:" + wrong, wantRefused: true},
		{name: "system roots", wantRefused: true},
	}
	if tg.CAFile != "" {
		tests = append(tests, struct {
			name        string
			ca, pin     string
			wantRefused bool
		}{name: "ca file", ca: tg.CAFile})
	}
	for _, tt := range tests {
		t.Run("TLS/"+tt.name, func(t *testing.T) {
			cfg := base
			cfg.CAFile, cfg.Fingerprint = tt.ca, tt.pin
			c, err := ftpfs.Dial(ctx, cfg)
			if !tt.wantRefused {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				// A data connection, so its TLS is exercised too.
				if _, err := c.List(ctx, tg.Dir); err != nil {
					t.Fatalf("list over tls: %v", err)
				}
				return
			}
			if err == nil {
				_ = c.Close()
				t.Fatal("dial succeeded with a certificate that should be refused")
			}
			if !errors.Is(err, ftpfs.ErrUnreachable) || ftpfs.IsTransient(err) {
				t.Fatalf("refused certificate: got %v, want ErrUnreachable, not transient", err)
			}
		})
	}
}

// colonHex turns "sha256:abcd..." into "sha256:AB:CD:...".
func colonHex(fp string) string {
	h := strings.TrimPrefix(fp, "sha256:")
	var parts []string
	for i := 0; i+1 < len(h); i += 2 {
		parts = append(parts, strings.ToUpper(h[i:i+2]))
	}
	return "sha256:" + strings.Join(parts, ":")
}

// selfSignedCert makes a CA-capable certificate for 127.0.0.1 and returns
// it and its key as PEM, and its fingerprint.
func selfSignedCert(t testing.TB) (certPEM, keyPEM []byte, fingerprint string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "ftpfs test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		"sha256:" + hex.EncodeToString(sum[:])
}

// startOwnServer runs our server in process with an agent account, which
// the suite uses confined to its home, /node1.
func startOwnServer(t testing.TB, withTLS bool) *ftpTarget {
	t.Helper()
	root := t.TempDir()
	state := t.TempDir()
	const agent = "node1"
	tg := &ftpTarget{Name: "ftpfs", User: agent, Password: "pw-" + rand.Text()[:12], Root: root, Dir: "/" + agent}
	var (
		mu   sync.Mutex
		srv  *ftpfs.Server
		addr = "127.0.0.1:0"
	)
	start := func(t testing.TB) {
		t.Helper()
		s, err := ftpfs.NewServer(ftpfs.ServerConfig{
			Root: root, StateDir: state, ListenAddr: addr, TLSSelfSigned: withTLS,
			LoginFailDelay: -1, BanAfter: -1,
		})
		if err != nil {
			t.Fatalf("new server: %v", err)
		}
		// The account exists before the port opens: a client redialing
		// a restarting server must never see it without.
		if err := s.AddUser(accounts.User{Name: agent}, tg.Password); err != nil {
			t.Fatalf("add user: %v", err)
		}
		if err := s.Start(); err != nil {
			t.Fatalf("start server: %v", err)
		}
		mu.Lock()
		srv, addr = s, s.Addr().String()
		mu.Unlock()
	}
	stop := func() {
		mu.Lock()
		s := srv
		srv = nil
		mu.Unlock()
		if s != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Stop(ctx)
		}
	}
	start(t)
	t.Cleanup(stop)
	scheme := "ftp"
	if withTLS {
		scheme = "ftps"
		tg.Fingerprint = srv.TLSFingerprint()
	}
	tg.URL = scheme + "://" + addr
	tg.Stop = stop
	tg.Start = func(t testing.TB) {
		t.Helper()
		port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
		testkit.WaitPortFree(t, port)
		start(t)
	}
	tg.WrongLogin = tg.config()
	tg.WrongLogin.Password = "wrong-" + tg.Password
	return tg
}

// runClientSuite is the one suite every third-party server passes.
func runClientSuite(t *testing.T, tg *ftpTarget) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial := func(t *testing.T) *ftpfs.Client {
		t.Helper()
		c, err := ftpfs.Dial(ctx, tg.config())
		if err != nil {
			t.Fatalf("dial %s: %v", tg.Name, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	t.Run("DialNoop", func(t *testing.T) {
		c := dial(t)
		if err := c.Noop(ctx); err != nil {
			t.Fatalf("noop: %v", err)
		}
	})

	t.Run("WrongLogin", func(t *testing.T) {
		c, err := ftpfs.Dial(ctx, tg.WrongLogin)
		if err == nil {
			_ = c.Close()
			t.Fatal("dial with a wrong login succeeded")
		}
		if !errors.Is(err, ftpfs.ErrClientLogin) {
			t.Fatalf("wrong login: got %v, want ErrClientLogin", err)
		}
		if ftpfs.IsTransient(err) {
			t.Errorf("a refused login must not count as transient: %v", err)
		}
		if pw := tg.WrongLogin.Password; strings.Contains(err.Error(), pw) {
			t.Errorf("error text contains the password: %v", err)
		}
	})

	t.Run("MkdirAll", func(t *testing.T) {
		c := dial(t)
		deep := path.Join(tg.Dir, "mk/a/b/c/d")
		if err := c.MkdirAll(ctx, deep); err != nil {
			t.Fatalf("mkdirall %s: %v", deep, err)
		}
		if fi, err := os.Stat(tg.local(deep)); err != nil || !fi.IsDir() {
			t.Fatalf("server did not create %s: %v", deep, err)
		}
		// Cached, and a second client finds it made by someone else.
		if err := c.MkdirAll(ctx, deep); err != nil {
			t.Fatalf("mkdirall again: %v", err)
		}
		other := dial(t)
		if err := other.MkdirAll(ctx, path.Join(deep, "e")); err != nil {
			t.Fatalf("mkdirall below a directory another client made: %v", err)
		}
		if err := other.MkdirAll(ctx, path.Join(tg.Dir, "mk/a/b")); err != nil {
			t.Fatalf("mkdirall of an existing directory: %v", err)
		}
	})

	t.Run("UploadNewGrowCut", func(t *testing.T) {
		c := dial(t)
		dir := path.Join(tg.Dir, "up/x")
		if err := c.MkdirAll(ctx, dir); err != nil {
			t.Fatal(err)
		}
		data := randomBytes(t, 3*ftpfs.UploadBufferSize+1234)
		p := path.Join(dir, "grow.log")

		// A new file.
		first := int64(100_000)
		res, err := c.Upload(ctx, p, bytes.NewReader(data), first)
		if err != nil {
			t.Fatalf("upload new: %v", err)
		}
		if res.Offset != 0 || res.Sent != first {
			t.Fatalf("upload new: got %+v, want offset 0, sent %d", res, first)
		}
		assertSameFile(t, tg.local(p), data[:first])

		// The source grew: only the growth is sent.
		size := int64(len(data))
		res, err = c.Upload(ctx, p, bytes.NewReader(data), size)
		if err != nil {
			t.Fatalf("upload grown: %v", err)
		}
		if res.Offset != first || res.Sent != size-first {
			t.Fatalf("upload grown: got %+v, want offset %d, sent %d", res, first, size-first)
		}
		assertSameFile(t, tg.local(p), data)

		// Unchanged: nothing is sent.
		res, err = c.Upload(ctx, p, bytes.NewReader(data), size)
		if err != nil || res.Sent != 0 || res.Offset != size {
			t.Fatalf("upload unchanged: got %+v, %v; want nothing sent", res, err)
		}

		// The source shrank: refused, nothing sent.
		res, err = c.Upload(ctx, p, bytes.NewReader(data), first)
		if !errors.Is(err, ftpfs.ErrRemoteLarger) || res.Sent != 0 {
			t.Fatalf("upload of a shorter source: got %+v, %v; want ErrRemoteLarger", res, err)
		}

		// Cut halfway by a failing reader, then resumed.
		cutPath := path.Join(dir, "cut.log")
		cut := int64(len(data) / 2)
		res1, err := c.Upload(ctx, cutPath, &cutReaderAt{data: data, cut: cut}, size)
		if err == nil {
			t.Fatal("upload from a reader that fails halfway succeeded")
		}
		if !errors.Is(err, errCut) {
			t.Errorf("cut upload: error does not wrap the reader's error: %v", err)
		}
		if ftpfs.IsTransient(err) {
			t.Errorf("a failing source must not count as transient: %v", err)
		}
		// The connection itself is fine after a local read error.
		if err := c.Noop(ctx); err != nil {
			t.Fatalf("noop after a cut upload: %v", err)
		}
		res2, err := c.Upload(ctx, cutPath, bytes.NewReader(data), size)
		if err != nil {
			t.Fatalf("resume after cut: %v", err)
		}
		if res2.Offset == 0 || res2.Offset > cut {
			t.Errorf("resume after cut: offset %d, want in (0, %d]", res2.Offset, cut)
		}
		if res2.Offset+res2.Sent != size {
			t.Errorf("resume after cut: offset %d + sent %d != size %d", res2.Offset, res2.Sent, size)
		}
		if resent := res1.Sent + res2.Sent - size; resent < 0 || resent > ftpfs.UploadBufferSize {
			t.Errorf("bytes sent again after the cut: %d, want 0..%d", resent, ftpfs.UploadBufferSize)
		}
		assertSameFile(t, tg.local(cutPath), data)

		// An empty source makes an empty file.
		emptyPath := path.Join(dir, "empty.log")
		if res, err := c.Upload(ctx, emptyPath, bytes.NewReader(nil), 0); err != nil || res.Sent != 0 {
			t.Fatalf("upload empty: %+v, %v", res, err)
		}
		assertSameFile(t, tg.local(emptyPath), nil)
	})

	t.Run("SizeMissing", func(t *testing.T) {
		c := dial(t)
		_, err := c.Size(ctx, path.Join(tg.Dir, "no/such/file.log"))
		if !errors.Is(err, ftpfs.ErrNotFound) {
			t.Fatalf("size of a missing file: got %v, want ErrNotFound", err)
		}
		// A reply error leaves the connection usable.
		if err := c.Noop(ctx); err != nil {
			t.Fatalf("noop after 550: %v", err)
		}
	})

	t.Run("RetrieveList", func(t *testing.T) {
		c := dial(t)
		dir := path.Join(tg.Dir, "rl")
		if err := c.MkdirAll(ctx, path.Join(dir, "sub")); err != nil {
			t.Fatal(err)
		}
		data := randomBytes(t, 70_000)
		p := path.Join(dir, "f.log")
		if _, err := c.Store(ctx, p, bytes.NewReader(data), 0); err != nil {
			t.Fatalf("store: %v", err)
		}
		for _, off := range []int64{0, 1, 12345, int64(len(data))} {
			var buf bytes.Buffer
			n, err := c.Retrieve(ctx, p, &buf, off)
			if err != nil {
				t.Fatalf("retrieve from %d: %v", off, err)
			}
			if n != int64(len(data))-off || !bytes.Equal(buf.Bytes(), data[off:]) {
				t.Fatalf("retrieve from %d: got %d bytes, want data[%d:] (%d bytes)", off, n, off, len(data)-int(off))
			}
		}
		if _, err := c.Retrieve(ctx, path.Join(dir, "missing"), io.Discard, 0); !errors.Is(err, ftpfs.ErrNotFound) {
			t.Errorf("retrieve missing: got %v, want ErrNotFound", err)
		}
		entries, err := c.List(ctx, dir)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		got := map[string]ftpfs.Entry{}
		for _, e := range entries {
			got[e.Name] = e
		}
		if e, ok := got["f.log"]; !ok || e.Dir || e.Size != int64(len(data)) {
			t.Errorf("list: f.log = %+v (present %v), want a file of %d bytes", e, ok, len(data))
		}
		if e, ok := got["sub"]; !ok || !e.Dir {
			t.Errorf("list: sub = %+v (present %v), want a directory", e, ok)
		}
		if len(got) != 2 {
			t.Errorf("list: got %d entries %v, want 2", len(got), entries)
		}
	})

	t.Run("PoolConcurrent", func(t *testing.T) {
		pool := ftpfs.NewPool(tg.config(), 4)
		defer pool.Close()
		dir := path.Join(tg.Dir, "pool")
		const files = 50
		contents := make([][]byte, files)
		for i := range contents {
			contents[i] = randomBytes(t, 1000+i*997)
		}
		jobs := make(chan int)
		errs := make(chan error, files)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					errs <- poolUpload(ctx, pool, path.Join(dir, fmt.Sprintf("d%d", i%5)), fmt.Sprintf("f%02d.log", i), contents[i])
				}
			}()
		}
		for i := range files {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		for i := range files {
			assertSameFile(t, tg.local(path.Join(dir, fmt.Sprintf("d%d", i%5), fmt.Sprintf("f%02d.log", i))), contents[i])
		}
	})

	t.Run("PoolReconnect", func(t *testing.T) {
		pool := ftpfs.NewPool(tg.config(), 1)
		pool.MinBackoff, pool.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
		defer pool.Close()
		dir := path.Join(tg.Dir, "reconnect")
		data := randomBytes(t, 50_000)
		if err := poolUpload(ctx, pool, dir, "before.log", data); err != nil {
			t.Fatal(err)
		}

		// The server goes away while the pool holds an idle connection,
		// and comes back while Get is retrying.
		tg.Stop()
		got := make(chan error, 1)
		go func() {
			gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			got <- poolUpload(gctx, pool, dir, "after.log", data)
		}()
		time.Sleep(300 * time.Millisecond) // let a few dials fail first
		tg.Start(t)
		if err := <-got; err != nil {
			t.Fatalf("upload after the server restarted: %v", err)
		}
		assertSameFile(t, tg.local(path.Join(dir, "after.log")), data)
	})
}

// poolUpload is what an agent worker does: get a client, upload, put it
// back with the error; transient errors are retried with a fresh client.
func poolUpload(ctx context.Context, pool *ftpfs.Pool, dir, name string, data []byte) error {
	for attempt := 1; ; attempt++ {
		c, err := pool.Get(ctx)
		if err != nil {
			return err
		}
		err = c.MkdirAll(ctx, dir)
		if err == nil {
			_, err = c.Upload(ctx, path.Join(dir, name), bytes.NewReader(data), int64(len(data)))
		}
		pool.Put(c, err)
		if err == nil || !ftpfs.IsTransient(err) || attempt == 5 {
			return err
		}
	}
}

var errCut = errors.New("source cut")

// cutReaderAt serves data up to cut, then fails: an agent killed or a disk
// failing halfway through a file.
type cutReaderAt struct {
	data []byte
	cut  int64
}

func (r *cutReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.cut {
		return 0, errCut
	}
	n := copy(p, r.data[off:r.cut])
	if n < len(p) {
		return n, errCut
	}
	return n, nil
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// assertSameFile compares the file the server wrote with want by SHA-256.
func assertSameFile(t testing.TB, local string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(local)
	if err != nil {
		t.Fatalf("read what the server stored: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("%s: stored %d bytes differ from the source's %d (sha256)", local, len(got), len(want))
	}
}
