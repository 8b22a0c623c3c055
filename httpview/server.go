// Package httpview is the historian's web side: the JSON API over the
// index (agents, listings, file metadata, name and content search, live FTP
// connections), raw file bytes, /healthz and Prometheus /metrics. The web
// viewer's pages are built on the same Server.
//
// # Security
//
// Every path parameter is checked before anything is looked up: a path
// with "..", ".", empty elements, NUL or an encoded slash is refused with
// 400, however it was encoded; files are opened through os.Root, so a
// symbolic link out of the archive root fails (404). The viewer never
// writes into the archive. With Config.RequireAuth, every request except
// /healthz needs a login: HTTP basic auth against the users file, or an
// API token (Config.Tokens) as "Authorization: Bearer TOKEN". An account
// sees only what its FTP permissions allow: an agent account its own tree
// (letters l to list, r to read), an admin everything; a token its agent's
// tree, or everything. Logins are refused over plain HTTP from peers off
// loopback (auth.go). With Config.LoopbackOnly, a request whose Host is
// not a loopback name is refused (DNS rebinding).
//
// With Config.Defender, web logins count with the FTP server's: a request
// from a banned address is refused with 429 Too Many Requests and a
// Retry-After (seconds to the ban's end) before any password is checked,
// every password check waits its turn in the defender's bounded line
// (503 Service Unavailable and Retry-After when none is free within
// loginWait), and every failed web login counts towards a ban (service
// "http"). The address is the TCP peer, never X-Forwarded-For: the viewer
// is not configured to trust any proxy.
package httpview

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/internal/defender"
	"github.com/syncer-dev/syncer/store"
)

// Overview describes the service for the overview page and API.
type Overview struct {
	FTPAddr string `json:"ftp_addr"`
	// ArchiveRoot is the archive's directory on the historian's disk;
	// only admins are told it (see Server.service).
	ArchiveRoot     string        `json:"archive_root,omitempty"`
	MaxUploadRate   accounts.Rate `json:"max_upload_rate"`
	MaxDownloadRate accounts.Rate `json:"max_download_rate"`
	TLS             bool          `json:"tls"`
	TLSRequired     bool          `json:"tls_required"`
	Version         string        `json:"version,omitempty"`
}

// Config configures a Server.
type Config struct {
	// Index answers listings, metadata and search; required.
	Index *store.Index
	// Root is the archive root; /raw and grep read files below it.
	Root string
	// Content, if set, opens the archived files' bytes (the historian's
	// storage tier, which serves bytes evicted from Root); nil reads them
	// from Root.
	Content archive.Opener
	// Connections lists the live FTP sessions (ftpfs.Server.Connections);
	// nil means none.
	Connections func() []activity.ConnInfo
	// Users authenticates and authorises requests when RequireAuth is set,
	// and lists agents that never pushed.
	Users *accounts.DB
	// RequireAuth demands a login: HTTP basic auth against Users, or a
	// bearer token from Tokens. Credentials are refused over plain HTTP
	// from any peer but loopback (see auth.go).
	RequireAuth bool
	// Tokens, if set, are the API tokens accepted as "Authorization:
	// Bearer TOKEN" when RequireAuth is set; the file is re-read when it
	// changes.
	Tokens *accounts.Tokens
	// LoopbackOnly refuses every request whose Host is not a loopback
	// name or address (localhost, 127.0.0.0/8, [::1], any port), with 421:
	// set it when the viewer listens on loopback only, so that a web page
	// cannot reach it by DNS rebinding.
	LoopbackOnly bool
	// Defender, if set, counts failed web logins, refuses banned
	// addresses and bounds the password checks; share the FTP server's so
	// that both count failures together and share bans. nil: no delay,
	// ban or bound (a library user's or a test's server).
	Defender *defender.Defender
	Overview Overview
	// MaxDownloadRate limits, per account, the bytes of archived files the
	// viewer sends (raw files, downloads, file views, search results), in
	// bytes per second; an account's own MaxDownloadRate overrides it; 0
	// is unlimited. Viewers without an account share one bucket at this
	// rate.
	MaxDownloadRate accounts.Rate
	// Limiters holds the accounts' token buckets; share the FTP server's
	// (ftpfs.ServerConfig.Limiters) so that an account has one download
	// budget for both. nil: the viewer keeps its own.
	Limiters *accounts.Limiters
	// HeavyOps bounds the heavy operations (.gz file views, content
	// search, search in a file, directory downloads) that run at once; 0
	// means the number of CPUs, at least 2.
	HeavyOps int
	// Metrics collects upload counters; nil makes a new one.
	Metrics *Metrics
	// Logger receives errors; nil discards.
	Logger *slog.Logger
	// Now is the clock for agent status; nil means time.Now.
	Now func() time.Time
}

// Server serves the API. Create it with New; Handler is its http.Handler.
type Server struct {
	cfg      Config
	idx      *store.Index
	root     *os.Root
	log      *slog.Logger
	engine   *gin.Engine
	metrics  *Metrics
	now      func() time.Time
	authMu   sync.Mutex
	authSeen map[[32]byte]authEntry
	// loginWait bounds a login's wait for a password check
	// (defaultLoginWait; tests shorten it).
	loginWait  time.Duration
	tokenErrMu sync.Mutex
	tokenErr   string   // the tokens file's last reload error, logged once
	ui         *uiState // the viewer's pages (ui.go)
	limiters   *accounts.Limiters
	heavyOps   *heavyGate
}

// authEntry caches a successful basic-auth check, so that a page that makes
// many requests costs one bcrypt comparison a minute, not one each.
type authEntry struct {
	name    string
	expires time.Time
}

const authCacheTTL = time.Minute

// ErrConfig is returned by New for an unusable Config.
var ErrConfig = errors.New("httpview: bad config")

// New checks cfg and builds the server's routes.
func New(cfg Config) (*Server, error) {
	if cfg.Index == nil {
		return nil, fmt.Errorf("%w: Index is required", ErrConfig)
	}
	if cfg.RequireAuth && cfg.Users == nil {
		return nil, fmt.Errorf("%w: RequireAuth needs Users", ErrConfig)
	}
	abs, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("%w: Root %q: %v", ErrConfig, cfg.Root, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: Root %q: %v", ErrConfig, cfg.Root, err)
	}
	if cfg.Connections == nil {
		cfg.Connections = func() []activity.ConnInfo { return nil }
	}
	s := &Server{cfg: cfg, idx: cfg.Index, root: root, metrics: cfg.Metrics, now: cfg.Now, authSeen: map[[32]byte]authEntry{}, loginWait: defaultLoginWait}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.limiters = cfg.Limiters
	if s.limiters == nil {
		s.limiters = accounts.NewLimiters()
	}
	s.heavyOps = newHeavyGate(cfg.HeavyOps)
	s.metrics.register(cfg.Index, cfg.Connections, func() []AgentJSON { return s.agentRows(viewer{accounts.User{Admin: true, Home: "/"}}) })
	s.engine = s.routes()
	return s, nil
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.engine }

// Close releases the archive root.
func (s *Server) Close() error { return s.root.Close() }

// RequiresAuth reports whether listening on addr (HOST:PORT) exposes the
// viewer beyond this machine: anything but a loopback address (an empty
// host or 0.0.0.0 listens everywhere). There a login can never be
// switched off, and the historian wants HTTPS; on loopback, the viewer
// should set Config.LoopbackOnly.
func RequiresAuth(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip == nil || !ip.IsLoopback()
}

func init() { gin.SetMode(gin.ReleaseMode) }

func (s *Server) routes() *gin.Engine {
	r := gin.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.Use(s.recoverer, securityHeaders, s.checkHost)
	r.NoRoute(func(c *gin.Context) {
		// A browser asking for a page gets one (with the site's layout, so
		// that it is a proper document); scripts get JSON.
		if !strings.HasPrefix(c.Request.URL.Path, "/api/") && strings.Contains(c.GetHeader("Accept"), "text/html") {
			s.pageError(c, http.StatusNotFound, "no such page")
			return
		}
		apiError(c, http.StatusNotFound, "no such page")
	})
	r.NoMethod(func(c *gin.Context) { apiError(c, http.StatusMethodNotAllowed, "method not allowed") })
	r.GET("/healthz", s.healthz)

	a := r.Group("/", s.authenticate)
	a.GET("/metrics", s.requireAdmin, s.metrics.handler())
	api := a.Group("/api/v1")
	api.GET("/overview", s.overview)
	api.GET("/agents", s.agents)
	api.GET("/files", s.files)
	api.GET("/files/*path", s.files)
	api.GET("/search", s.search)
	api.GET("/grep", s.heavy, s.rateLimited, s.grep)
	api.GET("/timeline", s.heavy, s.rateLimited, s.timeline)
	api.GET("/connections", s.connections)
	api.GET("/bans", s.requireAdmin, s.bans)
	api.DELETE("/bans/:addr", s.sameOrigin, s.requireAdmin, s.unban)
	a.GET("/raw/*path", s.rateLimited, s.raw)
	a.HEAD("/raw/*path", s.raw)
	s.mountUI(r, a) // the viewer's pages: ui.go
	return r
}

// securityHeaders go on every reply. The CSP allows the viewer's own
// embedded scripts, styles and images and nothing else: no inline script,
// no framing, no third-party origin.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	c.Next()
}

func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("http handler panic", "path", c.Request.URL.Path, "panic", v)
			if !c.Writer.Written() {
				apiError(c, http.StatusInternalServerError, "internal error")
			}
			c.Abort()
		}
	}()
	c.Next()
}

// apiError ends the request with {"error": msg}.
func apiError(c *gin.Context, status int, msg string) {
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

func (s *Server) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	select {
	case <-s.idx.Ready():
		c.String(http.StatusOK, "ok")
	default:
		c.String(http.StatusOK, "ok (index catching up with the archive)")
	}
}

// viewer is the account a request acts as.
type viewer struct {
	accounts.User
}

const viewerKey = "syncer.viewer"

func (s *Server) viewerOf(c *gin.Context) viewer {
	if v, ok := c.Get(viewerKey); ok {
		return v.(viewer)
	}
	return viewer{}
}

// defaultLoginWait bounds how long a web login waits in the defender's
// line for a password check: about a browser's patience, like the FTP
// login deadline.
const defaultLoginWait = 20 * time.Second

// authenticate sets the request's viewer: everyone is an admin without
// RequireAuth; otherwise a bearer token or basic auth against the users
// file, through the defender when there is one, and only over HTTPS or
// from loopback.
func (s *Server) authenticate(c *gin.Context) {
	if !s.cfg.RequireAuth {
		c.Set(viewerKey, viewer{accounts.User{Name: "", Admin: true, Perm: "elr", Home: "/"}})
		c.Next()
		return
	}
	// Security: the TCP peer, not gin's ClientIP, which believes any
	// client's X-Forwarded-For (gin trusts every proxy by default): a
	// guesser would name a fresh address with each guess.
	peer := c.Request.RemoteAddr
	if refusePlainHTTP(c, peer) {
		return
	}
	def := s.cfg.Defender
	if def != nil {
		// Refused before anything else, also with a cached password: the
		// FTP server closes a banned address's connections too.
		if until, banned := def.Banned(peer); banned {
			s.log.Info("http request refused: address banned", "remote", peer, "until", until)
			retryAfter(c, time.Until(until))
			apiError(c, http.StatusTooManyRequests, "too many failed logins from this address; try again later")
			return
		}
	}
	if token, ok := bearerToken(c.Request); ok {
		s.authenticateToken(c, peer, token)
		return
	}
	name, pass, ok := c.Request.BasicAuth()
	if !ok {
		s.challenge(c)
		return
	}
	u, err := s.check(c.Request.Context(), peer, name, pass)
	switch {
	case err != nil && c.Request.Context().Err() != nil:
		c.Abort() // the client left
		return
	case errors.Is(err, defender.ErrBanned):
		until, _ := def.Banned(peer)
		retryAfter(c, time.Until(until))
		apiError(c, http.StatusTooManyRequests, "too many failed logins from this address; try again later")
		return
	case errors.Is(err, defender.ErrBusy):
		s.log.Warn("http login refused: no password check free in time", "remote", peer, "wait", s.loginWait)
		retryAfter(c, 5*time.Second)
		apiError(c, http.StatusServiceUnavailable, "too many logins in progress; try again later")
		return
	case err != nil:
		// The password is never logged; the name may be a typo'd password.
		s.log.Info("http login failed", "remote", peer)
		s.challenge(c)
		return
	}
	c.Set(viewerKey, viewer{u})
	c.Next()
}

// retryAfter sets Retry-After to d in whole seconds, at least one.
func retryAfter(c *gin.Context, d time.Duration) {
	c.Header("Retry-After", fmt.Sprint(max(1, int64((d+time.Second-1)/time.Second))))
}

func (s *Server) challenge(c *gin.Context) {
	c.Header("WWW-Authenticate", `Basic realm="syncer", charset="UTF-8"`)
	if s.cfg.Tokens != nil {
		c.Writer.Header().Add("WWW-Authenticate", `Bearer realm="syncer"`)
	}
	apiError(c, http.StatusUnauthorized, "authentication required")
}

// check authenticates name and pass from peer, through the cache of
// recent successes. The cache key is a hash of both, so a changed
// password misses it; the account itself is looked up every time, so a
// removed account or changed permissions apply at once. A miss checks
// the password through the defender, if any (see Defender.Check); a hit
// costs no bcrypt and is no guess, so it does not.
func (s *Server) check(ctx context.Context, peer, name, pass string) (accounts.User, error) {
	key := sha256.Sum256([]byte(name + "\x00" + pass))
	now := time.Now()
	s.authMu.Lock()
	e, hit := s.authSeen[key]
	s.authMu.Unlock()
	if hit && now.Before(e.expires) && e.name == name {
		if u, ok := s.cfg.Users.Lookup(name); ok {
			return u, nil
		}
	}
	var u accounts.User
	verify := func() error {
		var err error
		u, err = s.cfg.Users.Authenticate(name, pass)
		return err
	}
	var err error
	if s.cfg.Defender == nil {
		err = verify()
	} else {
		ctx, cancel := context.WithTimeout(ctx, s.loginWait)
		err = s.cfg.Defender.Check(ctx, peer, name, "http", verify)
		cancel()
	}
	if err != nil {
		return accounts.User{}, err
	}
	s.authMu.Lock()
	if len(s.authSeen) > 10000 {
		s.authSeen = map[[32]byte]authEntry{}
	}
	s.authSeen[key] = authEntry{name: name, expires: now.Add(authCacheTTL)}
	s.authMu.Unlock()
	return u, nil
}

func (s *Server) requireAdmin(c *gin.Context) {
	if !s.viewerOf(c).Admin {
		apiError(c, http.StatusForbidden, "admin accounts only")
		return
	}
	c.Next()
}

// within reports whether archive path p is dir or below it.
func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// can reports whether the viewer may use letter on archive path p (the
// FTP confinement rule: an agent account has its letters under its home).
func (v viewer) can(p string, letter byte) bool {
	if !v.Admin && !within(p, v.Home) {
		return false
	}
	return strings.IndexByte(v.Perm, letter) >= 0
}

// sees reports whether p is on the way to, or inside, the viewer's home:
// the agent list and the root listing show those.
func (v viewer) sees(p string) bool {
	return v.Admin || within(p, v.Home) || within(v.Home, p)
}
