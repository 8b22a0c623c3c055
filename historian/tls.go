package historian

import (
	"context"
	"errors"
	"sync"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/httpview"
)

// errWebNeedsTLS refuses a web viewer off loopback without a certificate.
var errWebNeedsTLS = errors.New("off loopback the web viewer needs HTTPS, or passwords and tokens cross the network in clear text: " +
	"give it a certificate (--http-tls-cert/--http-tls-key, or --tls-self-signed to share the FTP server's), " +
	"or keep it on loopback behind a TLS-terminating proxy")

// checkWebConfig checks the web viewer's settings: a certificate pair
// goes together, no login only on loopback, HTTPS off loopback.
//
// Security: refused at start rather than per request, so that an
// operator learns of it when setting up, not when a password has already
// crossed the network (the viewer itself also refuses logins over plain
// HTTP from peers off loopback). The proxy exception needs no flag: a
// TLS-terminating proxy on this machine reaches a loopback viewer.
func checkWebConfig(cfg Config) error {
	if (cfg.HTTPTLSCertFile == "") != (cfg.HTTPTLSKeyFile == "") {
		return &ConfigError{Field: "HTTPTLSCertFile", Value: cfg.HTTPTLSCertFile, Err: errors.New("the web viewer's certificate and key go together")}
	}
	if cfg.HTTPAddr == "" {
		return nil
	}
	offLoopback := httpview.RequiresAuth(cfg.HTTPAddr)
	if cfg.HTTPNoLogin && offLoopback {
		return &ConfigError{Field: "HTTPNoLogin", Err: errors.New("only with a loopback web viewer (--http 127.0.0.1:PORT): off loopback a login is always required")}
	}
	if offLoopback && cfg.HTTPTLSCertFile == "" && cfg.TLSCertFile == "" && !cfg.TLSSelfSigned {
		return &ConfigError{Field: "HTTPAddr", Value: cfg.HTTPAddr, Err: errWebNeedsTLS}
	}
	return nil
}

// startTLS loads the certificates: the FTP server's (from files or
// self-signed in the state directory) and the web viewer's (its own
// files, or the FTP server's), and keeps them current while the
// historian runs, so that a self-signed certificate is renewed before
// its end and both listeners hand out the new one without a restart.
func (h *Historian) startTLS(context.Context) (stop func(context.Context) error, err error) {
	c := h.cfg
	switch {
	case c.TLSCertFile != "":
		h.certs, err = ftpfs.NewFileCertSource(c.TLSCertFile, c.TLSKeyFile, c.Now, h.log)
		if err != nil {
			return nil, &ConfigError{Field: "TLSCertFile", Value: c.TLSCertFile, Err: err}
		}
	case c.TLSSelfSigned:
		hosts := c.TLSHosts
		if len(hosts) == 0 {
			hosts = ftpfs.DefaultTLSHosts(c.FTPAddr, c.PublicHost)
		}
		if h.certs, err = ftpfs.NewSelfSignedCertSource(c.State, hosts, c.Now, h.log); err != nil {
			return nil, &ConfigError{Field: "State", Value: c.State, Err: err}
		}
	}
	h.webTLS = h.certs
	if c.HTTPAddr != "" && c.HTTPTLSCertFile != "" {
		h.webTLS, err = ftpfs.NewFileCertSource(c.HTTPTLSCertFile, c.HTTPTLSKeyFile, c.Now, h.log)
		if err != nil {
			return nil, &ConfigError{Field: "HTTPTLSCertFile", Value: c.HTTPTLSCertFile, Err: err}
		}
	}
	if c.HTTPAddr == "" {
		h.webTLS = nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, src := range []*ftpfs.CertSource{h.certs, h.webTLS} {
		if src == nil || (i == 1 && src == h.certs) {
			continue // none, or the FTP server's, kept current already
		}
		wg.Add(1)
		go func() { defer wg.Done(); src.Run(ctx, c.TLSCheckEvery) }()
	}
	return func(context.Context) error { cancel(); wg.Wait(); return nil }, nil
}

// HTTPURL is the web viewer's base URL ("https://ADDR" or "http://ADDR"),
// "" without one; valid after Ready.
func (h *Historian) HTTPURL() string {
	if h.httpLn == nil {
		return ""
	}
	if h.webTLS != nil {
		return "https://" + h.httpLn.Addr().String()
	}
	return "http://" + h.httpLn.Addr().String()
}

// WebTLSFingerprint is the fingerprint of the certificate the web viewer
// hands out now, "" for plain HTTP; valid after Ready.
func (h *Historian) WebTLSFingerprint() string {
	if h.webTLS == nil {
		return ""
	}
	return h.webTLS.Fingerprint()
}
