package httpview

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncer-dev/syncer/internal/defender"
)

// BansJSON is the reply of GET /api/v1/bans: the bans in force, sorted
// by address, as `syncer ban list --json` prints them.
type BansJSON struct {
	Bans []defender.Ban `json:"bans"`
}

// bans answers GET /api/v1/bans (admins): the defender's bans in force.
// Without a defender there are none.
func (s *Server) bans(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	out := BansJSON{Bans: []defender.Ban{}}
	if s.cfg.Defender != nil {
		out.Bans = append(out.Bans, s.cfg.Defender.Bans()...)
	}
	c.JSON(http.StatusOK, out)
}

// unban answers DELETE /api/v1/bans/{addr} (admins): it lifts addr's ban
// (Defender.Unban, which the historian's bans file follows, so that
// `syncer ban list` agrees) and answers the lifted ban; 404 when addr is
// not banned, 400 when it is not an IP address.
//
// It changes state, so it must not be sendable from another site by a
// browser that holds an admin's credentials (basic auth is sent
// automatically): see sameOrigin.
func (s *Server) unban(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	addr, err := defender.CanonicalAddr(c.Param("addr"))
	if err != nil {
		apiError(c, http.StatusBadRequest, "not an IP address: "+c.Param("addr"))
		return
	}
	var ban defender.Ban
	found := false
	if s.cfg.Defender != nil {
		for _, b := range s.cfg.Defender.Bans() {
			if b.Addr == addr {
				ban, found = b, true
			}
		}
	}
	if !found || !s.cfg.Defender.Unban(addr) {
		apiError(c, http.StatusNotFound, "no ban of "+addr)
		return
	}
	s.log.Info("ban lifted from the web", "addr", addr, "by", s.viewerOf(c).Name, "remote", c.Request.RemoteAddr,
		"would_have_ended", ban.Until.UTC().Format(time.RFC3339))
	c.JSON(http.StatusOK, gin.H{"lifted": ban})
}

// crossOrigin refuses state-changing requests that a browser sends from
// another origin (Go's Sec-Fetch-Site and Origin check). Scripts (curl,
// no Origin and no Sec-Fetch-Site) are not affected.
var crossOrigin = http.NewCrossOriginProtection()

// sameOrigin refuses a request that changes state unless it comes from
// the viewer's own pages or from a script. Why it is enough together:
// the only state-changing route is DELETE, which no HTML form can send
// and which a cross-origin fetch() must announce in a CORS preflight
// that the viewer never allows (OPTIONS gets 405 and no
// Access-Control-Allow-* header), so a browser never sends it; a
// browser that sent it anyway would carry a foreign Origin or
// Sec-Fetch-Site: cross-site, refused here with 403. (A DNS-rebound
// name is the same origin to the browser: the Host check refuses it.)
func (s *Server) sameOrigin(c *gin.Context) {
	if err := crossOrigin.Check(c.Request); err != nil {
		s.log.Warn("http cross-origin request refused", "method", c.Request.Method, "path", c.Request.URL.Path,
			"origin", c.Request.Header.Get("Origin"), "sec_fetch_site", c.Request.Header.Get("Sec-Fetch-Site"), "remote", c.Request.RemoteAddr)
		apiError(c, http.StatusForbidden, "cross-origin request refused")
		return
	}
	c.Next()
}
