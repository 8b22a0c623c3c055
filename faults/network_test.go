package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/store"
	"github.com/syncer-dev/syncer/syncer"
)

// inProcessServer starts an ftpfs server over root with agent account
// node1 (no login delay or ban: the faults cause many reconnects).
//
// node1's password hash has bcrypt's lowest cost, as ftptest's accounts
// all do. At the production cost
// one check takes about 0.8 s under -race on an idle core; with four
// agent connections logging in at once on two shared cores a login took
// longer than the test client's 2 s IOTimeout, the client gave up and
// redialled while the server went on hashing for the abandoned
// connection, and the pile of abandoned checks kept every later login
// over the timeout: TestNetworkFaults never recovered, faults on or off.
func inProcessServer(t testing.TB, root string) (addr, password string) {
	t.Helper()
	password = "pw-node1-long-enough"
	s := ftptest.NewServer(t, root, ftptest.WithAccount(accounts.User{Name: "node1"}, password))
	return s.Addr, password
}

// proxiedServer starts inProcessServer over root and a Proxy in front of it
// (seed as for Listen), closed when the test ends.
func proxiedServer(t testing.TB, root string, seed uint64) (addr, password string, p *Proxy) {
	t.Helper()
	addr, password = inProcessServer(t, root)
	p, err := Listen(addr, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return addr, password, p
}

// TestProxyRelays: with no faults the proxy is transparent for PASV and
// EPSV transfers both ways, and a cut is seen by the client.
func TestProxyRelays(t *testing.T) {
	_, pw, p := proxiedServer(t, t.TempDir(), 1)
	data := logBytes(3<<20, rand.New(rand.NewPCG(1, 2)))
	for _, epsv := range []bool{true, false} {
		c, err := ftp.Dial(p.Addr(), ftp.DialWithTimeout(5*time.Second), ftp.DialWithDisabledEPSV(!epsv))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login("node1", pw); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("/node1/epsv-%v.log", epsv)
		if err := c.Stor(name, bytesReader(data)); err != nil {
			t.Fatalf("STOR via proxy (epsv %v): %v", epsv, err)
		}
		r, err := c.Retr(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(got) != string(data) {
			t.Fatalf("RETR via proxy (epsv %v): %d bytes, %v; want %d identical", epsv, len(got), err, len(data))
		}
		if n := p.CutAll(); n == 0 {
			t.Error("CutAll cut nothing with a control connection open")
		}
		if err := c.NoOp(); err == nil {
			t.Error("NOOP after CutAll succeeded")
		}
	}
	if s := p.Stats(); s.Control != 2 || s.Data != 4 {
		t.Errorf("stats %+v, want 2 control and 4 data connections", s)
	}
}

// TestNetworkFaults pushes through the proxy while it drops and stalls
// control and data connections at random, the logs growing between
// pushes. No push may hang (each is bounded well above the client's I/O
// timeout), and once the network is healthy again a push completes and the
// archive is byte-identical to the source.
func TestNetworkFaults(t *testing.T) {
	rounds, files := 30, 20
	if !full() {
		rounds, files = 4, 8
	}
	root, logs, state := t.TempDir(), t.TempDir(), t.TempDir()
	addr, pw, p := proxiedServer(t, root, 99)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range files {
		writeLogFile(t, filepath.Join(logs, fmt.Sprintf("app%02d.log", i)), 50_000+rng.IntN(2<<20), rng)
	}
	m, err := store.Open(store.Dir(state, "node1"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a, err := syncer.NewAgent(syncer.Options{AgentID: "node1", Dir: logs, StateDir: state, Parallel: 4}, m)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ftpfs.ClientConfig{Server: "ftp://" + p.Addr(), User: "node1", Password: pw,
		DialTimeout: 2 * time.Second, IOTimeout: 2 * time.Second}
	pushOnce := func() (syncer.Summary, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		conns := syncer.NewConns(cfg, 4)
		defer conns.Close()
		sum, err := a.Push(ctx, conns)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("push hung for 90 s through the faulty network")
		}
		return sum, err
	}
	p.SetFaults(Faults{Drop: 0.01, Stall: 0.005, StallFor: 3 * time.Second},
		Faults{Drop: 0.03, Stall: 0.01, StallFor: 3 * time.Second})
	failed := 0
	for i := range rounds {
		sum, err := pushOnce()
		if err != nil || sum.FilesFailed > 0 {
			failed++
		}
		t.Logf("round %d: err=%v failed=%d sent=%d", i, err, sum.FilesFailed, sum.BytesSent)
		for range 3 {
			appendFile(t, filepath.Join(logs, fmt.Sprintf("app%02d.log", rng.IntN(files))), logBytes(100+rng.IntN(100_000), rng))
		}
	}
	st := p.Stats()
	if st.Drops == 0 || failed == 0 {
		t.Fatalf("the faults did not bite (%+v, %d failed pushes): the test proved nothing", st, failed)
	}
	p.SetFaults(Faults{}, Faults{})
	sum, err := pushOnce()
	if err != nil || sum.FilesFailed > 0 {
		c, derr := ftp.Dial(addr, ftp.DialWithTimeout(5*time.Second))
		if derr == nil {
			c.Quit()
		}
		t.Fatalf("push on a healthy network: %v %+v (direct dial to the server: %v; proxy %+v)", err, sum.Errors, derr, p.Stats())
	}
	n, lost := compareTree(t, logs, filepath.Join(root, "node1"))
	// Files that only grew must not gain versions: a cut read-back was
	// once taken for different content (see TestCutReadBack).
	versions := superseded(t, filepath.Join(root, "node1"))
	if versions != 0 {
		t.Errorf("%d superseded versions of files that only grew", versions)
	}
	report(t, fmt.Sprintf("network cuts and stalls via faults.Proxy (%d pushes, %d drops, %d stalls of 3 s)", rounds, st.Drops, st.Stalls),
		fmt.Sprintf("%d pushes failed in part, none hung; the next healthy push caught up; %d files identical by SHA-256, %d extra versions (`TestNetworkFaults`)", failed, n, versions), lost)
}

// TestCutReadBack: before resuming after bytes the server holds but the
// manifest cannot vouch for (an upload cut before it was recorded), the
// agent reads back the server's last 4 KiB and compares. A download cut
// after the server's last write reaches the agent as a short file and a
// 226: it must not pass for different content (which would store a
// needless new version); the file fails this push and the next push,
// on a healthy network, resumes where the server's copy ends.
func TestCutReadBack(t *testing.T) {
	root, logs, state := t.TempDir(), t.TempDir(), t.TempDir()
	_, pw, p := proxiedServer(t, root, 7)
	data := logBytes(300_000, nil2())
	if err := os.WriteFile(filepath.Join(logs, "app.log"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The server holds a prefix the agent never recorded.
	if err := os.MkdirAll(filepath.Join(root, "node1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "node1", "app.log"), data[:123_456], 0o644); err != nil {
		t.Fatal(err)
	}
	args := agentArgs("node1", p.Addr(), logs, state)
	p.SetFaults(Faults{}, Faults{Drop: 1, FromServer: true})
	r := push(t, pw, args...)
	s := parseSummary(t, r)
	if r.code == 0 || s.FilesFailed != 1 || !strings.Contains(r.stdout+r.stderr, "read back") {
		t.Errorf("push with every download cut: exit %d, %d failed, want app.log failed on the read-back\n%s%s", r.code, s.FilesFailed, r.stdout, r.stderr)
	}
	if v := superseded(t, filepath.Join(root, "node1")); v != 0 || p.Stats().Drops == 0 {
		t.Fatalf("%d new versions stored after a cut read-back (%d drops)", v, p.Stats().Drops)
	}
	p.SetFaults(Faults{}, Faults{})
	r = push(t, pw, args...)
	if s := parseSummary(t, r); r.code != 0 || s.BytesSent != int64(len(data)-123_456) {
		t.Fatalf("healthy push: exit %d, sent %d bytes, want the %d after the server's copy\n%s%s", r.code, s.BytesSent, len(data)-123_456, r.stdout, r.stderr)
	}
	n, lost := compareTree(t, logs, filepath.Join(root, "node1"))
	if v := superseded(t, filepath.Join(root, "node1")); n != 1 || v != 0 {
		t.Errorf("archive: %d files identical, %d versions; want 1 and 0", n, v)
	}
	report(t, "read-back of the server's last bytes cut (download dropped after the server's last write)",
		"the file failed that push with a clear error, no new version stored; the next push resumed from the server's size (`TestCutReadBack`)", lost)
}
