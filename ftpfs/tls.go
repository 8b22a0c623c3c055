package ftpfs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Names of the self-signed certificate's files in the state directory.
const (
	SelfSignedCertFile = "tls-cert.pem"
	SelfSignedKeyFile  = "tls-key.pem"
)

// The self-signed certificate is valid for a year and renewed within 30
// days of its end, at start or while the server runs (CertSource.Check):
// a key that leaks is not good for ten years, and agents that pin the
// fingerprint learn of a new one once a year, a month before the old one
// would have failed them.
const (
	selfSignedValidity    = 1 // years
	selfSignedRenewBefore = 30 * 24 * time.Hour
)

// aeadSuites are the TLS 1.2 cipher suites the server accepts: ECDHE key
// exchange and AEAD ciphers only. Go's defaults also offer the two
// ECDHE-*-AES-CBC-SHA suites (MAC-then-encrypt, Lucky13-style padding
// oracles), which scanners flag; every client we know of has GCM or
// ChaCha20. TLS 1.3's suites are all AEAD and not configurable.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// loadTLS returns the server's TLS configuration and its certificate
// source, or nils when TLS is not configured. own reports whether the
// server made the source (and so keeps it current while it runs).
func loadTLS(cfg ServerConfig, log *slog.Logger) (conf *tls.Config, src *CertSource, own bool, err error) {
	switch {
	case cfg.TLSCertSource != nil:
		src = cfg.TLSCertSource
	case cfg.TLSCertFile != "":
		src, err = NewFileCertSource(cfg.TLSCertFile, cfg.TLSKeyFile, nil, log)
		if err != nil {
			return nil, nil, false, fmt.Errorf("ftpfs: ServerConfig.TLSCertFile %q / TLSKeyFile %q: %w", cfg.TLSCertFile, cfg.TLSKeyFile, err)
		}
		own = true
	case cfg.TLSSelfSigned:
		src, err = NewSelfSignedCertSource(cfg.StateDir, cfg.TLSHosts, nil, log)
		if err != nil {
			return nil, nil, false, fmt.Errorf("ftpfs: %w", err)
		}
		own = true
	default:
		return nil, nil, false, nil
	}
	return src.TLSConfig(), src, own, nil
}

// Fingerprint formats the SHA-256 of a DER certificate as "sha256:<hex>",
// the form Server.TLSFingerprint returns and clients pin.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DefaultTLSHosts are the names a self-signed certificate is made for
// when ServerConfig.TLSHosts is empty: the host of the listen address
// unless it is a wildcard, and the public host; when that leaves nothing,
// the loopback names. Never the machine's host name: the certificate is
// shown to anyone who connects.
func DefaultTLSHosts(listenAddr, publicHost string) []string {
	var hosts []string
	if h, _, err := net.SplitHostPort(listenAddr); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	if publicHost != "" && !slices.Contains(hosts, publicHost) {
		hosts = append(hosts, publicHost)
	}
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	return hosts
}

// CheckTLSHost says what is wrong with a name for ServerConfig.TLSHosts,
// as NewServer would: it must be an IP address or a DNS name (letters,
// digits, '-' and '.'; no wildcards).
func CheckTLSHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return errors.New("want an IP address or a DNS name")
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return errors.New("want an IP address or a DNS name")
		}
	}
	return nil
}

// selfSignedCert loads the certificate kept in dir, creating it on first
// use for hosts. It is kept so that its fingerprint, which agents pin,
// survives restarts; within selfSignedRenewBefore of its end (at now) it
// is renewed, and the old pair is kept aside as NAME.expired-<UTC time>.
// A kept certificate made for other names is kept all the same (a new one
// would break every agent's pin without warning): the log says how to
// make a new one.
func selfSignedCert(dir string, hosts []string, now time.Time, log *slog.Logger) (tls.Certificate, error) {
	certPath := filepath.Join(dir, SelfSignedCertFile)
	keyPath := filepath.Join(dir, SelfSignedKeyFile)
	_, errC := os.Stat(certPath)
	_, errK := os.Stat(keyPath)
	switch {
	case errC == nil && errK == nil:
		cert, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return tls.Certificate{}, err
		}
		leaf := cert.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return tls.Certificate{}, err
			}
		}
		if now.Add(selfSignedRenewBefore).Before(leaf.NotAfter) {
			if have := certHosts(leaf); !slices.Equal(have, sortedHosts(hosts)) {
				log.Warn("the self-signed certificate was made for other names; to make a new one, move "+SelfSignedCertFile+" and "+SelfSignedKeyFile+" out of the state directory and restart (agents then need the new fingerprint)",
					"names", strings.Join(have, ","), "configured", strings.Join(sortedHosts(hosts), ","), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
			}
			return cert, nil
		}
		stamp := now.UTC().Format("20060102T150405Z")
		for _, p := range []string{keyPath, certPath} {
			if err := os.Rename(p, p+".expired-"+stamp); err != nil {
				return tls.Certificate{}, fmt.Errorf("keep the old certificate aside: %w", err)
			}
		}
		log.Warn("the self-signed certificate was within 30 days of its end: made a new one; agents that pin the fingerprint need the new one",
			"old_not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "old_fingerprint", Fingerprint(cert.Certificate[0]),
			"old_kept_as", certPath+".expired-"+stamp)
	case errors.Is(errC, fs.ErrNotExist) && errors.Is(errK, fs.ErrNotExist):
	case errC == nil || errK == nil:
		return tls.Certificate{}, fmt.Errorf("only one of %s and %s exists; remove it to generate a new pair", SelfSignedCertFile, SelfSignedKeyFile)
	default:
		return tls.Certificate{}, errors.Join(errC, errK)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "syncer historian", Organization: []string{"syncer"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(selfSignedValidity, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	// The key is written first and both with O_EXCL and mode 0600: a
	// second server racing on the same state dir fails instead of mixing
	// two pairs, and the private key is never readable by others.
	if err := writeExclusive(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeExclusive(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		_ = os.Remove(keyPath)
		return tls.Certificate{}, err
	}
	log.Info("made a self-signed certificate", "names", strings.Join(hosts, ","), "not_after", tmpl.NotAfter.UTC().Format(time.RFC3339))
	return tls.LoadX509KeyPair(certPath, keyPath)
}

// certHosts are the names a certificate is made for, sorted.
func certHosts(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out
}

// sortedHosts normalises configured names as certHosts does.
func sortedHosts(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

func writeExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	return f.Close()
}
