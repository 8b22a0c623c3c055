package httpview

// The front door's rules besides the password check itself (server.go's
// authenticate): the Host of a loopback viewer, credentials only over
// HTTPS off loopback, and API tokens.

import (
	"net"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// checkHost refuses, with Config.LoopbackOnly, a request whose Host is
// not a loopback name or address.
//
// Security: a viewer on loopback is reached from the browser of anyone on
// this machine (and through `ssh -L`). A web page on evil.example whose
// DNS name is re-pointed at 127.0.0.1 (DNS rebinding) would be same-origin
// with the viewer and could read it, login or not once the user logs in;
// its requests carry "Host: evil.example", which no browser lets the page
// change. So a loopback viewer answers only to loopback names.
// "localhost" alone of the DNS names: every resolver keeps it on
// loopback, while names under it may go to DNS.
func (s *Server) checkHost(c *gin.Context) {
	if !s.cfg.LoopbackOnly || loopbackHost(c.Request.Host) {
		c.Next()
		return
	}
	s.log.Info("http request refused: Host is not a loopback name", "host", c.Request.Host, "remote", c.Request.RemoteAddr)
	c.Header("Connection", "close")
	apiError(c, http.StatusMisdirectedRequest, "this viewer listens on loopback and answers only to localhost, 127.0.0.1 or [::1] (Host refused: DNS rebinding protection)")
}

// loopbackHost reports whether host (a Host header: NAME, NAME:PORT, IP,
// IP:PORT or [IPv6]:PORT) names this machine's loopback.
func loopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host // no port
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// loopbackPeer reports whether a request's RemoteAddr is on loopback.
func loopbackPeer(remote string) bool {
	h, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// refusePlainHTTP ends a request that came over plain HTTP from a peer
// that is not on loopback, before any credential is looked at, and
// reports whether it did.
//
// Security: a password or token sent so crossed the network in clear
// text, where anyone on the path reads it; a refusal without a challenge
// keeps browsers from asking for one. Loopback peers are the exception:
// a TLS-terminating proxy on this machine (the TLS ended on the proxy),
// or a user's `ssh -L` tunnel. The historian does not start with a
// viewer off loopback without HTTPS; this is the viewer's own guard.
func refusePlainHTTP(c *gin.Context, peer string) bool {
	if c.Request.TLS != nil || loopbackPeer(peer) {
		return false
	}
	apiError(c, http.StatusForbidden, "logins are refused over plain HTTP off loopback: use https:// (passwords and tokens would cross the network in clear text)")
	return true
}

// bearerToken returns the token of an "Authorization: Bearer TOKEN"
// header.
func bearerToken(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// authenticateToken sets the viewer of a request that brought an API
// token: a token for one agent sees that agent's tree, one without an
// agent the whole archive, both with the viewer's read-only letters. A
// token that is not (or no longer) in the tokens file counts as a failed
// login towards the defender's bans, as a wrong password does. (No
// password-check slot: a SHA-256 costs nothing, and 256 random bits are
// not guessed; the count stops a token scanner the same way.)
func (s *Server) authenticateToken(c *gin.Context, peer, secret string) {
	var tok accounts.Token
	ok := false
	if s.cfg.Tokens != nil {
		var err error
		tok, ok, err = s.cfg.Tokens.Verify(secret)
		s.logTokensErr(err)
	}
	if !ok {
		if def := s.cfg.Defender; def != nil {
			def.Failed(peer, "", "http")
		}
		s.log.Info("http token refused", "remote", peer)
		c.Header("WWW-Authenticate", `Bearer realm="syncer", error="invalid_token"`)
		apiError(c, http.StatusUnauthorized, "invalid or removed API token")
		return
	}
	u := accounts.User{Name: "token:" + tok.Name, Perm: "elr", Admin: tok.Agent == "", Home: "/"}
	if tok.Agent != "" {
		u.Home = "/" + tok.Agent
	}
	c.Set(viewerKey, viewer{u})
	c.Set(tokenKey, tok.Name)
	c.Next()
}

// tokenKey marks a request authenticated by an API token.
const tokenKey = "syncer.token"

// viaToken reports whether the request was authenticated by an API
// token. Tokens are for reading: a whole-archive token is an admin viewer
// so that it can read /metrics and every tree, but anything an admin may
// change through the viewer must refuse it (check viaToken next to
// requireAdmin).
func viaToken(c *gin.Context) bool {
	_, ok := c.Get(tokenKey)
	return ok
}

// logTokensErr logs a tokens file that could not be re-read, once per
// distinct error.
func (s *Server) logTokensErr(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	s.tokenErrMu.Lock()
	changed := msg != s.tokenErr
	s.tokenErr = msg
	s.tokenErrMu.Unlock()
	if changed && err != nil {
		s.log.Error("tokens file not re-read", "err", err)
	}
}
