package ftpfs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/internal/defender"
)

// Defaults of ServerConfig, applied when a field is left at its zero value.
const (
	DefaultListenAddr     = "127.0.0.1:2121"
	DefaultLoginFailDelay = time.Second
	DefaultBanAfter       = 5
	DefaultBanWindow      = 10 * time.Minute
	DefaultBanFor         = 15 * time.Minute
	// DefaultLoginTimeout is how long a connection may take to log in.
	DefaultLoginTimeout = 20 * time.Second
	// DefaultMaxConnsPerIP is the cap on one address's connections,
	// logged in or not (vsftpd's max_per_ip).
	DefaultMaxConnsPerIP = 20
	// DefaultMaxUnauthConns is the cap on connections that have not logged
	// in yet, all addresses together.
	DefaultMaxUnauthConns = 256
	// DefaultDataConnTimeout is how long a transfer waits for its data
	// connection.
	DefaultDataConnTimeout = 30 * time.Second
	// DefaultIdleTimeout closes a control connection silent for this long,
	// or a logged-in one that has done no work (see ServerConfig.IdleTimeout).
	DefaultIdleTimeout = 15 * time.Minute
)

// ServerConfig configures a Server. Zero values mean "the default" unless a
// field says otherwise.
type ServerConfig struct {
	// Root is the archive directory; it must exist. Nothing outside it is
	// ever read or written on behalf of a client.
	Root string
	// SummaryEvery is how often the server logs an INFO summary of its
	// activity (uploads, bytes, logins; single uploads and logins are
	// DEBUG); 0 means DefaultSummaryEvery, negative never.
	SummaryEvery time.Duration
	// Version is the server's version, told to clients once they logged
	// in (the reply to PASS, see ParseHello); empty says "unknown".
	Version string
	// StateDir holds the self-signed certificate (TLSSelfSigned); required
	// only then.
	StateDir string
	// Users are the accounts; nil means a new, empty, in-memory accounts.DB.
	Users *accounts.DB
	// ListenAddr is the control connection's address, DefaultListenAddr if
	// empty; port 0 picks a free port (see Server.Addr).
	ListenAddr string
	// PassivePorts restricts passive data connections to a port range; the
	// zero value lets the system choose.
	PassivePorts PortRange
	// PublicHost is the IPv4 address announced in PASV replies (behind NAT);
	// empty means the address the client connected to.
	PublicHost string
	// TLSCertFile and TLSKeyFile enable explicit FTPS (AUTH TLS) with this
	// certificate. TLSSelfSigned instead generates a certificate once and
	// keeps it in StateDir. At most one of the two ways may be used.
	TLSCertFile, TLSKeyFile string
	TLSSelfSigned           bool
	// TLSCertSource, if set, is the certificate instead of TLSCertFile or
	// TLSSelfSigned: share one between servers that must show the same
	// certificate. The caller keeps it current (CertSource.Run); a
	// source the server makes from TLSCertFile or TLSSelfSigned is kept
	// current by the server between Start and Stop.
	TLSCertSource *CertSource
	// TLSHosts are the DNS names and IP addresses a self-signed certificate
	// is made for; empty means DefaultTLSHosts(ListenAddr, PublicHost).
	// A kept certificate is not remade for other names.
	TLSHosts []string
	// TLSRequired refuses USER/PASS before AUTH TLS and unprotected data
	// connections. It needs a certificate.
	TLSRequired bool
	// TLSAllowDataWithoutReuse accepts TLS data connections that do not
	// resume their control connection's TLS session. By default such a
	// connection is dropped (vsftpd's require_ssl_reuse): anyone on the
	// client's address could otherwise connect to the passive port and
	// send or read the transfer's bytes. Only for clients that cannot
	// resume sessions.
	TLSAllowDataWithoutReuse bool
	// ArchiveFileMode and ArchiveDirMode are the modes, exactly (no umask),
	// of the files and directories the server creates in the archive
	// (versions are links to the file they were, with its mode); 0 means
	// DefaultArchiveFileMode and DefaultArchiveDirMode. The owner needs rw
	// on files and rwx on directories; others may not write.
	ArchiveFileMode, ArchiveDirMode Mode
	// MaxUploadRate and MaxDownloadRate limit each account's bandwidth, in
	// bytes per second, shared by all its connections; 0 is unlimited. A
	// user's own MaxUploadRate/MaxDownloadRate overrides them.
	MaxUploadRate, MaxDownloadRate accounts.Rate
	// Limiters holds the accounts' token buckets; share one with the web
	// viewer so that an account has one budget whichever way it
	// downloads. nil: the server keeps its own.
	Limiters *accounts.Limiters
	// MaxConns limits the logged-in sessions in total, MaxConnsPerUser
	// those of one account; 0 is unlimited. Refusals are FTP 421.
	// Connections that have not logged in yet never take one of these
	// slots: they have their own pool, MaxUnauthConns, so that strangers
	// cannot lock agents out.
	MaxConns, MaxConnsPerUser int
	// MaxUnauthConns bounds the connections that have not logged in yet,
	// all addresses together; 0 means DefaultMaxUnauthConns. When the pool
	// is full, a new connection is still served and the oldest waiting
	// connection of the address holding the most of them is closed (421):
	// a flood evicts itself before it evicts a lone agent.
	MaxUnauthConns int
	// MaxConnsPerIP bounds one address's connections, logged in or not
	// (vsftpd's max_per_ip); 0 means DefaultMaxConnsPerIP, negative is
	// unlimited. Refusals are FTP 421 at connect.
	MaxConnsPerIP int
	// DataConnTimeout is how long a transfer waits for its data connection
	// (and, with TLS, for one that completes its handshake), in whole
	// seconds; 0 means DefaultDataConnTimeout. Connections from other
	// addresses, or failing the TLS session check, are closed meanwhile.
	DataConnTimeout time.Duration
	// LoginTimeout closes a connection that has not logged in this long
	// after it connected, whatever it sends; 0 means DefaultLoginTimeout.
	// It also bounds how long a login waits for its password check.
	LoginTimeout time.Duration
	// IdleTimeout closes a control connection silent for this long, and a
	// logged-in one that has done no work for this long: commands that
	// touch no file and open no transfer (NOOP, FEAT, SYST, PWD, TYPE...)
	// do not count as work. Never during a transfer. 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Defender counts failed logins and bans addresses; share one between
	// services (FTP, web) so that a failure on one counts on all and a ban
	// holds on all. nil: the server makes its own from LoginFailDelay,
	// BanAfter, BanWindow and BanFor, which are otherwise ignored.
	Defender *defender.Defender
	// LoginFailDelay delays the answer to a failed login; 0 means
	// DefaultLoginFailDelay, a negative value disables the delay.
	LoginFailDelay time.Duration
	// BanAfter failed logins from one IP address within BanWindow ban that
	// address for BanFor: its connections are refused at once, its
	// connections not logged in yet are closed, and a PASS on a connection
	// already open is refused unchecked. 0 means the defaults (5 within 10
	// minutes, banned for 15 minutes); a negative BanAfter disables bans.
	BanAfter          int
	BanWindow, BanFor time.Duration
	// Logger receives the server's log; nil discards it. Passwords are
	// never logged.
	Logger *slog.Logger
	// OnUpload, if set, receives every activity.UploadEvent. It is called
	// synchronously from the transfer's goroutine, so it must return
	// quickly (hand work to another goroutine) and must not call back into
	// the transfer.
	OnUpload func(activity.UploadEvent)
}

// PortRange is an inclusive range of TCP ports; the zero value means "not set".
type PortRange struct {
	Lo, Hi int
}

// IsZero reports whether the range is unset.
func (r PortRange) IsZero() bool { return r.Lo == 0 && r.Hi == 0 }

// String formats the range as "LO-HI", or "" when unset.
func (r PortRange) String() string {
	if r.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// Set parses "LO-HI" (pflag.Value); "" unsets the range.
func (r *PortRange) Set(s string) error {
	p, err := ParsePortRange(s)
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// Type names the flag's value type for help texts (pflag.Value).
func (r *PortRange) Type() string { return "LO-HI" }

// ParsePortRange parses "LO-HI" with 1 <= LO <= HI <= 65535; "" is the zero range.
func ParsePortRange(s string) (PortRange, error) {
	if s == "" {
		return PortRange{}, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return PortRange{}, fmt.Errorf("port range %q: want LO-HI, e.g. 50000-50100", s)
	}
	l, err1 := strconv.Atoi(strings.TrimSpace(lo))
	h, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("port range %q: want two port numbers LO-HI", s)
	}
	r := PortRange{Lo: l, Hi: h}
	return r, r.validate()
}

func (r PortRange) validate() error {
	if r.IsZero() {
		return nil
	}
	if r.Lo < 1 || r.Hi > 65535 || r.Lo > r.Hi {
		return fmt.Errorf("port range %d-%d: want 1 <= LO <= HI <= 65535", r.Lo, r.Hi)
	}
	return nil
}

// Server is an FTP server over one archive directory. Create it with
// NewServer, then Start it once and Stop it once. Its methods are safe for
// concurrent use.
type Server struct {
	cfg      ServerConfig
	log      *slog.Logger
	users    *accounts.DB
	root     *os.Root // the archive; every file operation goes through it
	rootPath string
	tlsConf  *tls.Config // the certificate and ticket keys; see tlsBinding
	tlsFront *tls.Config // what AUTH TLS handshakes with: picks the connection's own
	certs    *CertSource // nil without TLS
	ownCerts bool        // the server keeps certs current
	stopCert context.CancelFunc
	settings *ftpserver.Settings

	reg         registry
	writers     writerTable
	flush       *flusher // makes uploads durable before their 226 (durable.go)
	def         *defender.Defender
	stopDefense func()        // unregisters the ban listener
	janitorStop chan struct{} // ends the janitor and the summarizer
	summaryDone chan struct{} // closed when the summarizer has ended
	limiters    limiterSet
	loginMu     sync.Mutex // makes the connection counts and the login one step

	mu        sync.Mutex
	ftp       *ftpserver.FtpServer
	ln        *trackingListener
	started   bool
	stopped   bool
	serveDone chan struct{}
	sessions  sync.WaitGroup // sessions handed to ftpserverlib and not yet gone
	counts    activityCounts // for the periodic activity summary (logging.go)
	transfers sync.WaitGroup // open transfer handles
}

// NewServer checks cfg and prepares a server; it does not listen yet. Errors
// name the bad field and value. A self-signed certificate is created (or
// loaded) here, so TLSFingerprint is known before Start.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.fillAndValidate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		users:     cfg.Users,
		serveDone: make(chan struct{}),
		def:       cfg.Defender,
	}
	if s.def == nil {
		d, err := defender.New(defender.Config{BanAfter: cfg.BanAfter, Window: cfg.BanWindow, BanFor: cfg.BanFor, FailDelay: cfg.LoginFailDelay})
		if err != nil {
			return nil, fmt.Errorf("ftpfs: %w", err)
		}
		s.def = d
	}
	s.reg.init()
	s.writers.init()
	s.limiters.init(cfg.Limiters)
	abs, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("ftpfs: ServerConfig.Root %q: %w", cfg.Root, err)
	}
	s.rootPath = abs
	if s.tlsConf, s.certs, s.ownCerts, err = loadTLS(cfg, log); err != nil {
		return nil, err
	}
	if s.tlsConf != nil {
		s.tlsFront = s.tlsConf.Clone()
		s.tlsFront.GetConfigForClient = s.controlTLSConfig
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("ftpfs: ServerConfig.Root %q: %w", cfg.Root, err)
	}
	s.root = root
	s.flush = newFlusher(root)
	s.settings = s.buildSettings()
	return s, nil
}

// fillAndValidate applies defaults and checks every field.
func (c *ServerConfig) fillAndValidate() error {
	bad := func(field string, value any, why string) error {
		return fmt.Errorf("ftpfs: ServerConfig.%s %v: %s", field, value, why)
	}
	if c.Root == "" {
		return bad("Root", `""`, "the archive directory is required")
	}
	if st, err := os.Stat(c.Root); err != nil {
		return bad("Root", strconv.Quote(c.Root), err.Error())
	} else if !st.IsDir() {
		return bad("Root", strconv.Quote(c.Root), "not a directory")
	}
	if c.Users == nil {
		c.Users = accounts.New()
	}
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if _, port, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return bad("ListenAddr", strconv.Quote(c.ListenAddr), "want HOST:PORT")
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return bad("ListenAddr", strconv.Quote(c.ListenAddr), "bad port")
	}
	if err := c.PassivePorts.validate(); err != nil {
		return bad("PassivePorts", c.PassivePorts.String(), err.Error())
	}
	if c.PublicHost != "" {
		// ftpserverlib announces passive addresses in PASV's IPv4 format.
		if ip := net.ParseIP(c.PublicHost); ip == nil || ip.To4() == nil {
			return bad("PublicHost", strconv.Quote(c.PublicHost), "want an IPv4 address")
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return bad("TLSCertFile", strconv.Quote(c.TLSCertFile), "TLSCertFile and TLSKeyFile go together")
	}
	if c.TLSCertFile != "" && c.TLSSelfSigned {
		return bad("TLSSelfSigned", true, "choose either a certificate file or a self-signed certificate")
	}
	if c.TLSCertSource != nil && (c.TLSCertFile != "" || c.TLSSelfSigned) {
		return bad("TLSCertSource", "set", "choose one of TLSCertSource, a certificate file or a self-signed certificate")
	}
	if c.TLSSelfSigned && c.StateDir == "" {
		return bad("StateDir", `""`, "required to keep the self-signed certificate")
	}
	for _, h := range c.TLSHosts {
		if err := CheckTLSHost(h); err != nil {
			return bad("TLSHosts", strconv.Quote(h), err.Error())
		}
	}
	if len(c.TLSHosts) == 0 {
		c.TLSHosts = DefaultTLSHosts(c.ListenAddr, c.PublicHost)
	}
	if c.TLSRequired && c.TLSCertFile == "" && !c.TLSSelfSigned && c.TLSCertSource == nil {
		return bad("TLSRequired", true, "needs TLSCertFile/TLSKeyFile, TLSSelfSigned or TLSCertSource")
	}
	if c.ArchiveFileMode == 0 {
		c.ArchiveFileMode = DefaultArchiveFileMode
	}
	if err := checkMode(c.ArchiveFileMode, 0o600); err != nil {
		return bad("ArchiveFileMode", c.ArchiveFileMode, err.Error())
	}
	if c.ArchiveDirMode == 0 {
		c.ArchiveDirMode = DefaultArchiveDirMode
	}
	if err := checkMode(c.ArchiveDirMode, 0o700); err != nil {
		return bad("ArchiveDirMode", c.ArchiveDirMode, err.Error())
	}
	if c.MaxUploadRate < 0 {
		return bad("MaxUploadRate", int64(c.MaxUploadRate), "must not be negative")
	}
	if c.MaxDownloadRate < 0 {
		return bad("MaxDownloadRate", int64(c.MaxDownloadRate), "must not be negative")
	}
	if c.MaxConns < 0 {
		return bad("MaxConns", c.MaxConns, "must not be negative")
	}
	if c.MaxConnsPerUser < 0 {
		return bad("MaxConnsPerUser", c.MaxConnsPerUser, "must not be negative")
	}
	if c.IdleTimeout < 0 {
		return bad("IdleTimeout", c.IdleTimeout, "must not be negative")
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.DataConnTimeout < 0 {
		return bad("DataConnTimeout", c.DataConnTimeout, "must not be negative")
	}
	if c.DataConnTimeout == 0 {
		c.DataConnTimeout = DefaultDataConnTimeout
	}
	if c.LoginTimeout < 0 {
		return bad("LoginTimeout", c.LoginTimeout, "must not be negative")
	}
	if c.LoginTimeout == 0 {
		c.LoginTimeout = DefaultLoginTimeout
	}
	if c.MaxUnauthConns < 0 {
		return bad("MaxUnauthConns", c.MaxUnauthConns, "must not be negative")
	}
	if c.MaxUnauthConns == 0 {
		c.MaxUnauthConns = DefaultMaxUnauthConns
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.LoginFailDelay == 0 {
		c.LoginFailDelay = DefaultLoginFailDelay
	}
	if c.BanAfter == 0 {
		c.BanAfter = DefaultBanAfter
	}
	if c.BanWindow == 0 {
		c.BanWindow = DefaultBanWindow
	}
	if c.BanFor == 0 {
		c.BanFor = DefaultBanFor
	}
	if c.BanWindow < 0 {
		return bad("BanWindow", c.BanWindow, "must not be negative")
	}
	if c.BanFor < 0 {
		return bad("BanFor", c.BanFor, "must not be negative")
	}
	return nil
}

// buildSettings translates the config into ftpserverlib's settings.
func (s *Server) buildSettings() *ftpserver.Settings {
	st := &ftpserver.Settings{
		PublicHost: s.cfg.PublicHost,
		Banner:     "syncer FTP server",
		// Binary by default, and no line-ending conversion even after
		// TYPE A: an archive must store exactly the bytes it was sent.
		DefaultTransferType:    ftpserver.TransferTypeBinary,
		DisableASCIIConversion: true,
		// Active mode stays available, but the data connection must go to
		// (PORT) or come from (PASV) the control connection's address, so
		// the server cannot be used to bounce connections to third hosts
		// or have its data connections hijacked.
		ActiveConnectionsCheck: ftpserver.IPMatchRequired,
		PasvConnectionsCheck:   ftpserver.IPMatchRequired,
		// Binding local port 20 would need root.
		ActiveTransferPortNon20: true,
		// Hashing would read files outside the permission and rate checks.
		EnableHASH: false,
		EnableCOMB: false,
	}
	if !s.cfg.PassivePorts.IsZero() {
		st.PassiveTransferPortRange = ftpserver.PortRange{Start: s.cfg.PassivePorts.Lo, End: s.cfg.PassivePorts.Hi}
	}
	st.IdleTimeout = int((s.cfg.IdleTimeout + time.Second - 1) / time.Second)
	st.ConnectionTimeout = int((s.cfg.DataConnTimeout + time.Second - 1) / time.Second)
	if s.cfg.TLSRequired {
		st.TLSRequired = ftpserver.MandatoryEncryption
	}
	return st
}

// Start listens on ListenAddr and serves in the background until Stop.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("ftpfs: server already started")
	}
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("ftpfs: listen on %s: %w", s.cfg.ListenAddr, err)
	}
	s.ln = &trackingListener{Listener: ln, s: s}
	s.settings.Listener = s.ln
	s.ftp = ftpserver.NewFtpServer(&mainDriver{s: s})
	s.ftp.Logger = slog.New(quietDisconnects{s.log.Handler()}).With("component", "ftpserverlib")
	if err := s.ftp.Listen(); err != nil {
		_ = ln.Close()
		return fmt.Errorf("ftpfs: start: %w", err)
	}
	s.started = true
	s.stopDefense = s.def.OnChange(s.onBanChange)
	s.janitorStop = make(chan struct{})
	go s.janitor(s.janitorStop)
	if s.ownCerts {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopCert = cancel
		go s.certs.Run(ctx, DefaultTLSCheckEvery)
	}
	s.counts.start = time.Now()
	s.summaryDone = make(chan struct{})
	go s.summarizer(s.janitorStop, s.summaryDone)
	go func() {
		defer close(s.serveDone)
		if err := s.ftp.Serve(); err != nil {
			s.log.Error("ftp server stopped accepting connections", "err", err)
		}
	}()
	attrs := []any{"addr", ln.Addr().String(), "root", s.rootPath}
	if s.certs != nil {
		attrs = append(attrs, "tls_fingerprint", s.certs.Fingerprint(), "tls_required", s.cfg.TLSRequired)
	}
	s.log.Info("ftp server listening", attrs...)
	if s.certs != nil {
		// On a line of its own, for the operator to hand to the agents
		// (syncer tls fingerprint prints it again).
		s.log.Info("agents pin this certificate with --tls-fingerprint " + s.certs.Fingerprint())
	}
	return nil
}

// Addr is the listening address after Start, nil before.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// TLSFingerprint is "sha256:" and the hex SHA-256 of the current
// certificate (DER), or "" without TLS. Clients can pin it.
func (s *Server) TLSFingerprint() string {
	if s.certs == nil {
		return ""
	}
	return s.certs.Fingerprint()
}

// TLSCertSource is the server's certificate source, nil without TLS.
func (s *Server) TLSCertSource() *CertSource { return s.certs }

// Stop closes the listener, cuts every transfer and connection, and waits
// until they are gone or ctx ends (then it returns ctx's error). Stopping a
// server that was never started only releases its resources.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	started := s.started
	s.mu.Unlock()
	if !started {
		return s.root.Close()
	}
	s.stopDefense()
	close(s.janitorStop)
	if s.stopCert != nil {
		s.stopCert()
	}
	<-s.summaryDone
	if err := s.ftp.Stop(); err != nil && !errors.Is(err, ftpserver.ErrNotListening) {
		s.log.Warn("closing ftp listener", "err", err)
	}
	for _, sess := range s.reg.all() {
		sess.cancelTransfers(errors.New("server stopping"))
		sess.kill()
	}
	done := make(chan struct{})
	go func() {
		<-s.serveDone
		s.sessions.Wait()
		s.transfers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("ftpfs: stop: %w", ctx.Err())
	}
	s.counts.summarize(s.log, time.Since(s.counts.since()))
	s.log.Info("ftp server stopped")
	return s.root.Close()
}

// AddUser adds an account at run time (to the accounts.DB, so a users file
// keeps it). Errors: accounts.ErrUserExists, or the accounts.DB validation error.
func (s *Server) AddUser(u accounts.User, password string) error {
	if err := s.users.Add(u, password); err != nil {
		return fmt.Errorf("add user %q: %w", u.Name, err)
	}
	s.log.Info("user added", "user", u.Name, "admin", u.Admin)
	return nil
}

// RemoveUser removes an account and disconnects its sessions, cutting their
// transfers. Errors: accounts.ErrNoUser.
func (s *Server) RemoveUser(name string) error {
	if err := s.users.Remove(name); err != nil {
		return fmt.Errorf("remove user %q: %w", name, err)
	}
	n := s.disconnectUser(name, "account removed")
	s.log.Info("user removed", "user", name, "sessions_closed", n)
	return nil
}

// UsersChanged re-applies the accounts.DB after it changed outside the server
// (a reloaded users file): sessions of accounts that no longer exist are
// disconnected. Permissions and rate limits are looked up on every
// operation, so they apply at once anyway.
func (s *Server) UsersChanged() {
	for _, sess := range s.reg.all() {
		name := sess.userName()
		if name == "" {
			continue
		}
		if _, ok := s.users.Lookup(name); !ok {
			s.disconnectUser(name, "account removed from users file")
		}
	}
}

func (s *Server) disconnectUser(name, reason string) int {
	n := 0
	for _, sess := range s.reg.all() {
		if sess.userName() == name {
			sess.cancelTransfers(errors.New(reason))
			sess.kill()
			n++
		}
	}
	if n > 0 {
		s.log.Info("sessions disconnected", "user", name, "reason", reason, "count", n)
	}
	return n
}

// Defender is the defender the server counts failed logins with and
// refuses banned addresses by: ServerConfig.Defender or its own.
func (s *Server) Defender() *defender.Defender { return s.def }

// Connections lists the live connections, logged in or not.
func (s *Server) Connections() []activity.ConnInfo { return s.reg.snapshot() }

// emit delivers an upload event to OnUpload.
// touched reports that user set the time of the file at archive path p.
func (s *Server) touched(user, p string) {
	ev := activity.UploadEvent{Time: time.Now(), User: user, Path: p, Kind: activity.UploadTouched}
	if fi, err := s.root.Stat(strings.TrimPrefix(p, "/")); err == nil {
		ev.Size = fi.Size()
	}
	s.emit(ev)
}

func (s *Server) emit(ev activity.UploadEvent) {
	if s.cfg.OnUpload != nil {
		s.cfg.OnUpload(ev)
	}
}
