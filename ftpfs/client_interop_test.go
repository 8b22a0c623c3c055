package ftpfs_test

// Interoperability of our client with third-party servers: pyftpdlib and
// vsftpd (Debian packages), each started by the test on a loopback port in
// a temporary directory. A test skips, saying why, when its server is not
// installed; CI installs both (.ci/run).

import (
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
	"math/big"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/internal/testkit"
)

// clientTimeouts are the suite's timeouts: short, since it checks failures.
func clientTimeouts(cfg ftpfs.ClientConfig) ftpfs.ClientConfig {
	cfg.DialTimeout, cfg.IOTimeout = 5*time.Second, 10*time.Second
	return cfg
}

// localUnder maps FTP paths to files under root, where the server keeps them.
func localUnder(root string) func(string) string {
	return func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
}

// startPyftpd starts pyftpdlib serving a temporary directory; with cert it
// speaks explicit TLS only.
func startPyftpd(t testing.TB, cert string) ftptest.Target {
	t.Helper()
	pass := "pw-" + rand.Text()[:12]
	srv := testkit.StartPyftpd(t, testkit.PyftpdConfig{User: "agent", Password: pass, CertFile: cert,
		AuthFailedTimeout: 100 * time.Millisecond})
	tg := ftptest.Target{Name: "pyftpdlib", Config: clientTimeouts(ftpfs.ClientConfig{Server: srv.URL, User: "agent", Password: pass}),
		Local: localUnder(srv.Root), Dir: "/", Stop: srv.Stop, Start: srv.Start}
	tg.WrongLogin = tg.Config
	tg.WrongLogin.Password = "wrong-" + pass
	return tg
}

// startVsftpd starts vsftpd (see testkit.StartVsftpd) with anonymous
// access, uploads allowed in a temporary directory.
func startVsftpd(t testing.TB) ftptest.Target {
	t.Helper()
	srv := testkit.StartVsftpd(t)
	tg := ftptest.Target{
		Name:   "vsftpd",
		Config: clientTimeouts(ftpfs.ClientConfig{Server: "ftp://" + srv.Addr, User: "anonymous", Password: "agent@example.org"}),
		// Without a chroot vsftpd's paths are the real ones.
		Local: localUnder("/"), Dir: filepath.ToSlash(srv.Pub), Stop: srv.Stop, Start: srv.Start,
	}
	// vsftpd is configured anonymous-only: any other user is refused.
	tg.WrongLogin = tg.Config
	tg.WrongLogin.User = "no-such-user"
	return tg
}

func TestClientPyftpdlib(t *testing.T) { ftptest.RunClientSuite(t, startPyftpd(t, "")) }
func TestClientVsftpd(t *testing.T)    { ftptest.RunClientSuite(t, startVsftpd(t)) }
func TestClientOwnServer(t *testing.T) { ftptest.RunClientSuite(t, startOwnServer(t, false)) }

// TestClientOwnServerRefusals: what an agent account meets at the
// boundaries of our archive arrives as the package's sentinels.
func TestClientOwnServerRefusals(t *testing.T) {
	tg := startOwnServer(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := ftpfs.Dial(ctx, tg.Config)
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
	ftptest.AssertSameFile(t, tg.Local(p), []byte("abc"))
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
	tg.Config.CAFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(tg.Config.CAFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tg.WrongLogin.CAFile = tg.Config.CAFile
	ftptest.RunClientSuite(t, tg)
	testTLSVerification(t, tg, fp)
}

// TestClientOwnServerTLS pins the fingerprint our server prints at start.
func TestClientOwnServerTLS(t *testing.T) {
	tg := startOwnServer(t, true)
	ftptest.RunClientSuite(t, tg)
	testTLSVerification(t, tg, tg.Config.Fingerprint)
}

// testTLSVerification: the right pin or CA connects; a wrong pin, or no CA
// for a self-signed certificate, is refused for good (not transient).
func testTLSVerification(t *testing.T, tg ftptest.Target, fingerprint string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := tg.Config
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
		{name: "wrong pin beats a good CA", ca: tg.Config.CAFile, pin: "sha256:" + wrong, wantRefused: true},
		{name: "system roots", wantRefused: true},
	}
	if tg.Config.CAFile != "" {
		tests = append(tests, struct {
			name        string
			ca, pin     string
			wantRefused bool
		}{name: "ca file", ca: tg.Config.CAFile})
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
			if !errors.Is(err, ftpfs.ErrCertificate) || ftpfs.IsTransient(err) {
				t.Fatalf("refused certificate: got %v, want ErrCertificate, not transient", err)
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
func startOwnServer(t testing.TB, withTLS bool) ftptest.Target {
	t.Helper()
	return ftptest.NewServer(t, "", ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) { cfg.TLSSelfSigned = withTLS })).Target()
}
