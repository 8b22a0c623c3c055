package ftpfs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/internal/defender"
)

// mainDriver is ftpserverlib's MainDriver: settings, connection life cycle,
// login and TLS.
type mainDriver struct {
	s *Server
}

var (
	_ ftpserver.MainDriver                       = (*mainDriver)(nil)
	_ ftpserver.MainDriverExtensionTLSVerifier   = (*mainDriver)(nil)
	_ ftpserver.MainDriverExtensionQuitMessage   = (*mainDriver)(nil)
	_ ftpserver.MainDriverExtensionUserVerifier  = (*mainDriver)(nil)
	_ ftpserver.MainDriverExtensionDataTLSConfig = (*mainDriver)(nil)
)

// GetSettings returns the settings built by NewServer.
func (d *mainDriver) GetSettings() (*ftpserver.Settings, error) { return d.s.settings, nil }

// ClientConnected attaches the session the listener registered to cc.
func (d *mainDriver) ClientConnected(cc ftpserver.ClientContext) (string, error) {
	sess := d.s.reg.lookup(cc.RemoteAddr().String())
	if sess == nil {
		// Cannot happen: every connection comes from trackingListener.
		return "internal error", errors.New("unregistered connection")
	}
	sess.mu.Lock()
	sess.id = cc.ID()
	sess.cc = cc
	sess.mu.Unlock()
	cc.SetExtra(sess)
	d.s.log.Debug("client connected", "id", cc.ID(), "remote", cc.RemoteAddr().String())
	return "syncer FTP server ready", nil
}

// ClientDisconnected forgets the session and releases its resources.
func (d *mainDriver) ClientDisconnected(cc ftpserver.ClientContext) {
	sess, _ := cc.Extra().(*session)
	if sess == nil {
		sess = d.s.reg.lookup(cc.RemoteAddr().String())
	}
	if sess == nil {
		return
	}
	d.s.reg.remove(sess)
	sess.mu.Lock()
	h := sess.handler
	user := sess.user
	sess.mu.Unlock()
	if h != nil {
		h.close()
	}
	d.s.log.Debug("client disconnected", "id", cc.ID(), "user", user, "remote", cc.RemoteAddr().String())
	d.s.sessions.Done()
}

// PreAuthUser refuses anonymous logins, and every USER from a banned
// address (also on connections opened before the ban), at USER already.
func (d *mainDriver) PreAuthUser(cc ftpserver.ClientContext, user string) error {
	if until, ok := d.s.def.Banned(hostOf(cc.RemoteAddr())); ok {
		d.s.log.Warn("login refused: address banned", "remote", cc.RemoteAddr().String(), "until", until.UTC().Format(time.RFC3339))
		return fmt.Errorf("too many failed logins from this address; try again after %s", until.UTC().Format(time.RFC3339))
	}
	if isAnonymous(user) {
		d.s.log.Warn("anonymous login refused", "remote", cc.RemoteAddr().String())
		return errors.New("anonymous login is not allowed")
	}
	return nil
}

// isAnonymous: anonymous FTP is never possible on an archive, whatever the
// users file says, because "anonymous"/"ftp" with any password is the
// convention clients use for it.
func isAnonymous(user string) bool {
	u := strings.ToLower(user)
	return u == "anonymous" || u == "ftp" || u == ""
}

// VerifyConnection records the TLS control connection; a password is still
// required (client certificates are not used).
func (d *mainDriver) VerifyConnection(cc ftpserver.ClientContext, _ string, tlsConn *tls.Conn) (ftpserver.ClientDriver, error) {
	if sess, _ := cc.Extra().(*session); sess != nil {
		sess.mu.Lock()
		sess.tlsConn = tlsConn
		sess.mu.Unlock()
	}
	return nil, nil
}

// PostAuthMessage is the text of the reply to PASS. A successful login
// tells the client the server's version and clock ("230 Logged in as
// node1; syncer historian v1.2.0; time 2026-12-03T09:16:49.123Z"), which
// `syncer check` reports (see ParseHello); a refusal keeps
// ftpserverlib's text.
func (d *mainDriver) PostAuthMessage(_ ftpserver.ClientContext, user string, authErr error) string {
	if authErr != nil {
		return ""
	}
	return helloText(user, d.s.cfg.Version, time.Now())
}

// QuitMessage answers QUIT.
func (d *mainDriver) QuitMessage() string { return "Goodbye" }

// GetTLSConfig returns the TLS configuration of control connections, or an
// error without TLS (AUTH TLS is then refused). Each control connection
// gets its own (see tlsBinding), chosen in the handshake.
func (d *mainDriver) GetTLSConfig() (*tls.Config, error) {
	if d.s.tlsFront == nil {
		return nil, errors.New("TLS is not configured on this server")
	}
	return d.s.tlsFront, nil
}

// controlTLSConfig is the control connection's own TLS configuration,
// made at its AUTH TLS (GetConfigForClient of GetTLSConfig's).
func (s *Server) controlTLSConfig(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	tc, ok := hello.Conn.(*trackedConn)
	if !ok || tc.sess == nil {
		// Only control connections are handshaken with tlsFront.
		return nil, errors.New("TLS handshake on an unknown connection")
	}
	b, err := newTLSBinding(s.tlsConf, !s.cfg.TLSAllowDataWithoutReuse)
	if err != nil {
		return nil, err
	}
	tc.sess.mu.Lock()
	tc.sess.tlsb = b
	tc.sess.mu.Unlock()
	return b.control, nil
}

// GetDataTLSConfig returns the TLS configuration of cc's data connections:
// unless ServerConfig.TLSAllowDataWithoutReuse, their handshake fails
// unless it resumes the control connection's TLS session, and ftpserverlib
// then drops the connection and waits for the right one.
func (d *mainDriver) GetDataTLSConfig(cc ftpserver.ClientContext) (*tls.Config, error) {
	sess, _ := cc.Extra().(*session)
	if sess == nil {
		return nil, errors.New("internal error: no session")
	}
	sess.mu.Lock()
	b := sess.tlsb
	sess.mu.Unlock()
	if b == nil {
		// PROT P without AUTH TLS: no session to bind the data to.
		return nil, errors.New("TLS on data connections needs AUTH TLS first")
	}
	return b.data, nil
}

// AuthUser checks a login through the defender: a banned address is
// refused without a password check (also on a connection opened before
// the ban), checks run a bounded number at a time and wait in line no
// longer than the login deadline, failures are delayed and counted per
// address and per account. The password is never logged or echoed.
func (d *mainDriver) AuthUser(cc ftpserver.ClientContext, name, password string) (ftpserver.ClientDriver, error) {
	s := d.s
	sess, _ := cc.Extra().(*session)
	if sess == nil {
		return nil, errors.New("internal error: no session")
	}
	remote := cc.RemoteAddr().String()
	ctx, cancel := context.WithDeadline(context.Background(), sess.connectedAt.Add(s.cfg.LoginTimeout))
	defer cancel()
	var u accounts.User
	err := s.def.Check(ctx, sess.ip, name, "ftp", func() error {
		if isAnonymous(name) || password == "" {
			return accounts.ErrServerAuth
		}
		var err error
		u, err = s.users.Authenticate(name, password)
		return err
	})
	switch {
	case errors.Is(err, defender.ErrBanned):
		s.log.Warn("login refused: address banned", "user", name, "remote", remote)
		sess.closing.Store(true)
		if until, ok := s.def.Banned(sess.ip); ok {
			return nil, fmt.Errorf("too many failed logins from this address; try again after %s", until.UTC().Format(time.RFC3339))
		}
		return nil, errors.New("too many failed logins from this address")
	case errors.Is(err, defender.ErrBusy):
		s.log.Warn("login refused: no password check free before the login deadline", "user", name, "remote", remote, "login_timeout", s.cfg.LoginTimeout)
		sess.reply421("Too many logins in progress; try again later")
		return nil, fmt.Errorf("login: %w", ErrBusy)
	case err != nil:
		// ftpserverlib closes the connection after a failed PASS, so
		// each guess also costs a new connection, which bans refuse.
		s.log.Warn("login failed", "user", name, "remote", remote, "user_failures", s.def.AccountFailures(name))
		// One message for unknown user and wrong password alike.
		return nil, accounts.ErrServerAuth
	}
	u = effectiveUser(u)
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	if max := s.cfg.MaxConns; max > 0 && s.reg.countUser("", sess) >= max {
		s.log.Warn("login refused: too many sessions", "user", u.Name, "remote", remote, "max_conns", max)
		sess.reply421(fmt.Sprintf("Too many sessions (the server allows %d); try again later", max))
		return nil, fmt.Errorf("too many sessions: %w", ErrBusy)
	}
	if max := s.cfg.MaxConnsPerUser; max > 0 && s.reg.countUser(u.Name, sess) >= max {
		s.log.Warn("login refused: too many connections for the account", "user", u.Name, "remote", remote, "max_conns_per_user", max)
		// ftpserverlib answers every AuthUser error with 530, which clients
		// take for bad credentials; a connection limit is transient, so
		// answer 421 ourselves (we are on the connection's goroutine, so no
		// reply interleaves) and close.
		sess.reply421(fmt.Sprintf("Too many connections for %s (the server allows %d per account); try again later", u.Name, max))
		return nil, fmt.Errorf("too many connections for this account: %w", ErrBusy)
	}
	if err := validHome(u); err != nil {
		s.log.Error("login refused: bad home in users file", "user", u.Name, "home", u.Home, "err", err)
		return nil, errors.New("account misconfigured on the server: login failed")
	}
	h, err := s.newHandler(sess, u)
	if err != nil {
		s.log.Error("login refused: cannot open home", "user", u.Name, "home", u.Home, "err", err)
		return nil, errors.New("cannot open home directory: login failed")
	}
	sess.mu.Lock()
	sess.user = u.Name
	sess.loginAt = time.Now()
	sess.handler = h
	sess.mu.Unlock()
	sess.lastWork.Store(time.Now().UnixNano())
	cc.SetPath(u.Home)
	s.log.Debug("login", "user", u.Name, "remote", remote, "tls", cc.HasTLSForControl(), "admin", u.Admin)
	s.counts.login(u.Name)
	return h, nil
}

// reply421 writes a 421 on the control connection (through TLS when the
// control connection is protected) and closes it.
func (s *session) reply421(msg string) {
	s.closing.Store(true)
	s.mu.Lock()
	var w io.Writer = s.conn
	if s.tlsConn != nil {
		w = s.tlsConn
	}
	s.mu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = fmt.Fprintf(w, "421 %s\r\n", msg)
	s.kill()
}

// effectiveUser fills the defaults of an account: permissions and home.
func effectiveUser(u accounts.User) accounts.User {
	if u.Perm == "" {
		u.Perm = accounts.DefaultAgentPerm
		if u.Admin {
			u.Perm = accounts.DefaultAdminPerm
		}
	}
	if u.Home == "" {
		u.Home = "/" + u.Name
		if u.Admin {
			u.Home = "/"
		}
	}
	return u
}

// validHome checks that a home is a clean absolute archive path.
func validHome(u accounts.User) error {
	if !path.IsAbs(u.Home) || path.Clean(u.Home) != u.Home {
		return fmt.Errorf("home %q is not a clean absolute path", u.Home)
	}
	if err := checkName(u.Home); err != nil {
		return err
	}
	return nil
}
