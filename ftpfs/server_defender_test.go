package ftpfs_test

import (
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
)

// rawFrom connects from the loopback address local (Linux routes all of
// 127/8 to lo, so a test can be several clients) and reads the greeting;
// ok is false when the server refused or closed the connection.
func (e *srvEnv) rawFrom(local string) (r *srvRaw, code int, msg string) {
	e.t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatalf("dial from %s: %v", local, err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r = &srvRaw{t: e.t, conn: c, tp: textproto.NewConn(c)}
	e.t.Cleanup(func() { _ = r.tp.Close() })
	code, msg = r.reply()
	return r, code, msg
}

// evaluatedGuesses counts the failed logins the server evaluated (each one
// a bcrypt comparison), from its log.
func (e *srvEnv) evaluatedGuesses() int {
	return strings.Count(e.log.String(), "login failed")
}

// TestServerBanOnOpenConnections reproduces issue 14's first finding: an
// attacker opens many control connections first and then sends one PASS
// on each. The ban must hold on the connections already open: no guess is
// evaluated once the address is banned, the right password is refused,
// and the address's other unauthenticated connections are closed.
func TestServerBanOnOpenConnections(t *testing.T) {
	const banAfter, conns = 3, 40
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) {
		cfg.BanAfter = banAfter
		cfg.BanWindow = time.Minute
		cfg.BanFor = time.Minute
		cfg.MaxConnsPerIP = -1 // the per-address cap would hide what is tested
	})
	const attacker = "127.0.0.1"
	var open []*srvRaw
	for range conns {
		r, code, msg := e.rawFrom(attacker)
		if code != 220 {
			t.Fatalf("greeting before any failure: %d %s", code, msg)
		}
		r.expect(331, "USER %s", srvAgent)
		open = append(open, r)
	}
	// One guess on each of the first connections, one after the other:
	// the ban starts at the banAfter-th.
	for i := range banAfter {
		if code, msg := open[i].cmd("PASS wrong-guess-%d", i); code == 230 {
			t.Fatalf("wrong password %d logged in: %s", i, msg)
		}
	}
	// The right password on a connection opened before the ban.
	if code, msg := open[banAfter].cmd("PASS %s", srvPassword); code == 230 {
		t.Errorf("right password logged in on a connection opened before the ban: %d %s", code, msg)
	}
	// Guesses on all the rest at once.
	var wg sync.WaitGroup
	for i := banAfter + 1; i < conns; i++ {
		wg.Add(1)
		go func(r *srvRaw) {
			defer wg.Done()
			if code, msg := r.cmd("PASS wrong-guess-%d", i); code == 230 {
				t.Errorf("guess %d logged in: %s", i, msg)
			}
		}(open[i])
	}
	wg.Wait()
	// Every unauthenticated connection of the banned address is gone.
	eventually(t, "the banned address's connections to close", func() bool {
		return len(e.srv.Connections()) == 0
	})
	// Counted once every session has ended, so every check has logged.
	if n := e.evaluatedGuesses(); n != banAfter {
		t.Errorf("%d guesses evaluated, want %d (none after the ban)", n, banAfter)
	}
	// USER on a connection that was open is refused too (it was closed).
	if code, _ := open[conns-1].cmd("USER %s", srvAgent); code == 331 {
		t.Error("USER accepted on a connection of a banned address")
	}
	// Another address is not affected.
	r, code, msg := e.rawFrom("127.0.0.2")
	if code != 220 {
		t.Fatalf("other address refused: %d %s", code, msg)
	}
	r.expect(331, "USER %s", srvAgent)
	r.expect(230, "PASS %s", srvPassword)
}

// closedWithin reads replies on r until the server closes the connection,
// sending NOOP every interval meanwhile; it returns the last reply code
// (421 for an announced close) or fails after limit.
func (r *srvRaw) closedWithin(t *testing.T, interval, limit time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := 0
	for time.Now().Before(deadline) {
		code, _ := r.cmd("NOOP")
		if code == 0 {
			return last
		}
		if code == 421 {
			return code
		}
		last = code
		time.Sleep(interval)
	}
	t.Fatalf("connection still open after %s of NOOPs", limit)
	return 0
}

// TestServerLoginTimeout: a connection that does not log in is closed at
// the login deadline, however busy it keeps itself with NOOPs.
func TestServerLoginTimeout(t *testing.T) {
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) { cfg.LoginTimeout = 300 * time.Millisecond })
	r, code, _ := e.rawFrom("127.0.0.1")
	if code != 220 {
		t.Fatalf("greeting %d", code)
	}
	if got := r.closedWithin(t, 50*time.Millisecond, 15*time.Second); got != 421 && got != 200 && got != 530 {
		t.Fatalf("closed with %d", got)
	}
	// A session that logged in in time is not affected by the deadline.
	c := e.dial(srvAgent, srvPassword)
	time.Sleep(600 * time.Millisecond)
	if err := c.NoOp(); err != nil {
		t.Fatalf("logged-in session closed by the login deadline: %v", err)
	}
}

// TestServerIdleWithoutWork: NOOPs keep a logged-in session only until
// IdleTimeout; file commands count as work.
func TestServerIdleWithoutWork(t *testing.T) {
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) { cfg.IdleTimeout = time.Second })
	idle := e.rawLogin(srvAgent)
	working := e.rawLogin(srvOther)
	stop := make(chan struct{})
	workerGone := make(chan int, 1)
	go func() {
		for {
			select {
			case <-stop:
				workerGone <- -1
				return
			case <-time.After(100 * time.Millisecond):
			}
			if code, _ := working.cmd("SIZE /%s/none.log", srvOther); code == 0 || code == 421 {
				workerGone <- code
				return
			}
		}
	}()
	idle.closedWithin(t, 100*time.Millisecond, 15*time.Second)
	close(stop)
	if code := <-workerGone; code != -1 {
		t.Fatalf("a session sending file commands was closed (%d)", code)
	}
}

// TestServerMaxConnsPerIP: one address gets MaxConnsPerIP connections,
// logged in or not; other addresses are not affected.
func TestServerMaxConnsPerIP(t *testing.T) {
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) { cfg.MaxConnsPerIP = 3 })
	r, _, _ := e.rawFrom("127.0.0.3")
	r.expect(331, "USER %s", srvAgent)
	r.expect(230, "PASS %s", srvPassword)
	for range 2 {
		if _, code, msg := e.rawFrom("127.0.0.3"); code != 220 {
			t.Fatalf("connection within the cap: %d %s", code, msg)
		}
	}
	if _, code, msg := e.rawFrom("127.0.0.3"); code != 421 || !strings.Contains(msg, "per address") {
		t.Fatalf("fourth connection: %d %s, want 421 per address", code, msg)
	}
	if _, code, msg := e.rawFrom("127.0.0.4"); code != 220 {
		t.Fatalf("other address: %d %s", code, msg)
	}
}

// TestServerUnauthPoolKeepsAgentsIn: strangers filling the pool of
// connections not logged in yet neither take the agents' session slots
// (MaxConns) nor keep an agent from connecting: the flood's own oldest
// connections make room.
func TestServerUnauthPoolKeepsAgentsIn(t *testing.T) {
	const pool = 4
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) {
		cfg.MaxUnauthConns = pool
		cfg.MaxConns = 2
		cfg.MaxConnsPerIP = -1
	})
	for i := range 30 {
		e.rawFrom(fmt.Sprintf("127.0.0.%d", 10+i%3))
	}
	for _, u := range []string{srvAgent, srvOther} {
		r, code, msg := e.rawFrom("127.0.0.1")
		if code != 220 {
			t.Fatalf("agent refused: %d %s", code, msg)
		}
		r.expect(331, "USER %s", u)
		r.expect(230, "PASS %s", srvPassword)
	}
	eventually(t, "the waiting connections to stay within the pool", func() bool {
		waiting := 0
		for _, c := range e.srv.Connections() {
			if c.User == "" {
				waiting++
			}
		}
		return waiting <= pool
	})
}
