package historian

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/internal/defender"
	"github.com/syncer-dev/syncer/internal/statelock"
	"github.com/syncer-dev/syncer/tier"
)

// DefaultStopTimeout bounds an orderly shutdown when Config.StopTimeout is 0.
const DefaultStopTimeout = 15 * time.Second

// Config configures a Historian. Archive and State are required; the
// zero value of every other field is a working default.
type Config struct {
	// Archive is where archived bytes live: the FTP server writes there, the
	// index, the web viewer and the FUSE view read from there.
	Archive Archive
	// State is the state directory (created if missing): users file, TLS
	// certificate, index and the lock that keeps a second historian out.
	State string
	// UsersFile is the accounts file; default <State>/users.yaml, created
	// empty if missing. Changes to it apply without a restart.
	UsersFile string
	// FTPAddr is the FTP listen address; default ftpfs.DefaultListenAddr.
	FTPAddr string
	// HTTPAddr is the web viewer's listen address; "" runs no web viewer.
	// The viewer requires a login (basic auth against the users file, or
	// an API token from <State>/tokens.json) unless HTTPNoLogin. Off
	// loopback it needs HTTPS; on loopback it answers only to loopback
	// Host names (DNS rebinding).
	HTTPAddr string
	// HTTPTLSCertFile and HTTPTLSKeyFile make the viewer speak HTTPS with
	// this certificate. Without them, the viewer speaks HTTPS with the FTP
	// server's certificate when there is one (TLSCertFile or
	// TLSSelfSigned), plain HTTP otherwise (loopback only).
	HTTPTLSCertFile, HTTPTLSKeyFile string
	// HTTPNoLogin lets every request in as an admin viewer, without a
	// login; only with a loopback HTTPAddr.
	HTTPNoLogin bool
	// Mount, if set, is a directory where the read-only FUSE view of the
	// archive is mounted (Linux, root). It shows the archived files' modes
	// and owners, and the kernel enforces them (default_permissions).
	Mount string
	// MountAllowOther lets users other than the historian's read the
	// mount (FUSE allow_other), each as the archived files' modes allow;
	// without it, only the historian's user may use the mount at all.
	MountAllowOther bool

	// The FTP server's settings, as in ftpfs.ServerConfig.
	PassivePorts                   ftpfs.PortRange
	PublicHost                     string
	TLSCertFile, TLSKeyFile        string
	TLSSelfSigned, TLSRequired     bool
	MaxUploadRate, MaxDownloadRate accounts.Rate
	MaxConns, MaxConnsPerUser      int
	MaxUnauthConns, MaxConnsPerIP  int
	LoginTimeout, IdleTimeout      time.Duration

	// TLSHosts are the names a self-signed certificate is made for
	// (ftpfs.ServerConfig's; default: the FTP listen address and the
	// public host).
	TLSHosts []string
	// TLSCheckEvery is how often the certificates are checked while the
	// historian runs (default ftpfs.DefaultTLSCheckEvery): a self-signed
	// one is renewed within 30 days of its end, files that changed are
	// read again.
	TLSCheckEvery time.Duration
	// Now is the clock certificates are judged by; nil means time.Now.
	// Tests set it.
	Now func() time.Time
	// TLSDataNoReuse is ftpfs.ServerConfig's TLSAllowDataWithoutReuse.
	TLSDataNoReuse bool

	// ArchiveFileMode and ArchiveDirMode are the modes of what the FTP
	// server creates in the archive (ftpfs.ServerConfig's), and of the
	// archive directory if the historian creates it.
	ArchiveFileMode, ArchiveDirMode ftpfs.Mode

	// Reload, if set, makes the historian re-read the users file each time
	// a value arrives (the command wires SIGHUP to it). The file is also
	// re-read when it changes.

	// Defender is the failed-login record and ban list the FTP server and
	// the web viewer share; nil makes one with the defaults. Its
	// bans are kept in <State>/bans.json, which `syncer ban list|remove`
	// read and edit: the historian re-reads it every second and on each
	// value from Reload.
	Defender *defender.Defender

	// Reload, if set, makes the historian re-read the users file and the
	// bans file each time a value arrives (the command wires SIGHUP to it).
	// The files are also re-read when they change.
	Reload <-chan os.Signal
	// Version is the version the web viewer shows and the FTP server tells
	// agents that logged in.
	Version string
	// StopTimeout bounds the orderly shutdown (default DefaultStopTimeout):
	// open transfers and web requests are cut when it runs out.
	StopTimeout time.Duration
	// Logger receives the historian's log; nil discards.
	Logger *slog.Logger

	// Tier, if set, keeps sealed bytes in an S3-compatible bucket (package
	// tier): its State, Root, FileMode, DirMode and Logger are the
	// historian's. nil keeps the archive on the local disk only.
	Tier *tier.Config
}

// ConfigError is a Config field whose value cannot be used: the caller's to
// fix, not a failure of the running historian. Field is the Config field's
// name ("" when the error names what is wrong itself), Value its value.
type ConfigError struct {
	Field, Value string
	Err          error
}

func (e *ConfigError) Error() string {
	switch {
	case e.Field == "":
		return e.Err.Error()
	case e.Value == "":
		return e.Field + ": " + e.Err.Error()
	}
	return e.Field + " " + e.Value + ": " + e.Err.Error()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Historian is the server side of syncer: the FTP server that agents push
// to, the index of the archive, the web viewer and the FUSE view, started
// in order and stopped in the reverse order. Run it once.
type Historian struct {
	cfg Config
	log *slog.Logger

	ran    atomic.Bool
	ready  chan struct{}
	failed chan error // a component that stopped by itself; buffered, first one wins

	// Set while Run starts the components; read after Ready.
	users   *accounts.DB
	tokens  *accounts.Tokens
	certs   *ftpfs.CertSource // the FTP server's, nil without TLS
	webTLS  *ftpfs.CertSource // the web viewer's, nil for plain HTTP
	def     *defender.Defender
	bans    *defender.File
	index   *indexSide
	tier    *tier.Tier                   // nil without Config.Tier
	ftp     atomic.Pointer[ftpfs.Server] // read by the users file's watch
	httpLn  net.Listener
	httpSrv *http.Server
	// limiters are the accounts' token buckets, shared by the FTP server
	// and the web viewer: one download budget per account, whichever
	// door it comes through.
	limiters *accounts.Limiters
}

// New checks cfg and returns a Historian that Run starts; New itself
// creates, opens and listens on nothing. Errors are *ConfigError.
func New(cfg Config) (*Historian, error) {
	switch {
	case cfg.Archive == nil || cfg.Archive.Dir() == "":
		return nil, &ConfigError{Field: "Archive", Err: errors.New("required (the archive directory)")}
	case cfg.State == "":
		return nil, &ConfigError{Field: "State", Err: errors.New("required (the historian's state directory)")}
	case cfg.StopTimeout < 0:
		return nil, &ConfigError{Field: "StopTimeout", Value: cfg.StopTimeout.String(), Err: errors.New("must not be negative")}
	}
	if field, err := ftpfs.CheckArchiveModes(cfg.ArchiveFileMode, cfg.ArchiveDirMode); err != nil {
		v := cfg.ArchiveFileMode
		if field == "ArchiveDirMode" {
			v = cfg.ArchiveDirMode
		}
		return nil, &ConfigError{Field: field, Value: v.String(), Err: err}
	}
	for _, h := range cfg.TLSHosts {
		if err := ftpfs.CheckTLSHost(h); err != nil {
			return nil, &ConfigError{Field: "TLSHosts", Value: h, Err: err}
		}
	}
	if err := checkWebConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.UsersFile == "" {
		cfg.UsersFile = filepath.Join(cfg.State, "users.yaml")
	}
	if cfg.FTPAddr == "" {
		cfg.FTPAddr = ftpfs.DefaultListenAddr
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Historian{cfg: cfg, log: log, ready: make(chan struct{}), failed: make(chan error, 1), limiters: accounts.NewLimiters()}, nil
}

// Run starts the components in order: state directory (locked), TLS
// certificates, bans file, users and tokens files, index, FUSE view, FTP
// server, web viewer. If one fails to start,
// those already started are stopped in the reverse order and its error is
// returned. Otherwise Run serves until ctx is cancelled or a component
// fails by itself, then stops everything in the reverse order: web viewer,
// FTP server (its last upload events reach the index), FUSE view, index
// (applied, synced and closed), lock. It returns nil after an orderly stop
// on cancellation, the failure that ended it otherwise, or the first error
// of the shutdown. Configuration errors are *ConfigError.
func (h *Historian) Run(ctx context.Context) error {
	if !h.ran.CompareAndSwap(false, true) {
		return errors.New("historian: Run called twice")
	}
	started, err := startAll(ctx, h.stages(), h.cfg.StopTimeout, h.log)
	if err != nil {
		return err
	}
	close(h.ready)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-h.failed:
		h.log.Error("stopping: a component failed", "err", runErr)
	}
	h.log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), h.cfg.StopTimeout)
	defer cancel()
	stopErr := stopAll(stopCtx, started, h.log)
	switch {
	case runErr != nil:
		return runErr
	case stopErr != nil:
		return stopErr
	}
	h.log.Info("stopped")
	return nil
}

// Ready is closed once Run has started every component.
func (h *Historian) Ready() <-chan struct{} { return h.ready }

// FTPAddr is the FTP server's listen address; valid after Ready.
func (h *Historian) FTPAddr() net.Addr { return h.ftp.Load().Addr() }

// HTTPAddr is the web viewer's listen address, nil without one; valid
// after Ready.
func (h *Historian) HTTPAddr() net.Addr {
	if h.httpLn == nil {
		return nil
	}
	return h.httpLn.Addr()
}

// fail ends Run with err, unless something else ended it first.
func (h *Historian) fail(err error) {
	select {
	case h.failed <- err:
	default:
	}
}

// stages are the components in start order.
func (h *Historian) stages() []stage {
	st := []stage{
		{name: "state directory", start: h.startState},
	}
	if h.cfg.TLSCertFile != "" || h.cfg.TLSSelfSigned || (h.cfg.HTTPAddr != "" && h.cfg.HTTPTLSCertFile != "") {
		st = append(st, stage{name: "tls certificates", start: h.startTLS})
	}
	st = append(st,
		stage{name: "bans file", start: h.startBans},
		stage{name: "users file", start: h.startUsers},
	)
	if h.cfg.Tier != nil {
		st = append(st, stage{name: "storage tier", start: h.startTier})
	}
	st = append(st, stage{name: "index", start: h.startIndex})
	if h.cfg.Tier != nil {
		st = append(st, stage{name: "sealing", start: h.startSealing})
	}
	if h.cfg.Mount != "" {
		// Before the FTP server: no agent uploads to a historian whose
		// view is about to fail. Unmounted after it, before the index
		// closes: the view reads from the index.
		st = append(st, stage{name: "fuse view", start: h.startMount})
	}
	st = append(st, stage{name: "ftp server", start: h.startFTP})
	if h.cfg.HTTPAddr != "" {
		st = append(st, stage{name: "http server", start: h.startHTTP})
	}
	return st
}

// startState creates the archive and state directories and locks the
// state directory against a second historian.
func (h *Historian) startState(context.Context) (stop func(context.Context) error, err error) {
	if err := makeArchiveDir(h.cfg.Archive.Dir(), h.cfg.ArchiveDirMode); err != nil {
		return nil, &ConfigError{Field: "Archive", Err: err}
	}
	if err := os.MkdirAll(h.cfg.State, 0o700); err != nil {
		return nil, &ConfigError{Field: "State", Err: err}
	}
	release, err := statelock.Dir(h.cfg.State)
	if err != nil {
		return nil, err
	}
	return func(context.Context) error { release(); return nil }, nil
}

// makeArchiveDir creates the archive directory, if missing, with the
// archive's directory mode (exactly: it is the mount's root too); an
// existing one keeps its mode.
func makeArchiveDir(dir string, mode ftpfs.Mode) error {
	if mode == 0 {
		mode = ftpfs.DefaultArchiveDirMode
	}
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, fs.FileMode(mode)); err != nil {
		return err
	}
	return os.Chmod(dir, fs.FileMode(mode))
}

// startBans makes or takes the defender and keeps its bans in the state
// directory's bans file, so that bans outlive a restart and operators can
// list and lift them with `syncer ban`.
func (h *Historian) startBans(context.Context) (stop func(context.Context) error, err error) {
	h.def = h.cfg.Defender
	if h.def == nil {
		if h.def, err = defender.New(defender.Config{}); err != nil {
			return nil, &ConfigError{Field: "Defender", Err: err}
		}
	}
	path := filepath.Join(h.cfg.State, defender.FileName)
	f, err := defender.KeepFile(h.def, path, h.log)
	if err != nil {
		return nil, &ConfigError{Field: "State", Value: h.cfg.State, Err: err}
	}
	h.bans = f
	if n := len(h.def.Bans()); n > 0 {
		h.log.Info("bans restored", "bans_file", path, "bans", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Watch(ctx) }()
	return func(context.Context) error { cancel(); <-done; f.Close(); return nil }, nil
}

// Defender is the historian's defender; valid after Ready.
func (h *Historian) Defender() *defender.Defender { return h.def }

// startUsers opens the users file and keeps it current: re-read when it
// changes and on every value from Config.Reload.
func (h *Historian) startUsers(context.Context) (stop func(context.Context) error, err error) {
	path := h.cfg.UsersFile
	// An empty users file from the start lets the watch and SIGHUP reload
	// it like any other; "syncer user add" fills it.
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(path, []byte("# syncer users file: manage it with `syncer user`\n"), 0o600); err != nil {
			return nil, &ConfigError{Field: "UsersFile", Value: path, Err: err}
		}
	}
	users, err := accounts.Open(path)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	if len(users.List()) == 0 {
		h.log.Warn("the users file has no accounts yet; add one with `syncer user add`", "users_file", path)
	}
	h.users = users
	if h.tokens, err = accounts.OpenTokens(filepath.Join(h.cfg.State, accounts.TokensFileName)); err != nil {
		return nil, &ConfigError{Err: err}
	}
	// The FTP server starts after the users: changes reach it once it is
	// there.
	changed := func() {
		if srv := h.ftp.Load(); srv != nil {
			srv.UsersChanged()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); users.Watch(ctx, h.log, changed) }()
	go func() { defer wg.Done(); h.reloadLoop(ctx, changed) }()
	return func(context.Context) error { cancel(); wg.Wait(); return nil }, nil
}

// reloadLoop re-reads the bans file and the users file on each value from
// Config.Reload.
func (h *Historian) reloadLoop(ctx context.Context, changed func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.cfg.Reload: // nil: never
			if err := h.bans.Reload(); err != nil {
				h.log.Error("reload bans file on SIGHUP; keeping the bans", "err", err)
			}
			if err := h.users.Reload(); err != nil {
				h.log.Error("reload users file on SIGHUP; keeping the previous accounts", "err", err)
				continue
			}
			h.log.Info("users file reloaded on SIGHUP", "users_file", h.cfg.UsersFile, "accounts", len(h.users.List()))
			changed()
		}
	}
}

// startIndex opens the index and keeps it up to date; its stop applies
// the last upload events, syncs and closes it.
func (h *Historian) startIndex(context.Context) (stop func(context.Context) error, err error) {
	ix, err := openIndex(h.cfg, h.content(), h.log, h.fail)
	if err != nil {
		return nil, &ConfigError{Field: "State", Value: h.cfg.State, Err: err}
	}
	h.index = ix
	return func(context.Context) error { return ix.close() }, nil
}

// startMount mounts the FUSE view.
func (h *Historian) startMount(context.Context) (stop func(context.Context) error, err error) {
	if err := h.index.mount(h.cfg, h.content()); err != nil {
		return nil, err
	}
	return func(context.Context) error { return h.index.unmount() }, nil
}

// startFTP starts the FTP server; its stop cuts open transfers when ctx
// runs out.
func (h *Historian) startFTP(context.Context) (stop func(context.Context) error, err error) {
	c := h.cfg
	srv, err := ftpfs.NewServer(ftpfs.ServerConfig{
		Root:            c.Archive.Dir(),
		Version:         c.Version,
		StateDir:        c.State,
		Users:           h.users,
		ListenAddr:      c.FTPAddr,
		PassivePorts:    c.PassivePorts,
		PublicHost:      c.PublicHost,
		TLSCertSource:   h.certs, // TLSCertFile or TLSSelfSigned (tls.go)
		TLSRequired:     c.TLSRequired,
		TLSHosts:        c.TLSHosts,
		ArchiveFileMode: c.ArchiveFileMode,
		ArchiveDirMode:  c.ArchiveDirMode,
		MaxUploadRate:   c.MaxUploadRate,
		MaxDownloadRate: c.MaxDownloadRate,
		Limiters:        h.limiters,
		MaxConns:        c.MaxConns,
		MaxConnsPerUser: c.MaxConnsPerUser,
		MaxUnauthConns:  c.MaxUnauthConns,
		MaxConnsPerIP:   c.MaxConnsPerIP,
		LoginTimeout:    c.LoginTimeout,
		IdleTimeout:     c.IdleTimeout,
		Defender:        h.def,
		Logger:          h.log,
		OnUpload:        h.index.onUpload,

		TLSAllowDataWithoutReuse: c.TLSDataNoReuse,
	})
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	if err := srv.Start(); err != nil {
		return nil, &ConfigError{Field: "FTPAddr", Value: c.FTPAddr, Err: err}
	}
	h.ftp.Store(srv)
	return srv.Stop, nil
}

// startHTTP starts the web viewer; a failure while serving stops the
// historian.
func (h *Historian) startHTTP(context.Context) (stop func(context.Context) error, err error) {
	hs, err := h.index.httpServer(h.cfg, h.content(), h.ftp.Load(), h.users, h.tokens, h.def, h.limiters)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", h.cfg.HTTPAddr)
	if err != nil {
		return nil, &ConfigError{Field: "HTTPAddr", Value: h.cfg.HTTPAddr, Err: err}
	}
	h.httpLn, h.httpSrv = ln, hs
	done := make(chan struct{})
	serve := hs.Serve
	if h.webTLS != nil {
		hs.TLSConfig = h.webTLS.TLSConfig()
		serve = func(ln net.Listener) error { return hs.ServeTLS(ln, "", "") }
	}
	go func() {
		defer close(done)
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.fail(fmt.Errorf("http server: %w", err))
		}
	}()
	if h.webTLS != nil {
		h.log.Info("https server listening", "addr", ln.Addr().String(), "tls_fingerprint", h.webTLS.Fingerprint(), "login", !h.cfg.HTTPNoLogin)
	} else {
		h.log.Info("http server listening", "addr", ln.Addr().String(), "login", !h.cfg.HTTPNoLogin)
	}
	return func(ctx context.Context) error {
		err := hs.Shutdown(ctx)
		<-done
		if err != nil {
			return fmt.Errorf("stop http server: %w", err)
		}
		return nil
	}, nil
}
