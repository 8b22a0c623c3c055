// Package ftptest runs syncer's FTP server in the test's own process, in
// the style of net/http/httptest: NewServer starts an ftpfs server on a
// loopback port over an archive root, with accounts ready before the port
// opens, and stops it when the test ends. RunClientSuite is the one suite
// that syncer's FTP client passes against any server, ours or another.
//
// The package is for tests, but is not a test file itself, so that the
// tests of several packages share it; it must not import internal/testkit
// (only _test.go files may).
package ftptest

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// DefaultUser is the agent account NewServer creates when no WithAccount
// option is given.
const DefaultUser = "node1"

// stopTimeout bounds Close: transfers still open after it are cut.
const stopTimeout = 10 * time.Second

// Server is an ftpfs server running in the test's process.
type Server struct {
	// Root is the archive root the server serves; StateDir its state
	// directory (self-signed certificate, users file).
	Root, StateDir string
	// Addr is the control connection's address, "127.0.0.1:PORT"; it stays
	// the same when the server is started again.
	Addr string
	// URL is "ftp://" + Addr, or "ftps://" + Addr when TLS is configured.
	URL string
	// User and Password are the first account's: DefaultUser and a random
	// password unless WithAccount chose others.
	User, Password string
	// Fingerprint is the pinnable SHA-256 fingerprint of the server's
	// certificate ("sha256:..."), "" without TLS.
	Fingerprint string
	// Users is the account database the server uses.
	Users *accounts.DB

	cfg ftpfs.ServerConfig

	mu  sync.Mutex
	srv *ftpfs.Server
}

// Option changes how NewServer sets up the server.
type Option func(*options)

type options struct {
	mods     []func(*ftpfs.ServerConfig)
	accounts []account
}

type account struct {
	u        accounts.User
	password string
}

// WithConfig lets mod change the server's configuration before it starts.
// NewServer's defaults: the given root, a temporary StateDir, ListenAddr
// "127.0.0.1:0", LoginFailDelay and BanAfter -1 (no delays or bans to slow
// tests that log in often), MaxConnsPerIP -1 (every client of a test is
// 127.0.0.1), and Users a users file in StateDir holding the
// accounts. When mod sets Users, NewServer adds the WithAccount accounts
// to that database and no default account.
func WithConfig(mod func(*ftpfs.ServerConfig)) Option {
	return func(o *options) { o.mods = append(o.mods, mod) }
}

// WithAccount adds an account with password, created before the port
// opens. The first one given replaces the default agent account and is
// the Server's User and Password.
func WithAccount(u accounts.User, password string) Option {
	return func(o *options) { o.accounts = append(o.accounts, account{u, password}) }
}

// NewServer starts an ftpfs server over root (a new temporary directory if
// root is ""), listening on a loopback port, and stops it when the test
// and its subtests have finished. Failures end the test.
func NewServer(t testing.TB, root string, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if root == "" {
		root = t.TempDir()
	}
	s := &Server{Root: root, StateDir: t.TempDir()}
	s.cfg = ftpfs.ServerConfig{
		Root: root, StateDir: s.StateDir, ListenAddr: "127.0.0.1:0",
		LoginFailDelay: -1, BanAfter: -1, MaxConnsPerIP: -1,
	}
	for _, mod := range o.mods {
		mod(&s.cfg)
	}
	s.Root, s.StateDir = s.cfg.Root, s.cfg.StateDir
	if s.cfg.Users == nil {
		if len(o.accounts) == 0 {
			o.accounts = []account{{accounts.User{Name: DefaultUser}, "pw-" + rand.Text()[:12]}}
		}
		s.cfg.Users = usersFile(t, filepath.Join(s.cfg.StateDir, accounts.FileName), o.accounts)
	} else {
		for _, a := range o.accounts {
			if err := s.cfg.Users.Add(a.u, a.password); err != nil {
				t.Fatalf("ftptest: add account %s: %v", a.u.Name, err)
			}
		}
	}
	s.Users = s.cfg.Users
	if len(o.accounts) > 0 {
		s.User, s.Password = o.accounts[0].u.Name, o.accounts[0].password
	}
	s.start(t, time.Now())
	s.Addr = s.FTP().Addr().String()
	s.cfg.ListenAddr = s.Addr // a restart comes back on the same port
	s.URL = "ftp://" + s.Addr
	if s.cfg.TLSSelfSigned || s.cfg.TLSCertFile != "" {
		s.URL = "ftps://" + s.Addr
		s.Fingerprint = s.FTP().TLSFingerprint()
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// usersFile writes a users file with the accounts, hashed at bcrypt's
// lowest cost (every login compares a hash; at the default cost, under the
// race detector, logins would dominate the tests), and opens it.
func usersFile(t testing.TB, path string, accts []account) *accounts.DB {
	t.Helper()
	var file struct {
		Users []accounts.User `yaml:"users"`
	}
	for _, a := range accts {
		h, err := bcrypt.GenerateFromPassword([]byte(a.password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("ftptest: hash password of %s: %v", a.u.Name, err)
		}
		u := a.u
		u.PasswordHash = string(h)
		file.Users = append(file.Users, u)
	}
	data, err := yaml.Marshal(file)
	if err != nil {
		t.Fatalf("ftptest: users file: %v", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("ftptest: users file: %v", err)
	}
	db, err := accounts.Open(path)
	if err != nil {
		t.Fatalf("ftptest: users file: %v", err)
	}
	return db
}

// start starts the server on cfg.ListenAddr. A restart on a fixed port
// retries while the port is still held by the server before it (a
// TIME_WAIT or a slow close), until ten seconds after since.
func (s *Server) start(t testing.TB, since time.Time) {
	t.Helper()
	for {
		srv, err := ftpfs.NewServer(s.cfg)
		if err != nil {
			t.Fatalf("ftptest: new server: %v", err)
		}
		err = srv.Start()
		if err == nil {
			s.mu.Lock()
			s.srv = srv
			s.mu.Unlock()
			return
		}
		if time.Since(since) > stopTimeout {
			t.Fatalf("ftptest: start server on %s: %v", s.cfg.ListenAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FTP returns the running ftpfs server (nil after Close), for its
// Connections, AddUser and the like.
func (s *Server) FTP() *ftpfs.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Close stops the server, cutting transfers that do not end within ten
// seconds, and returns Stop's error. Closing a closed server does nothing.
// NewServer arranges a Close at the end of the test.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		return fmt.Errorf("ftptest: stop server: %w", err)
	}
	return nil
}

// Start starts a closed server again with the same configuration, accounts
// and archive, on the same address, as a historian comes back after a
// restart. Failures end the test.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if s.FTP() != nil {
		t.Fatal("ftptest: Start of a running server")
	}
	s.start(t, time.Now())
}

// Local returns the file in Root that holds the archive path p.
func (s *Server) Local(p string) string {
	return filepath.Join(s.Root, filepath.FromSlash(p))
}

// Target describes the server to RunClientSuite, logging in as User, who
// writes under the account's home.
func (s *Server) Target() Target {
	cfg := ftpfs.ClientConfig{Server: s.URL, User: s.User, Password: s.Password, Fingerprint: s.Fingerprint,
		DialTimeout: 5 * time.Second, IOTimeout: 10 * time.Second}
	wrong := cfg
	wrong.Password = "wrong-" + s.Password
	dir := "/" + s.User
	if u, ok := s.Users.Lookup(s.User); ok {
		dir = u.Home
	}
	return Target{Name: "ftpfs", Config: cfg, WrongLogin: wrong, Dir: dir, Local: s.Local,
		Stop: func() { _ = s.Close() }, Start: s.Start}
}
