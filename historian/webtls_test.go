package historian

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/internal/testkit"
)

// httpsFingerprint is the fingerprint of the certificate the web viewer
// at addr shows a new connection.
func httpsFingerprint(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return ftpfs.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
}

// ftpsFingerprint is the fingerprint of the certificate the FTP server at
// addr shows after AUTH TLS on a new control connection.
func ftpsFingerprint(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := textproto.NewReader(bufio.NewReader(c))
	if _, _, err := r.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("AUTH TLS\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ReadResponse(234); err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return ftpfs.Fingerprint(tc.ConnectionState().PeerCertificates[0].Raw)
}

// TestWebHTTPSSelfSignedRenewedWhileRunning: with TLSSelfSigned the web
// viewer speaks HTTPS with the FTP server's certificate (one
// fingerprint); when the clock reaches the last 30 days of the
// certificate, the running historian makes a new one, and new HTTPS and
// FTPS connections both get it, without a restart. (Before: plain HTTP,
// and the certificate was renewed only at start.)
func TestWebHTTPSSelfSignedRenewedWhileRunning(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	cfg := testConfig(t, t.TempDir())
	cfg.TLSSelfSigned = true
	cfg.Now = clock.Now
	cfg.TLSCheckEvery = 20 * time.Millisecond
	r := start(t, cfg)
	if !strings.HasPrefix(r.h.HTTPURL(), "https://") {
		t.Fatalf("web viewer at %s, want https", r.h.HTTPURL())
	}
	web, ftp := r.h.HTTPAddr().String(), r.h.FTPAddr().String()
	first := httpsFingerprint(t, web)
	if got := ftpsFingerprint(t, ftp); got != first {
		t.Fatalf("FTPS shows %s, HTTPS %s: want one certificate", got, first)
	}
	if got := r.h.ftp.Load().TLSFingerprint(); got != first {
		t.Fatalf("the FTP server's fingerprint %s, HTTPS shows %s", got, first)
	}

	clock.Add(340 * 24 * time.Hour) // 25 days before the end of a year
	deadline := time.Now().Add(20 * time.Second)
	second := first
	for second == first {
		if time.Now().After(deadline) {
			t.Fatal("the certificate was not renewed within 20 s")
		}
		time.Sleep(20 * time.Millisecond)
		second = httpsFingerprint(t, web)
	}
	if got := ftpsFingerprint(t, ftp); got != second {
		t.Errorf("after the renewal FTPS shows %s, HTTPS %s", got, second)
	}
	if got := r.h.ftp.Load().TLSFingerprint(); got != second {
		t.Errorf("after the renewal the FTP server reports %s, HTTPS shows %s", got, second)
	}
	if kept, _ := filepath.Glob(filepath.Join(cfg.State, ftpfs.SelfSignedCertFile+".expired-*")); len(kept) != 1 {
		t.Errorf("old certificate kept as %v, want one file", kept)
	}
	// The same running viewer still logs in over the new certificate.
	req, _ := http.NewRequest("GET", r.h.HTTPURL()+"/api/v1/agents", nil)
	req.SetBasicAuth("node1", testPassword)
	resp, err := webClient("127.0.0.1").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("login after the renewal: %d", resp.StatusCode)
	}
}

// TestWebHTTPSFromFiles: HTTPTLSCertFile/HTTPTLSKeyFile give the web
// viewer its own certificate, also off loopback, while FTP stays without
// TLS; a plain-HTTP request to it is not served.
func TestWebHTTPSFromFiles(t *testing.T) {
	certDir := t.TempDir()
	src, err := ftpfs.NewSelfSignedCertSource(certDir, []string{"localhost"}, nil, nil) // makes the files
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, t.TempDir())
	cfg.HTTPAddr = "0.0.0.0:0"
	cfg.HTTPTLSCertFile = filepath.Join(certDir, ftpfs.SelfSignedCertFile)
	cfg.HTTPTLSKeyFile = filepath.Join(certDir, ftpfs.SelfSignedKeyFile)
	r := start(t, cfg)
	_, port, _ := net.SplitHostPort(r.h.HTTPAddr().String())
	web := net.JoinHostPort("127.0.0.1", port)
	if got := httpsFingerprint(t, web); got != src.Fingerprint() {
		t.Errorf("HTTPS shows %s, want the files' %s", got, src.Fingerprint())
	}
	if fp := r.h.ftp.Load().TLSFingerprint(); fp != "" {
		t.Errorf("FTP has TLS (%s) without being asked", fp)
	}
	if st := webGet(t, webClient("127.0.0.1"), web, testPassword, "").status; st != 200 {
		t.Errorf("HTTPS login: %d", st)
	}
	resp, err := http.Get("http://" + web + "/api/v1/agents")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the HTTPS viewer: %d", resp.StatusCode)
		}
	}
}

// TestWebConfigChecks: a viewer off loopback without a certificate, and
// no login off loopback, are refused by New with errors naming the
// field; on loopback both are fine.
func TestWebConfigChecks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"off loopback, plain HTTP", func(c *Config) { c.HTTPAddr = "0.0.0.0:8080" }, "HTTPAddr"},
		{"off loopback, plain HTTP, FTP address", func(c *Config) { c.HTTPAddr = "192.0.2.2:8080" }, "HTTPAddr"},
		{"no login off loopback", func(c *Config) { c.HTTPAddr = "0.0.0.0:8443"; c.TLSSelfSigned = true; c.HTTPNoLogin = true }, "HTTPNoLogin"},
		{"cert without key", func(c *Config) { c.HTTPTLSCertFile = "c.pem" }, "HTTPTLSCertFile"},
		{"no login on loopback", func(c *Config) { c.HTTPNoLogin = true }, ""},
		{"off loopback, self-signed", func(c *Config) { c.HTTPAddr = "0.0.0.0:8443"; c.TLSSelfSigned = true }, ""},
		{"off loopback, FTP certificate files", func(c *Config) { c.HTTPAddr = "[::]:8443"; c.TLSCertFile, c.TLSKeyFile = "c", "k" }, ""},
	} {
		cfg := Config{Archive: LocalArchive("a"), State: "s", HTTPAddr: "127.0.0.1:8080"}
		tc.mod(&cfg)
		_, err := New(cfg)
		var ce *ConfigError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field):
			t.Errorf("%s: %v, want a ConfigError on %s", tc.name, err, tc.field)
		}
	}
}
