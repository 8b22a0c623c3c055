package ftpfs

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"golang.org/x/time/rate"
)

// admit decides at accept time whether a new control connection may be
// served; it returns the refusal text for a 421, or "".
func (s *Server) admit(c net.Conn) string {
	ip := hostOf(c.RemoteAddr())
	// Banned addresses are refused before any command is read, so a
	// password-guessing client cannot even try.
	if until, ok := s.guard.banned(ip, time.Now()); ok {
		s.log.Warn("connection refused: address banned", "remote", c.RemoteAddr().String(), "until", until.UTC().Format(time.RFC3339))
		return fmt.Sprintf("Too many failed logins from %s; try again after %s", ip, until.UTC().Format(time.RFC3339))
	}
	if max := s.cfg.MaxConns; max > 0 && s.reg.count() >= max {
		s.log.Warn("connection refused: too many connections", "remote", c.RemoteAddr().String(), "max_conns", max)
		return fmt.Sprintf("Too many connections (the server allows %d); try again later", max)
	}
	return ""
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// loginGuard counts failed logins per IP address and bans addresses with
// too many of them.
type loginGuard struct {
	after          int
	window, banFor time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time
	bans     map[string]time.Time
	calls    int
}

func newLoginGuard(after int, window, banFor time.Duration) *loginGuard {
	return &loginGuard{after: after, window: window, banFor: banFor,
		failures: map[string][]time.Time{}, bans: map[string]time.Time{}}
}

// banned reports whether ip is banned at now, and until when.
func (g *loginGuard) banned(ip string, now time.Time) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.bans[ip]
	if ok && now.Before(until) {
		return until, true
	}
	if ok {
		delete(g.bans, ip)
	}
	return time.Time{}, false
}

// fail records a failed login from ip; it returns the end of a ban that
// this failure started, or the zero time.
func (g *loginGuard) fail(ip string, now time.Time) time.Time {
	if g.after < 0 {
		return time.Time{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.calls%1024 == 0 {
		g.sweep(now)
	}
	recent := g.failures[ip][:0]
	for _, t := range g.failures[ip] {
		if now.Sub(t) < g.window {
			recent = append(recent, t)
		}
	}
	recent = append(recent, now)
	if len(recent) >= g.after {
		delete(g.failures, ip)
		until := now.Add(g.banFor)
		g.bans[ip] = until
		return until
	}
	g.failures[ip] = recent
	return time.Time{}
}

// sweep drops expired entries so that the maps stay bounded by the
// addresses seen within one window.
func (g *loginGuard) sweep(now time.Time) {
	for ip, ts := range g.failures {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= g.window {
			delete(g.failures, ip)
		}
	}
	for ip, until := range g.bans {
		if !now.Before(until) {
			delete(g.bans, ip)
		}
	}
}

// limiterSet holds one upload and one download token bucket per account,
// shared by all the account's connections.
type limiterSet struct {
	mu sync.Mutex
	m  map[string]*accountLimiters
}

type accountLimiters struct {
	up, down *rate.Limiter
}

func (ls *limiterSet) init() { ls.m = map[string]*accountLimiters{} }

// get returns the bucket for name's uploads or downloads at bytesPerSec,
// or nil for unlimited. A changed rate applies to the existing bucket.
func (ls *limiterSet) get(name string, upload bool, bytesPerSec accounts.Rate) *rate.Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	al := ls.m[name]
	if al == nil {
		al = &accountLimiters{}
		ls.m[name] = al
	}
	slot := &al.down
	if upload {
		slot = &al.up
	}
	if bytesPerSec <= 0 {
		*slot = nil
		return nil
	}
	burst := burstFor(bytesPerSec)
	if *slot == nil {
		*slot = rate.NewLimiter(rate.Limit(bytesPerSec), burst)
	} else if (*slot).Limit() != rate.Limit(bytesPerSec) {
		(*slot).SetLimit(rate.Limit(bytesPerSec))
		(*slot).SetBurst(burst)
	}
	return *slot
}

// burstFor sizes a bucket: about 1/32 s of traffic, so that the bytes that
// pass without waiting (one burst) stay a small fraction of what a few
// seconds move, bounded so that tiny rates still make progress and large
// ones do not wake up too often.
func burstFor(r accounts.Rate) int {
	b := int64(r) / 32
	lo := min(int64(r), 4<<10)
	b = max(b, lo)
	b = min(b, 256<<10)
	return int(max(b, 1))
}

// waitN takes n bytes' worth of tokens, in bursts, until ctx ends.
func waitN(ctx context.Context, l *rate.Limiter, n int) error {
	for n > 0 {
		k := min(n, l.Burst())
		if err := l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
