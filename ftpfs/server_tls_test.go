package ftpfs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
)

// readCert parses the self-signed certificate kept in state.
func readCert(t *testing.T, state string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, ftpfs.SelfSignedCertFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM block", ftpfs.SelfSignedCertFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func certNames(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out
}

// TestSelfSignedCertificateNames: the self-signed certificate names the
// listen address and the public host, or what TLSHosts says, never the
// machine's host name (shown to anyone who connects), and is valid for a
// year. (Before: localhost, loopback, the host name and 10 years.)
func TestSelfSignedCertificateNames(t *testing.T) {
	hostname, _ := os.Hostname()
	for _, tc := range []struct {
		name           string
		listen, public string
		hosts          []string
		want           []string
	}{
		{"loopback", "127.0.0.1:0", "", nil, []string{"127.0.0.1"}},
		{"wildcard", "0.0.0.0:0", "", nil, []string{"127.0.0.1", "::1", "localhost"}},
		{"wildcard and public host", "0.0.0.0:0", "192.0.2.10", nil, []string{"192.0.2.10"}},
		{"address and public host", "127.0.0.1:0", "192.0.2.10", nil, []string{"127.0.0.1", "192.0.2.10"}},
		{"configured", "127.0.0.1:0", "192.0.2.10", []string{"historian.example.org", "2001:db8::5", "198.51.100.7"},
			[]string{"198.51.100.7", "2001:db8::5", "historian.example.org"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			before := time.Now()
			srv, err := ftpfs.NewServer(ftpfs.ServerConfig{Root: t.TempDir(), StateDir: state, ListenAddr: tc.listen,
				PublicHost: tc.public, TLSSelfSigned: true, TLSHosts: tc.hosts})
			if err != nil {
				t.Fatal(err)
			}
			_ = srv.Stop(t.Context())
			c := readCert(t, state)
			if got := certNames(c); !slices.Equal(got, tc.want) {
				t.Errorf("names %v, want %v", got, tc.want)
			}
			if hostname != "" && hostname != "localhost" && slices.Contains(certNames(c), hostname) {
				t.Errorf("the certificate names the machine %q", hostname)
			}
			if lo, hi := before.AddDate(1, 0, -1), time.Now().AddDate(1, 0, 1); c.NotAfter.Before(lo) || c.NotAfter.After(hi) {
				t.Errorf("NotAfter %v, want a year from now", c.NotAfter)
			}
		})
	}
	for _, bad := range []string{"", "a b", "evil\n.example", "-x..y", "*.example.org"} {
		_, err := ftpfs.NewServer(ftpfs.ServerConfig{Root: t.TempDir(), StateDir: t.TempDir(), TLSSelfSigned: true, TLSHosts: []string{bad}})
		if err == nil || !strings.Contains(err.Error(), "TLSHosts") {
			t.Errorf("TLSHosts %q: %v, want an error naming TLSHosts", bad, err)
		}
	}
}

// writeCert writes a self-signed pair into state that ends at notAfter.
func writeCert(t *testing.T, state string, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "old"},
		NotBefore: notAfter.AddDate(-10, 0, 0), NotAfter: notAfter, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, blk := range map[string]*pem.Block{
		ftpfs.SelfSignedCertFile: {Type: "CERTIFICATE", Bytes: der},
		ftpfs.SelfSignedKeyFile:  {Type: "PRIVATE KEY", Bytes: kder},
	} {
		if err := os.WriteFile(filepath.Join(state, name), pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSelfSignedCertificateRenewal: a kept certificate with more than 30
// days left is used as it is (agents pin it); one within 30 days of its
// end, or past it, is replaced at start by a new one valid for a year, and
// the old pair is kept aside, byte for byte.
func TestSelfSignedCertificateRenewal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		left    time.Duration
		renewed bool
	}{
		{"60 days left", 60 * 24 * time.Hour, false},
		{"29 days left", 29 * 24 * time.Hour, true},
		{"expired", -24 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			writeCert(t, state, time.Now().Add(tc.left).Truncate(time.Second))
			old := readCert(t, state)
			oldPEM, _ := os.ReadFile(filepath.Join(state, ftpfs.SelfSignedCertFile))
			oldKey, _ := os.ReadFile(filepath.Join(state, ftpfs.SelfSignedKeyFile))
			srv, err := ftpfs.NewServer(ftpfs.ServerConfig{Root: t.TempDir(), StateDir: state, ListenAddr: "127.0.0.1:0", TLSSelfSigned: true})
			if err != nil {
				t.Fatal(err)
			}
			_ = srv.Stop(t.Context())
			c := readCert(t, state)
			if !tc.renewed {
				if !c.Equal(old) || srv.TLSFingerprint() != ftpfs.Fingerprint(old.Raw) {
					t.Fatalf("the certificate was replaced with %v left", tc.left)
				}
				return
			}
			if c.Equal(old) || srv.TLSFingerprint() != ftpfs.Fingerprint(c.Raw) {
				t.Fatalf("not renewed with %v left", tc.left)
			}
			if c.NotAfter.Before(time.Now().AddDate(1, 0, -1)) {
				t.Errorf("renewed certificate ends %v, want a year from now", c.NotAfter)
			}
			for name, want := range map[string][]byte{ftpfs.SelfSignedCertFile: oldPEM, ftpfs.SelfSignedKeyFile: oldKey} {
				kept, _ := filepath.Glob(filepath.Join(state, name+".expired-*"))
				if len(kept) != 1 {
					t.Fatalf("old %s kept as %v, want one file", name, kept)
				}
				if b, err := os.ReadFile(kept[0]); err != nil || string(b) != string(want) {
					t.Errorf("%s: the old %s is not kept as it was: %v", kept[0], name, err)
				}
			}
		})
	}
}

// TestServerTLSSuites: AUTH TLS accepts TLS 1.3 and TLS 1.2 with AEAD
// suites, and refuses a client that offers only CBC suites (the two
// ECDHE-*-AES-CBC-SHA suites Go offers by default) or only TLS 1.1.
func TestServerTLSSuites(t *testing.T) {
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) { cfg.TLSSelfSigned = true })
	for _, tc := range []struct {
		name string
		conf *tls.Config
		ok   bool
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2 AES-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.2 ChaCha20", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, true},
		{"TLS 1.2 AES-128-CBC-SHA", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 AES-256-CBC-SHA", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}}, false},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.raw()
			r.expect(234, "AUTH TLS")
			tc.conf.InsecureSkipVerify = true // the handshake's outcome is what is tested
			tc2 := tls.Client(r.conn, tc.conf)
			err := tc2.HandshakeContext(t.Context())
			if tc.ok && err != nil {
				t.Fatalf("handshake refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("handshake accepted: version %x suite %s", tc2.ConnectionState().Version, tls.CipherSuiteName(tc2.ConnectionState().CipherSuite))
			}
		})
	}
}
