package ftpfs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTLSCheckEvery is how often a running server checks its
// certificate (ServerConfig.TLSCheckEvery): renewal of a self-signed one,
// new files for one given as files.
const DefaultTLSCheckEvery = time.Hour

// CertSource is a server certificate that stays current while the servers
// using it run: a self-signed certificate is renewed within 30 days of its
// end, one given as files is read again when the files change. Servers
// hand it out through tls.Config.GetCertificate (see TLSConfig), so a new
// certificate reaches every new connection at once, without a restart; a
// connection keeps the certificate it began with. The FTP server and the
// web viewer share one, so both always show the same certificate (and
// fingerprint). Its methods are safe for concurrent use.
type CertSource struct {
	// reload returns a new certificate when the current one needs
	// replacing at now, or nil; the current one is passed in.
	reload func(cur *loadedCert, now time.Time) (*loadedCert, error)
	now    func() time.Time
	log    *slog.Logger

	cur     atomic.Pointer[loadedCert]
	checkMu sync.Mutex // one Check at a time: a renewal renames files
}

// loadedCert is one certificate as the source hands it out.
type loadedCert struct {
	cert     *tls.Certificate
	fp       string
	notAfter time.Time
	stat     []os.FileInfo // of the files it was read from (file sources)
}

func newLoadedCert(cert tls.Certificate, stat []os.FileInfo) (*loadedCert, error) {
	if len(cert.Certificate) == 0 {
		return nil, fmt.Errorf("TLS certificate file holds no certificate")
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
		cert.Leaf = leaf
	}
	return &loadedCert{cert: &cert, fp: Fingerprint(cert.Certificate[0]), notAfter: leaf.NotAfter, stat: stat}, nil
}

// NewSelfSignedCertSource loads the self-signed certificate kept in dir
// (SelfSignedCertFile, SelfSignedKeyFile), making it for hosts if it is
// missing and renewing it if it ends within 30 days of now(); Check
// renews it later on the same rule, keeping the old pair aside as
// NAME.expired-<UTC time>. now nil means time.Now.
func NewSelfSignedCertSource(dir string, hosts []string, now func() time.Time, log *slog.Logger) (*CertSource, error) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	load := func(now time.Time) (*loadedCert, error) {
		cert, err := selfSignedCert(dir, hosts, now, log)
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate in %s: %w", dir, err)
		}
		return newLoadedCert(cert, nil)
	}
	c := &CertSource{now: now, log: log}
	c.reload = func(cur *loadedCert, now time.Time) (*loadedCert, error) {
		if now.Add(selfSignedRenewBefore).Before(cur.notAfter) {
			return nil, nil
		}
		return load(now)
	}
	first, err := load(now())
	if err != nil {
		return nil, err
	}
	c.cur.Store(first)
	return c, nil
}

// NewFileCertSource loads a certificate and its key from PEM files; Check
// reads them again when either file changes (a renewal by certbot or
// the like), and keeps the certificate it has while the new pair does
// not load (half written, or not matching yet). now nil means time.Now.
func NewFileCertSource(certFile, keyFile string, now func() time.Time, log *slog.Logger) (*CertSource, error) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	load := func() (*loadedCert, error) {
		stat := statFiles(certFile, keyFile)
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate %s / key %s: %w", certFile, keyFile, err)
		}
		lc, err := newLoadedCert(cert, stat)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate %s: %w", certFile, err)
		}
		return lc, nil
	}
	c := &CertSource{now: now, log: log}
	c.reload = func(cur *loadedCert, _ time.Time) (*loadedCert, error) {
		if sameFiles(statFiles(certFile, keyFile), cur.stat) {
			return nil, nil
		}
		return load()
	}
	first, err := load()
	if err != nil {
		return nil, err
	}
	c.cur.Store(first)
	return c, nil
}

// statFiles stats files; a missing one is nil.
func statFiles(files ...string) []os.FileInfo {
	out := make([]os.FileInfo, len(files))
	for i, f := range files {
		if st, err := os.Stat(f); err == nil {
			out[i] = st
		}
	}
	return out
}

// sameFiles reports whether two statFiles of the same files show the
// same content as far as a stat tells: the same file (a rename over it
// makes a new one), size and modification time.
func sameFiles(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		switch {
		case a[i] == nil || b[i] == nil:
			if a[i] != b[i] {
				return false
			}
		case !os.SameFile(a[i], b[i]) || a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()):
			return false
		}
	}
	return true
}

// GetCertificate returns the current certificate; it is meant for
// tls.Config.GetCertificate.
func (c *CertSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load().cert, nil
}

// Fingerprint is the current certificate's "sha256:<hex>" (see
// Fingerprint), the value clients pin.
func (c *CertSource) Fingerprint() string { return c.cur.Load().fp }

// NotAfter is the end of the current certificate's validity.
func (c *CertSource) NotAfter() time.Time { return c.cur.Load().notAfter }

// TLSConfig returns a new server configuration that hands out the
// source's current certificate: TLS 1.2 or later, AEAD suites only.
func (c *CertSource) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: c.GetCertificate,
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   aeadSuites,
	}
}

// Check renews or re-reads the certificate if it is due, and reports
// whether it changed. On an error the current certificate stays.
func (c *CertSource) Check() (changed bool, err error) {
	c.checkMu.Lock()
	defer c.checkMu.Unlock()
	cur := c.cur.Load()
	next, err := c.reload(cur, c.now())
	if err != nil || next == nil {
		return false, err
	}
	c.cur.Store(next)
	c.log.Warn("TLS certificate replaced while running; clients that pin the fingerprint need the new one",
		"old_fingerprint", cur.fp, "fingerprint", next.fp, "not_after", next.notAfter.UTC().Format(time.RFC3339))
	return true, nil
}

// Run calls Check every interval (DefaultTLSCheckEvery if not positive)
// until ctx ends; errors are logged and the current certificate kept.
func (c *CertSource) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultTLSCheckEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.Check(); err != nil {
			if err.Error() != lastErr {
				c.log.Error("TLS certificate not renewed; keeping the current one", "err", err,
					"not_after", c.NotAfter().UTC().Format(time.RFC3339))
			}
			lastErr = err.Error()
			continue
		}
		lastErr = ""
	}
}
