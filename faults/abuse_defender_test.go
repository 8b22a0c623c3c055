//go:build unix

package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// raiseNoFile lifts the test process's descriptor limit to its hard limit
// and returns the soft limit in force.
func raiseNoFile(t testing.TB) int {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Logf("raise RLIMIT_NOFILE: %v", err)
			_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
		}
	}
	return int(rl.Cur)
}

// strangerAddr is the i-th of n loopback source addresses 127.0.0.2...
// (Linux routes all of 127/8 to lo, so each is another client).
func strangerAddr(i, n int) string { return fmt.Sprintf("127.0.%d.%d", 1+(i%n)/250, 2+(i%n)%250) }

// dialFrom opens a TCP connection to addr from the loopback address local.
func dialFrom(local, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return d.Dial("tcp", addr)
}

// smallTree writes n log files under dir.
func smallTree(t testing.TB, dir string, n int) {
	t.Helper()
	rng := nil2()
	for i := range n {
		writeLogFile(t, filepath.Join(dir, fmt.Sprintf("d%d/%03d.log", i%3, i)), 2000+rng.IntN(20000), rng)
	}
}

// TestFTPIdleFlood reproduces issue 14's second finding: thousands of
// idle control connections that never log in, from other addresses,
// while an agent pushes. The push must succeed, the historian's
// descriptors stay bounded and its web viewer keep answering, with the
// default caps and with a total cap (--max-conns 50) that before the fix
// strangers took from the agents.
func TestFTPIdleFlood(t *testing.T) {
	limit := raiseNoFile(t)
	conns := 10000
	if testing.Short() {
		conns = 3000
	}
	// The historian is another process, with its own limit.
	conns = min(conns, limit-500)
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"default caps", nil},
		{"max-conns 50", []string{"--max-conns", "50"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			h := newHistorian(t, base, "node1")
			h.extra = tc.extra
			h.start()
			pid := h.cmd.Process.Pid
			fdsBefore := procFDs(pid)

			// The flood: conns connections from 50 addresses, opened 64
			// at a time, held open and silent.
			var (
				mu     sync.Mutex
				held   []net.Conn
				failed atomic.Int64
				wg     sync.WaitGroup
			)
			t.Cleanup(func() {
				mu.Lock()
				defer mu.Unlock()
				for _, c := range held {
					_ = c.Close()
				}
			})
			start := time.Now()
			sem := make(chan struct{}, 64)
			for i := range conns {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					c, err := dialFrom(strangerAddr(i, 50), h.ftp, 3*time.Second)
					if err != nil {
						failed.Add(1)
						return
					}
					mu.Lock()
					held = append(held, c)
					mu.Unlock()
				}()
			}
			wg.Wait()
			t.Logf("%d connections opened in %s (%d dials failed); historian descriptors %d before", len(held), time.Since(start).Round(time.Millisecond), failed.Load(), fdsBefore)

			// The agent pushes meanwhile, from 127.0.0.1.
			logs := filepath.Join(base, "logs")
			smallTree(t, logs, 30)
			pushStart := time.Now()
			r := push(t, h.passwords["node1"], agentArgs("node1", h.ftp, logs, filepath.Join(base, "agent-state"))...)
			pushTook := time.Since(pushStart)
			fdsDuring := procFDs(pid)
			resp, err := http.Get("http://" + h.http + "/healthz")
			webOK := err == nil && resp.StatusCode == 200
			if resp != nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if r.code != 0 {
				t.Errorf("push during the flood: exit %d\n%s", r.code, r.stderr)
			}
			files, lost := compareTree(t, logs, filepath.Join(h.root, "node1"))
			if lost != 0 {
				t.Errorf("%d bytes lost", lost)
			}
			// Bounded: the pool of connections not logged in (256) and
			// the agent's, not the flood's size.
			if fdsDuring > fdsBefore+400 {
				t.Errorf("historian holds %d descriptors during the flood (%d before), want it bounded", fdsDuring, fdsBefore)
			}
			if !webOK {
				t.Errorf("web viewer not answering during the flood: %v", err)
			}
			report(t, fmt.Sprintf("FTP: %d idle connections that never log in, from 50 addresses (127.0.x.y), `serve` %s, while `syncer push` sends 30 files", len(held), tc.name),
				fmt.Sprintf("push exit %d in %s, %d files identical by SHA-256; historian descriptors %d before, %d during; /healthz answered: %v (`TestFTPIdleFlood`)", r.code, pushTook.Round(100*time.Millisecond), files, fdsBefore, fdsDuring, webOK), lost)
		})
	}
}

// TestFTPGuessFlood reproduces issue 14's first finding at scale: 30
// addresses each open 40 control connections, send USER on all of them,
// then one wrong PASS on each at once, round after round, while an agent
// pushes. The push must succeed; each address gets at most a few guesses
// evaluated (BanAfter, plus the checks already running when its ban
// started) instead of one per connection.
func TestFTPGuessFlood(t *testing.T) {
	raiseNoFile(t)
	const addrs, perAddr, banAfter = 30, 40, 5
	dur := 8 * time.Second
	base := t.TempDir()
	h := newHistorian(t, base, "node1")
	h.start()

	var sent, answered230 atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := strangerAddr(a, addrs)
			for round := 0; ; round++ {
				select {
				case <-stop:
					return
				default:
				}
				// Open every connection and send USER first: the attack
				// is that the ban was only checked at accept.
				var open []*bufio.ReadWriter
				var cs []net.Conn
				for range perAddr {
					c, err := dialFrom(local, h.ftp, 3*time.Second)
					if err != nil {
						continue
					}
					_ = c.SetDeadline(time.Now().Add(30 * time.Second))
					rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
					if line, err := rw.ReadString('\n'); err != nil || !strings.HasPrefix(line, "220") {
						c.Close()
						continue
					}
					fmt.Fprintf(rw, "USER node1\r\n")
					_ = rw.Flush()
					if line, err := rw.ReadString('\n'); err != nil || !strings.HasPrefix(line, "331") {
						c.Close()
						continue
					}
					open, cs = append(open, rw), append(cs, c)
				}
				var gw sync.WaitGroup
				for i, rw := range open {
					gw.Add(1)
					go func() {
						defer gw.Done()
						fmt.Fprintf(rw, "PASS guess-%d-%d-%d\r\n", a, round, i)
						if rw.Flush() != nil {
							return
						}
						sent.Add(1)
						if line, err := rw.ReadString('\n'); err == nil && strings.HasPrefix(line, "230") {
							answered230.Add(1)
						}
					}()
				}
				gw.Wait()
				for _, c := range cs {
					c.Close()
				}
				if len(open) == 0 {
					// Refused at connect: banned. Try again a little later.
					select {
					case <-stop:
						return
					case <-time.After(500 * time.Millisecond):
					}
				}
			}
		}()
	}
	time.Sleep(time.Second) // the flood is under way
	logs := filepath.Join(base, "logs")
	smallTree(t, logs, 30)
	pushStart := time.Now()
	r := push(t, h.passwords["node1"], agentArgs("node1", h.ftp, logs, filepath.Join(base, "agent-state"))...)
	pushTook := time.Since(pushStart)
	if rest := dur - time.Since(pushStart); rest > 0 {
		time.Sleep(rest)
	}
	close(stop)
	wg.Wait()

	evaluated := strings.Count(h.stderr.String(), `msg="login failed"`)
	banned := strings.Count(h.stderr.String(), `msg="address banned after repeated failed logins"`)
	if r.code != 0 {
		t.Errorf("push during the guess flood: exit %d\n%s", r.code, r.stderr)
	}
	if answered230.Load() != 0 {
		t.Errorf("%d guesses logged in", answered230.Load())
	}
	// Each address: banAfter failures start its ban; checks of it already
	// running then finish (fewer than the number of password checks that
	// run at once, NumCPU).
	if bound := addrs * (banAfter + runtime.NumCPU()); evaluated > bound {
		t.Errorf("%d guesses evaluated from %d addresses, want at most %d", evaluated, addrs, bound)
	}
	files, lost := compareTree(t, logs, filepath.Join(h.root, "node1"))
	if lost != 0 {
		t.Errorf("%d bytes lost", lost)
	}
	banList := banListed(t, h)
	report(t, fmt.Sprintf("FTP: password guesses from %d addresses, each opening %d control connections, USER on all, then one PASS on each at once, for %s, while `syncer push` sends 30 files", addrs, perAddr, dur),
		fmt.Sprintf("%d guesses sent, %d evaluated (a bcrypt each), 0 logged in; %d addresses banned (`syncer ban list`: %d); push exit %d in %s, %d files identical by SHA-256 (`TestFTPGuessFlood`)",
			sent.Load(), evaluated, banned, banList, r.code, pushTook.Round(100*time.Millisecond), files), lost)
}

// banListed counts the addresses `syncer ban list --json` shows.
func banListed(t testing.TB, h *historian) int {
	t.Helper()
	r := testkit.RunSyncer(t, "", "ban", "list", "--json", "--state", h.state)
	var bans []struct {
		Addr string `json:"addr"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &bans) != nil {
		t.Errorf("syncer ban list: exit %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
	return len(bans)
}
