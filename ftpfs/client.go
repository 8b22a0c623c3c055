package ftpfs

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jlaffaye/ftp"
)

// Client defaults.
const (
	DefaultDialTimeout = 10 * time.Second
	DefaultIOTimeout   = 30 * time.Second
	// UploadBufferSize is the size of the buffer Store copies through: an
	// upload cut mid-way loses at most this much in flight, which the next
	// Upload sends again.
	UploadBufferSize = 64 << 10
)

// ClientConfig configures Dial and NewPool.
type ClientConfig struct {
	// Server is "ftp://host[:port]" or "ftps://host[:port]" (explicit TLS,
	// AUTH TLS); the port defaults to 21.
	Server string
	User   string
	// Password is sent only in PASS; it is never logged and never appears
	// in error text.
	Password string
	// CAFile is a PEM CA bundle that verifies an ftps server; empty means
	// the system roots.
	CAFile string
	// Fingerprint pins the server certificate, "sha256:HEX" (colons between
	// hex pairs allowed). When set, the leaf certificate's SHA-256 is
	// verified instead of the CA chain.
	Fingerprint string
	// DialTimeout bounds each TCP connect; default DefaultDialTimeout.
	DialTimeout time.Duration
	// IOTimeout is the longest silence allowed on the control or a data
	// connection; it resets on every read and write. Default
	// DefaultIOTimeout.
	IOTimeout time.Duration
	// Logger receives debug and warning records; nil discards them.
	Logger *slog.Logger
}

func (cfg ClientConfig) withDefaults() ClientConfig {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = DefaultIOTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// ParseServerURL splits "ftp://host[:port]" or "ftps://host[:port]" into
// its parts; tls reports the ftps scheme. The port defaults to 21. A URL
// with user info is refused (a password there would end up in process
// lists and logs), and the error text never repeats such a URL.
func ParseServerURL(s string) (host string, port int, tls bool, err error) {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "", 0, false, errors.New("invalid server url")
		}
		return "", 0, false, fmt.Errorf("invalid server url %q", s)
	}
	if u.User != nil {
		// Why: credentials in the URL would leak through flags, process
		// lists and logs; they belong in --user and the password file.
		return "", 0, false, errors.New("invalid server url: user or password in the url is not allowed, use --user and a password file")
	}
	switch u.Scheme {
	case "ftp":
	case "ftps":
		tls = true
	default:
		return "", 0, false, fmt.Errorf("invalid server url %q: scheme must be ftp:// or ftps://", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return "", 0, false, fmt.Errorf("invalid server url %q: a path, query or fragment is not allowed", s)
	}
	host = u.Hostname()
	if host == "" {
		return "", 0, false, fmt.Errorf("invalid server url %q: no host", s)
	}
	port = 21
	if p := u.Port(); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return "", 0, false, fmt.Errorf("invalid server url %q: bad port %q", s, p)
		}
	}
	return host, port, tls, nil
}

// CheckFingerprint reports whether s is a certificate pin the client
// takes (ClientConfig.Fingerprint): "sha256:HEX" or "HEX", 64 hex digits,
// with or without colons.
func CheckFingerprint(s string) error {
	_, err := parseFingerprint(s)
	return err
}

// parseFingerprint accepts "sha256:HEX", "HEX", with or without colons.
func parseFingerprint(s string) ([]byte, error) {
	v := strings.TrimSpace(s)
	if i := strings.IndexByte(v, ':'); i > 0 && strings.EqualFold(v[:i], "sha256") {
		v = v[i+1:]
	}
	v = strings.ReplaceAll(v, ":", "")
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("invalid fingerprint %q: want sha256:<64 hex digits>", s)
	}
	return b, nil
}

func (cfg ClientConfig) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{
		// ServerName is needed for verification and, since jlaffaye/ftp
		// builds data connections from this config, for every data
		// connection too.
		ServerName: host,
		MinVersion: tls.VersionTLS12,
		// Data connections resume the control connection's TLS session;
		// servers such as vsftpd (require_ssl_reuse) and syncer's own
		// insist on it. The cache is this connection's alone (tlsConfig is
		// called once per Dial): a data connection must resume its own
		// control connection's session, not a sibling's. Go keys it by
		// ServerName, the same on every connection; TLS 1.3 tickets arrive
		// after the handshake and are read with the next control reply.
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
	}
	switch {
	case cfg.Fingerprint != "":
		want, err := parseFingerprint(cfg.Fingerprint)
		if err != nil {
			return nil, err
		}
		// Why: a pinned certificate (typically the historian's self-signed
		// one) replaces the CA chain, so chain verification is switched
		// off, and instead every connection, resumed ones included
		// (VerifyConnection runs on those, VerifyPeerCertificate does
		// not), must present exactly the pinned leaf.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: no certificate presented", errFingerprint)
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return fmt.Errorf("%w: server presented sha256:%s", errFingerprint, hex.EncodeToString(got[:]))
			}
			return nil
		}
	case cfg.CAFile != "":
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read tls ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca file %s: no PEM certificates found", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Entry is one directory entry returned by List.
type Entry struct {
	Name    string
	Size    int64
	ModTime time.Time
	Dir     bool
}

// UploadResult tells what Upload did: Offset is the server's size before
// the transfer (where it resumed), Sent the bytes written to the data
// connection.
type UploadResult struct {
	Offset int64
	Sent   int64
}

// Client is one logged-in FTP control connection. It must be used by one
// goroutine at a time (Pool gives one to each worker). All paths are FTP
// paths with "/" separators; relative ones are taken from the login
// directory. After a network error or a cancelled context the Client is
// broken: operations return ErrClientClosed and it should be closed.
type Client struct {
	cfg  ClientConfig
	addr string
	log  *slog.Logger
	sc   *ftp.ServerConn
	home string
	// tls and dialedAt: a Pool stops reusing a TLS client after maxTLSAge.
	tls      bool
	dialedAt time.Time

	// dirs caches directories known to exist, so that MkdirAll costs no
	// round trip for a directory already seen.
	dirs map[string]bool

	// hello is what the server said when the login succeeded; tlsInfo
	// describes the control connection's TLS (zero without TLS).
	hello   Hello
	tlsInfo TLSInfo

	mu     sync.Mutex
	ctx    context.Context // context of the running operation, for data dials
	conns  map[*idleConn]struct{}
	broken bool
	closed bool
}

// Dial connects to cfg.Server, upgrades to TLS for ftps (AUTH TLS, then
// PBSZ 0 and PROT P so data connections are encrypted too), logs in and
// sets binary transfer type (TYPE I). ctx bounds the whole handshake and
// cancelling it aborts it. Errors: ErrUnreachable (wrapped) when the TCP
// connection or the TLS handshake fails or the server stays silent longer
// than IOTimeout; ErrClientLogin (wrapped) when the server refuses the user or
// password; ErrBanned (a *BannedError) when the server refuses the
// address after failed logins; ErrCertificate when the server's
// certificate fails the CA or the pin; ErrBusy for another 421 greeting.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	host, port, useTLS, err := ParseServerURL(cfg.Server)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{
		cfg:   cfg,
		addr:  net.JoinHostPort(host, strconv.Itoa(port)),
		log:   cfg.Logger,
		dirs:  make(map[string]bool),
		conns: make(map[*idleConn]struct{}),
		ctx:   ctx,
	}
	var tlsConf *tls.Config
	if useTLS {
		if tlsConf, err = cfg.tlsConfig(host); err != nil {
			return nil, fmt.Errorf("connect to %s: %w", c.addr, err)
		}
		verify := tlsConf.VerifyConnection
		tlsConf.VerifyConnection = func(cs tls.ConnectionState) error {
			if verify != nil {
				if err := verify(cs); err != nil {
					return err
				}
			}
			c.noteTLS(cs)
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.addr, err)
	}
	stop := context.AfterFunc(ctx, c.abort)
	defer stop()

	dialed := 0
	dialFunc := func(network, address string) (net.Conn, error) {
		d := net.Dialer{Timeout: cfg.DialTimeout}
		raw, err := d.DialContext(c.opContext(), network, address)
		if err != nil {
			return nil, err
		}
		ic, err := c.track(newIdleConn(raw, cfg.IOTimeout, c.untrack))
		if err != nil {
			return nil, err
		}
		control := dialed == 0
		dialed++
		// jlaffaye/ftp wraps the control connection in TLS itself after
		// AUTH TLS, but uses a DialFunc's data connections as they come:
		// with PROT P they must be TLS, resuming the control session.
		if tlsConf != nil && !control {
			return tls.Client(ic, tlsConf), nil
		}
		return ic, nil
	}
	tap := &helloTap{}
	opts := []ftp.DialOption{ftp.DialWithDialFunc(dialFunc), ftp.DialWithDebugOutput(tap)}
	if tlsConf != nil {
		opts = append(opts, ftp.DialWithExplicitTLS(tlsConf))
	}
	sc, err := ftp.Dial(c.addr, opts...)
	if err != nil {
		c.closeConns()
		return nil, c.dialError(ctx, "connect to "+c.addr, err, false)
	}
	err = sc.Login(cfg.User, cfg.Password)
	c.hello = ParseHello(tap.finish())
	if err != nil {
		_ = sc.Quit()
		c.closeConns()
		return nil, c.dialError(ctx, fmt.Sprintf("log in to %s as %q", c.addr, cfg.User), err, true)
	}
	home, err := sc.CurrentDir()
	if err != nil || !path.IsAbs(home) {
		home = "/"
	}
	c.sc, c.home = sc, path.Clean(home)
	c.tls, c.dialedAt = useTLS, time.Now()
	if ctx.Err() != nil {
		_ = c.Close()
		return nil, fmt.Errorf("connect to %s: %w", c.addr, ctx.Err())
	}
	c.log.Debug("ftp connected", "server", c.addr, "user", cfg.User, "tls", useTLS)
	return c, nil
}

// dialError classifies an error from connecting or logging in.
func (c *Client) dialError(ctx context.Context, what string, err error, login bool) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var tp *textproto.Error
	switch {
	case banFrom(err.Error()) != nil:
		// A ban, at connect (421), USER or PASS (530; jlaffaye/ftp
		// reports a refused USER as a plain error with the reply's text).
		return fmt.Errorf("%s: %w (server: %w)", what, banFrom(err.Error()), err)
	case errors.As(err, &tp):
		if s := sentinelFor("login", tp); s != nil {
			return fmt.Errorf("%s: %w (server: %w)", what, s, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	case isVerifyErr(err):
		return fmt.Errorf("%s: %w: %w", what, ErrCertificate, err)
	case isConnErr(err):
		return fmt.Errorf("%s: %w: %w", what, ErrUnreachable, err)
	case login:
		// jlaffaye/ftp reports a USER reply other than 230/331 as a plain
		// error carrying only the server's text.
		return fmt.Errorf("%s: %w (server: %w)", what, ErrClientLogin, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

func (c *Client) opContext() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		return context.Background()
	}
	return c.ctx
}

// track registers a new connection so that abort can cut it; a connection
// dialed after an abort is closed at once.
func (c *Client) track(ic *idleConn) (*idleConn, error) {
	c.mu.Lock()
	if c.broken || c.closed {
		c.mu.Unlock()
		_ = ic.Conn.Close()
		return nil, net.ErrClosed
	}
	c.conns[ic] = struct{}{}
	c.mu.Unlock()
	return ic, nil
}

func (c *Client) untrack(ic *idleConn) {
	c.mu.Lock()
	delete(c.conns, ic)
	c.mu.Unlock()
}

// abort cuts every connection of the client: it is how a cancelled context
// interrupts a blocked read or write, since jlaffaye/ftp takes no context.
func (c *Client) abort() {
	c.mu.Lock()
	c.broken = true
	c.mu.Unlock()
	c.closeConns()
}

func (c *Client) closeConns() {
	c.mu.Lock()
	conns := make([]*idleConn, 0, len(c.conns))
	for ic := range c.conns {
		conns = append(conns, ic)
	}
	c.mu.Unlock()
	for _, ic := range conns {
		_ = ic.Close()
	}
}

// usable reports whether the client can still run commands.
func (c *Client) usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sc != nil && !c.broken && !c.closed
}

// run executes f, which talks to the server, under ctx: when ctx is done
// before f returns, the connections are cut so f returns promptly, and the
// context's error is returned. A connection-level failure marks the client
// broken, since the FTP conversation is then out of step.
func (c *Client) run(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if c.sc == nil || c.broken || c.closed {
		c.mu.Unlock()
		return ErrClientClosed
	}
	c.ctx = ctx
	c.mu.Unlock()

	stop := context.AfterFunc(ctx, c.abort)
	err := f()
	if !stop() && err != nil {
		return ctx.Err()
	}
	if err != nil && isConnErr(err) {
		c.mu.Lock()
		c.broken = true
		c.mu.Unlock()
		c.closeConns()
	}
	return err
}

// abs makes p absolute against the login directory and cleans it.
func (c *Client) abs(p string) string {
	if !path.IsAbs(p) {
		p = path.Join(c.home, p)
	}
	return path.Clean(p)
}

// Size returns the size of the file at p from the server's SIZE reply
// (in binary mode, so it counts bytes). ErrNotFound (wrapped) if p does not
// exist.
func (c *Client) Size(ctx context.Context, p string) (int64, error) {
	p = c.abs(p)
	var n int64
	err := c.run(ctx, func() error {
		var err error
		n, err = c.sc.FileSize(p)
		return err
	})
	if err != nil {
		return 0, opError("size", p, err)
	}
	return n, nil
}

// SetModTime sets the modification time of the file at p to t, to the
// second (MFMT, or MDTM with two arguments where the server only has
// that). ErrNotSupported when the server has neither; ErrPermission when
// it refuses.
func (c *Client) SetModTime(ctx context.Context, p string, t time.Time) error {
	p = c.abs(p)
	if !c.sc.IsSetTimeSupported() {
		return fmt.Errorf("set time %s: %w", p, ErrNotSupported)
	}
	err := c.run(ctx, func() error { return c.sc.SetTime(p, t) })
	if err != nil {
		return opError("mfmt", p, err)
	}
	return nil
}

// MkdirAll creates dir and any missing parents. Directories that exist
// already, including ones another client created meanwhile, are not an
// error. Directories known to exist are cached per Client, so a second call
// for the same or a parent directory costs nothing.
func (c *Client) MkdirAll(ctx context.Context, dir string) error {
	return c.mkdirAll(ctx, c.abs(dir))
}

func (c *Client) mkdirAll(ctx context.Context, p string) error {
	if p == "/" || c.dirs[p] {
		return nil
	}
	// Try the directory itself first: in the common case its parent exists
	// and one MKD (or one CWD, if it exists) is all it takes.
	err := c.mkdirOne(ctx, p)
	if err != nil && !isConnErr(err) && ctx.Err() == nil && path.Dir(p) != p {
		if perr := c.mkdirAll(ctx, path.Dir(p)); perr != nil {
			return perr
		}
		err = c.mkdirOne(ctx, p)
	}
	if err != nil {
		return opError("mkdir", p, err)
	}
	c.dirs[p] = true
	return nil
}

// mkdirOne makes p, or confirms that it exists.
func (c *Client) mkdirOne(ctx context.Context, p string) error {
	return c.run(ctx, func() error {
		mkErr := c.sc.MakeDir(p)
		if mkErr == nil {
			return nil
		}
		var tp *textproto.Error
		if !errors.As(mkErr, &tp) {
			return mkErr
		}
		// The MKD reply does not reliably say "exists" (vsftpd: "Create
		// directory operation failed"), so ask with CWD: all our paths are
		// absolute, so the working directory does not matter.
		if err := c.sc.ChangeDir(p); err == nil {
			return nil
		} else if !isProtoErr(err) {
			return err
		}
		return mkErr
	})
}

// Store writes r to the file p. With offset > 0 it sends REST offset and
// STOR, so the server writes from that byte on (a resume or an append);
// with offset 0 it sends a plain STOR (the syncer server then keeps an
// existing file as a superseded version). It streams r through one buffer
// of UploadBufferSize and returns the bytes written to the data connection,
// also on error. An error reading r ends the transfer: the server keeps the
// bytes sent so far, from which Upload resumes.
func (c *Client) Store(ctx context.Context, p string, r io.Reader, offset int64) (int64, error) {
	p = c.abs(p)
	if offset < 0 {
		return 0, fmt.Errorf("stor %s: negative offset %d", p, offset)
	}
	src := &countingSource{r: r}
	err := c.run(ctx, func() error {
		return c.sc.StorFrom(p, src, uint64(offset))
	})
	if err != nil {
		return src.n, opError("stor", p, err)
	}
	return src.n, nil
}

// Upload makes the file p on the server equal to src[0:size], sending only
// what the server lacks: it asks SIZE (a missing file counts as 0), sends
// src[remote:size] with REST remote + STOR, and checks SIZE again.
// ErrRemoteLarger if the server holds more than size bytes (nothing is
// sent); ErrSizeMismatch if the final size is not size. A remote file of
// exactly size bytes is left alone. After an interrupted Upload, calling it
// again completes the file. The result is filled in also on error.
func (c *Client) Upload(ctx context.Context, p string, src io.ReaderAt, size int64) (UploadResult, error) {
	p = c.abs(p)
	var res UploadResult
	if size < 0 {
		return res, fmt.Errorf("upload %s: negative size %d", p, size)
	}
	remote, err := c.Size(ctx, p)
	exists := true
	if errors.Is(err, ErrNotFound) {
		remote, exists, err = 0, false, nil
	}
	if err != nil {
		return res, err
	}
	res.Offset = remote
	switch {
	case remote > size:
		return res, fmt.Errorf("upload %s: %w (server has %d bytes, source %d)", p, ErrRemoteLarger, remote, size)
	case remote == size && exists:
		return res, nil
	}
	res.Sent, err = c.Store(ctx, p, io.NewSectionReader(src, remote, size-remote), remote)
	if err != nil {
		return res, err
	}
	got, err := c.Size(ctx, p)
	if err != nil {
		return res, err
	}
	if got != size {
		return res, fmt.Errorf("upload %s: %w (server has %d bytes, source %d)", p, ErrSizeMismatch, got, size)
	}
	return res, nil
}

// Retrieve copies the file p, from byte offset on (REST offset + RETR), to
// w and returns the bytes written to w. ErrNotFound (wrapped) if p does not
// exist.
func (c *Client) Retrieve(ctx context.Context, p string, w io.Writer, offset int64) (int64, error) {
	p = c.abs(p)
	if offset < 0 {
		return 0, fmt.Errorf("retr %s: negative offset %d", p, offset)
	}
	sink := &countingSink{w: w}
	err := c.run(ctx, func() error {
		resp, err := c.sc.RetrFrom(p, uint64(offset))
		if err != nil {
			return err
		}
		_, cerr := io.Copy(sink, resp)
		return errors.Join(cerr, resp.Close())
	})
	if err != nil {
		return sink.n, opError("retr", p, err)
	}
	return sink.n, nil
}

// List returns the entries of directory dir, without "." and "..". It
// uses MLSD where the server offers it, else LIST.
func (c *Client) List(ctx context.Context, dir string) ([]Entry, error) {
	dir = c.abs(dir)
	var raw []*ftp.Entry
	err := c.run(ctx, func() error {
		var err error
		raw, err = c.sc.List(dir)
		return err
	})
	if err != nil {
		return nil, opError("list", dir, err)
	}
	out := make([]Entry, 0, len(raw))
	for _, e := range raw {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		out = append(out, Entry{
			Name:    path.Base(e.Name),
			Size:    int64(e.Size),
			ModTime: e.Time,
			Dir:     e.Type == ftp.EntryTypeFolder,
		})
	}
	return out, nil
}

// Noop sends NOOP: it checks that the connection is alive.
func (c *Client) Noop(ctx context.Context) error {
	err := c.run(ctx, func() error { return c.sc.NoOp() })
	if err != nil {
		return opError("noop", "", err)
	}
	return nil
}

// TLSInfo describes a client's TLS control connection.
type TLSInfo struct {
	// Version is "TLS 1.3" or "TLS 1.2"; "" without TLS.
	Version string
	// Fingerprint is the server certificate's SHA-256 ("sha256:HEX").
	Fingerprint string
	// Pinned says the certificate was checked against a pin
	// (ClientConfig.Fingerprint), not a CA.
	Pinned bool
}

// noteTLS records the first verified connection's TLS: the control
// connection's.
func (c *Client) noteTLS(cs tls.ConnectionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tlsInfo.Version != "" || len(cs.PeerCertificates) == 0 {
		return
	}
	sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
	c.tlsInfo = TLSInfo{Version: tls.VersionName(cs.Version), Fingerprint: "sha256:" + hex.EncodeToString(sum[:]), Pinned: c.cfg.Fingerprint != ""}
}

// TLS describes the control connection's TLS; the zero TLSInfo without.
func (c *Client) TLS() TLSInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tlsInfo
}

// Hello is what the server said when it accepted the login: syncer's
// server tells its version and clock (see ParseHello).
func (c *Client) Hello() Hello { return c.hello }

// Close sends QUIT and closes the connections. It is safe to call more than
// once; after it every operation returns ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	broken, sc := c.broken, c.sc
	c.mu.Unlock()
	var err error
	if sc != nil && !broken {
		err = sc.Quit()
	}
	c.closeConns()
	if err != nil && !isConnErr(err) {
		return fmt.Errorf("close connection to %s: %w", c.addr, err)
	}
	return nil
}
