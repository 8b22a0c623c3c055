package ftpfs_test

import (
	"context"
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
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/internal/testkit"
)

// handshakeFingerprint is the fingerprint of the certificate a TLS
// server built from conf shows to a new connection.
func handshakeFingerprint(t *testing.T, conf *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return ftpfs.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
}

// TestCertSourceRenewsSelfSigned: a self-signed certificate within 30 days
// of its end is renewed by Check, not before; a server configuration
// made before the renewal hands the new certificate to the next
// connection; the old pair is kept aside.
func TestCertSourceRenewsSelfSigned(t *testing.T) {
	dir := t.TempDir()
	clock := testkit.NewClock(time.Now())
	src, err := ftpfs.NewSelfSignedCertSource(dir, []string{"localhost"}, clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	conf := src.TLSConfig()
	first := src.Fingerprint()
	if got := handshakeFingerprint(t, conf); got != first {
		t.Fatalf("handshake shows %s, source says %s", got, first)
	}
	clock.Add(300 * 24 * time.Hour) // two months before the end: kept
	if changed, err := src.Check(); changed || err != nil {
		t.Fatalf("Check 65 days before the end: changed %v, %v", changed, err)
	}
	clock.Add(40 * 24 * time.Hour) // 25 days before the end: renewed
	if changed, err := src.Check(); !changed || err != nil {
		t.Fatalf("Check 25 days before the end: changed %v, %v", changed, err)
	}
	second := src.Fingerprint()
	if second == first {
		t.Fatal("renewed, same fingerprint")
	}
	if got := handshakeFingerprint(t, conf); got != second {
		t.Errorf("after the renewal a new connection shows %s, want the new %s", got, second)
	}
	if !src.NotAfter().After(clock.Now().Add(300 * 24 * time.Hour)) {
		t.Errorf("new certificate ends %s", src.NotAfter())
	}
	kept, _ := filepath.Glob(filepath.Join(dir, ftpfs.SelfSignedCertFile+".expired-*"))
	if len(kept) != 1 {
		t.Errorf("old certificate kept as %v, want one file", kept)
	}
	// A restart loads the renewed pair.
	again, err := ftpfs.NewSelfSignedCertSource(dir, []string{"localhost"}, clock.Now, nil)
	if err != nil || again.Fingerprint() != second {
		t.Errorf("after a restart: %v %v, want %s", again.Fingerprint(), err, second)
	}
}

// TestCertSourceRereadsFiles: a certificate given as files is read again
// when they are replaced; a broken replacement keeps the old one.
func TestCertSourceRereadsFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writeCertFiles(t, certFile, keyFile)
	src, err := ftpfs.NewFileCertSource(certFile, keyFile, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := src.Fingerprint()
	if changed, err := src.Check(); changed || err != nil {
		t.Fatalf("Check of unchanged files: %v %v", changed, err)
	}
	if err := os.WriteFile(certFile, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := src.Check(); changed || err == nil || src.Fingerprint() != first {
		t.Fatalf("Check of a broken file: changed %v, err %v", changed, err)
	}
	writeCertFiles(t, certFile, keyFile)
	if changed, err := src.Check(); !changed || err != nil || src.Fingerprint() == first {
		t.Fatalf("Check of new files: changed %v, err %v", changed, err)
	}
	if got := handshakeFingerprint(t, src.TLSConfig()); got != src.Fingerprint() {
		t.Errorf("handshake shows %s, want %s", got, src.Fingerprint())
	}
}

// TestCertSourceRun: Run checks on its own, every interval.
func TestCertSourceRun(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	src, err := ftpfs.NewSelfSignedCertSource(t.TempDir(), []string{"127.0.0.1"}, clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := src.Fingerprint()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	clock.Add(360 * 24 * time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for src.Fingerprint() == first {
		if time.Now().After(deadline) {
			t.Fatal("Run did not renew within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeCertFiles writes a new self-signed pair for localhost.
func writeCertFiles(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Replaced by rename, as certbot and editors do.
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{keyFile, "PRIVATE KEY", kd}, {certFile, "CERTIFICATE", der}} {
		if err := os.WriteFile(f.path+".new", pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.path+".new", f.path); err != nil {
			t.Fatal(err)
		}
	}
}
