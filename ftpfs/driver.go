package ftpfs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// mainDriver is ftpserverlib's MainDriver: settings, connection life cycle,
// login and TLS.
type mainDriver struct {
	s *Server
}

var (
	_ ftpserver.MainDriver                      = (*mainDriver)(nil)
	_ ftpserver.MainDriverExtensionTLSVerifier  = (*mainDriver)(nil)
	_ ftpserver.MainDriverExtensionQuitMessage  = (*mainDriver)(nil)
	_ ftpserver.MainDriverExtensionUserVerifier = (*mainDriver)(nil)
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

// PreAuthUser refuses anonymous logins at USER already.
func (d *mainDriver) PreAuthUser(cc ftpserver.ClientContext, user string) error {
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

// QuitMessage answers QUIT.
func (d *mainDriver) QuitMessage() string { return "Goodbye" }

// GetTLSConfig returns the TLS configuration, or an error without TLS (AUTH
// TLS is then refused).
func (d *mainDriver) GetTLSConfig() (*tls.Config, error) {
	if d.s.tlsConf == nil {
		return nil, errors.New("TLS is not configured on this server")
	}
	return d.s.tlsConf, nil
}

// AuthUser checks a login. Failures are delayed and counted per address
// (bans); the password is never logged or echoed.
func (d *mainDriver) AuthUser(cc ftpserver.ClientContext, name, password string) (ftpserver.ClientDriver, error) {
	s := d.s
	sess, _ := cc.Extra().(*session)
	if sess == nil {
		return nil, errors.New("internal error: no session")
	}
	remote := cc.RemoteAddr().String()
	var u accounts.User
	var err error
	if isAnonymous(name) || password == "" {
		err = accounts.ErrServerAuth
	} else {
		u, err = s.users.Authenticate(name, password)
	}
	if err != nil {
		ip := hostOf(cc.RemoteAddr())
		if until := s.guard.fail(ip, time.Now()); !until.IsZero() {
			s.log.Warn("address banned after repeated failed logins", "remote", remote, "ip", ip, "until", until.UTC().Format(time.RFC3339))
		} else {
			s.log.Warn("login failed", "user", name, "remote", remote)
		}
		// The delay slows guessing on this connection; ftpserverlib closes
		// the connection after a failed PASS, so each guess also costs a
		// new connection, which bans then refuse.
		if s.cfg.LoginFailDelay > 0 {
			time.Sleep(s.cfg.LoginFailDelay)
		}
		// One message for unknown user and wrong password alike.
		return nil, accounts.ErrServerAuth
	}
	u = effectiveUser(u)
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
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
	cc.SetPath(u.Home)
	s.log.Info("login", "user", u.Name, "remote", remote, "tls", cc.HasTLSForControl(), "admin", u.Admin)
	return h, nil
}

// reply421 writes a 421 on the control connection (through TLS when the
// control connection is protected) and closes it.
func (s *session) reply421(msg string) {
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
