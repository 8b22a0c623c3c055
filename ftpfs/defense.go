package ftpfs

// The front door: who may connect (bans, per-address cap, the pool of
// connections not logged in yet), how long they may take to log in, and
// how long a session may stay without doing any work.

import (
	"fmt"
	"net"
	"time"

	"github.com/syncer-dev/syncer/internal/defender"
)

// admit decides at accept time whether a new control connection may be
// served; it returns the refusal text for a 421, or "". When the pool of
// connections not logged in yet is full, it makes room instead of
// refusing (see ServerConfig.MaxUnauthConns).
func (s *Server) admit(c net.Conn) string {
	ip := hostOf(c.RemoteAddr())
	// Banned addresses are refused before any command is read, so a
	// password-guessing client cannot even try.
	if until, ok := s.def.Banned(ip); ok {
		s.log.Warn("connection refused: address banned", "remote", c.RemoteAddr().String(), "until", until.UTC().Format(time.RFC3339))
		return fmt.Sprintf("Too many failed logins from %s; try again after %s", ip, until.UTC().Format(time.RFC3339))
	}
	var sameIP, unauth int
	byIP := map[string][]*session{} // waiting to log in, by address
	for _, sess := range s.reg.all() {
		if sess.closing.Load() {
			continue
		}
		if sess.ip == ip {
			sameIP++
		}
		if sess.userName() == "" {
			unauth++
			byIP[sess.ip] = append(byIP[sess.ip], sess)
		}
	}
	if max := s.cfg.MaxConnsPerIP; max > 0 && sameIP >= max {
		s.log.Warn("connection refused: too many connections from the address", "remote", c.RemoteAddr().String(), "max_conns_per_ip", max)
		return fmt.Sprintf("Too many connections from %s (the server allows %d per address); try again later", ip, max)
	}
	if unauth >= s.cfg.MaxUnauthConns {
		// Evict rather than refuse: refusing would let whoever fills the
		// pool first keep agents out for as long as they like. The
		// address holding the most waiting connections loses its oldest,
		// so a flood pays before a lone agent does.
		var victim *session
		most := 0
		for _, ss := range byIP {
			oldest := ss[0]
			for _, x := range ss[1:] {
				if x.connectedAt.Before(oldest.connectedAt) {
					oldest = x
				}
			}
			if len(ss) > most || len(ss) == most && oldest.connectedAt.Before(victim.connectedAt) {
				most, victim = len(ss), oldest
			}
		}
		if victim != nil {
			s.log.Warn("connection closed: too many connections waiting to log in", "remote", victim.conn.RemoteAddr().String(), "max_unauth_conns", s.cfg.MaxUnauthConns)
			go victim.reply421(fmt.Sprintf("Too many connections waiting to log in (the server allows %d); try again later", s.cfg.MaxUnauthConns))
			victim.closing.Store(true)
		}
	}
	return ""
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip4 := ta.IP.To4(); ip4 != nil {
			return ip4.String()
		}
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// onBanChange closes the connections of a newly banned address that have
// not logged in: each could otherwise still send a guess (or wait in line
// for a password check). Logged-in sessions of the address stay: their
// password was right.
func (s *Server) onBanChange(ev defender.Event) {
	if ev.Lifted {
		s.log.Info("ban lifted", "ip", ev.Ban.Addr)
		return
	}
	n := 0
	for _, sess := range s.reg.all() {
		if sess.ip != ev.Ban.Addr || sess.userName() != "" || sess.closing.Swap(true) {
			continue
		}
		n++
		go sess.reply421(fmt.Sprintf("Too many failed logins from %s; try again after %s", ev.Ban.Addr, ev.Ban.Until.UTC().Format(time.RFC3339)))
	}
	s.log.Warn("address banned after repeated failed logins", "ip", ev.Ban.Addr, "until", ev.Ban.Until.UTC().Format(time.RFC3339), "reason", ev.Ban.Reason, "connections_closed", n)
}

// janitor closes, until stop is closed, the connections that have not
// logged in within LoginTimeout and the logged-in sessions that have done
// no work for IdleTimeout (ftpserverlib's own idle timeout is reset by
// every command, NOOP included).
func (s *Server) janitor(stop <-chan struct{}) {
	tick := min(s.cfg.LoginTimeout, s.cfg.IdleTimeout) / 4
	tick = max(min(tick, time.Second), 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.sweepSessions(now)
		}
	}
}

func (s *Server) sweepSessions(now time.Time) {
	for _, sess := range s.reg.all() {
		if sess.closing.Load() {
			continue
		}
		if sess.userName() == "" {
			if now.Sub(sess.connectedAt) >= s.cfg.LoginTimeout && !sess.closing.Swap(true) {
				s.log.Info("connection closed: no login in time", "remote", sess.conn.RemoteAddr().String(), "login_timeout", s.cfg.LoginTimeout)
				go sess.reply421(fmt.Sprintf("Login timeout (%s): closing control connection", s.cfg.LoginTimeout))
			}
			continue
		}
		if sess.transferCount() == 0 && now.Sub(sess.lastWorkAt()) >= s.cfg.IdleTimeout && !sess.closing.Swap(true) {
			s.log.Info("session closed: no work", "user", sess.userName(), "remote", sess.conn.RemoteAddr().String(), "idle_timeout", s.cfg.IdleTimeout)
			go sess.reply421(fmt.Sprintf("Idle timeout (%s without a file command or transfer): closing control connection", s.cfg.IdleTimeout))
		}
	}
}

// workCommands are the commands that count as work for IdleTimeout: they
// touch the archive or move data. The rest (NOOP, FEAT, SYST, PWD, TYPE,
// STAT, HELP, OPTS...) can be sent for ever at no cost to the client, so
// they keep a connection open only until IdleTimeout.
var workCommands = map[string]bool{
	"CWD": true, "XCWD": true, "CDUP": true, "XCUP": true,
	"LIST": true, "NLST": true, "MLSD": true, "MLST": true,
	"SIZE": true, "MDTM": true, "MFMT": true,
	"RETR": true, "STOR": true, "APPE": true, "STOU": true, "REST": true, "ABOR": true,
	"DELE": true, "RMD": true, "XRMD": true, "MKD": true, "XMKD": true,
	"RNFR": true, "RNTO": true, "SITE": true,
	"PASV": true, "EPSV": true, "PORT": true, "EPRT": true,
}

// noteCommand is called before ftpserverlib reads the next command, with
// the previous one handled: a work command resets the session's idle
// clock.
func (s *session) noteCommand() {
	s.mu.Lock()
	cc := s.cc
	s.mu.Unlock()
	if cc != nil && workCommands[cc.GetLastCommand()] {
		s.lastWork.Store(time.Now().UnixNano())
	}
}

func (s *session) lastWorkAt() time.Time { return time.Unix(0, s.lastWork.Load()) }

func (s *session) transferCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.transfers)
}
