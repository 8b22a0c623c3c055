package syncer_test

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/internal/testkit"
	"github.com/syncer-dev/syncer/store"
	"github.com/syncer-dev/syncer/syncer"
)

// target is a running FTP server the agent pushes to.
type target struct {
	name       string
	url        string
	user, pass string
	// remoteRoot is the server directory holding agents' trees; tree is the
	// local directory where the server stores the tree of agent "node1".
	remoteRoot string
	tree       string
	// versions: the server keeps superseded versions (only ours does).
	versions bool
	// byteNames: the server stores names that are not UTF-8 byte-exact.
	byteNames bool
}

const testAgent = "node1"

// startSyncerServer runs the ftpfs server in-process with an agent account.
func startSyncerServer(t *testing.T, mod func(*ftpfs.ServerConfig)) *target {
	t.Helper()
	opts := []ftptest.Option{ftptest.WithAccount(accounts.User{Name: testAgent}, "pw-"+crand.Text()[:10]),
		ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) { cfg.BanAfter = 0 })} // the server's default
	if mod != nil {
		opts = append(opts, ftptest.WithConfig(mod))
	}
	s := ftptest.NewServer(t, "", opts...)
	return &target{name: "syncer", url: s.URL, user: s.User, pass: s.Password,
		remoteRoot: "/", tree: filepath.Join(s.Root, testAgent), versions: true}
}

func startPyftpdlib(t *testing.T) *target {
	t.Helper()
	pass := "pw-" + crand.Text()[:10]
	// ByteNames: file names are bytes end to end, as FTP allows.
	srv := testkit.StartPyftpd(t, testkit.PyftpdConfig{User: "agent", Password: pass, ByteNames: true,
		AuthFailedTimeout: 10 * time.Millisecond})
	return &target{name: "pyftpdlib", url: srv.URL, user: "agent", pass: pass,
		remoteRoot: "/", tree: filepath.Join(srv.Root, testAgent)}
}

// agentEnv is one agent: a log directory, a state directory, a target.
type agentEnv struct {
	t     *testing.T
	tg    *target
	dir   string
	state string
	opts  syncer.Options
}

func newEnv(t *testing.T, tg *target) *agentEnv {
	t.Helper()
	e := &agentEnv{t: t, tg: tg, dir: t.TempDir(), state: t.TempDir()}
	e.opts = syncer.Options{AgentID: testAgent, Dir: e.dir, StateDir: e.state, Parallel: 3, RemoteRoot: tg.remoteRoot}
	return e
}

// push runs one push with a fresh agent and manifest, as a new process would.
func (e *agentEnv) push() syncer.Summary {
	e.t.Helper()
	sum, err := e.tryPush()
	if err != nil {
		e.t.Fatalf("push: %v", err)
	}
	return sum
}

func (e *agentEnv) tryPush() (syncer.Summary, error) {
	e.t.Helper()
	m, err := store.Open(store.Dir(e.state, testAgent))
	if err != nil {
		e.t.Fatal(err)
	}
	defer m.Close()
	a, err := syncer.NewAgent(e.opts, m)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var conns syncer.Conns
	if !e.opts.DryRun {
		conns = syncer.NewConns(ftpfs.ClientConfig{Server: e.tg.url, User: e.tg.user, Password: e.tg.pass,
			DialTimeout: 5 * time.Second, IOTimeout: 20 * time.Second}, e.opts.Parallel)
		defer conns.Close()
	}
	return a.Push(ctx, conns)
}

// entry reads the manifest entry of rel.
func (e *agentEnv) entry(rel string) (store.Entry, error) {
	e.t.Helper()
	m, err := store.Open(store.Dir(e.state, testAgent))
	if err != nil {
		e.t.Fatal(err)
	}
	defer m.Close()
	return m.Get([]byte(rel))
}

func (e *agentEnv) write(rel string, data []byte) {
	e.t.Helper()
	p := filepath.Join(e.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *agentEnv) appendTo(rel string, data []byte) {
	e.t.Helper()
	f, err := os.OpenFile(filepath.Join(e.dir, filepath.FromSlash(rel)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		e.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		e.t.Fatal(err)
	}
}

// logLines makes n bytes of log-like text from a seeded generator.
func logLines(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	levels := []string{"INFO", "WARN", "ERROR", "DEBUG"}
	var b strings.Builder
	ts := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	for b.Len() < n {
		ts = ts.Add(time.Duration(r.IntN(5000)) * time.Millisecond)
		fmt.Fprintf(&b, "%s %-5s req=%08x took=%dms %s\n", ts.Format(time.RFC3339Nano), levels[r.IntN(4)], r.Uint32(), r.IntN(900), strings.Repeat("x", r.IntN(60)))
	}
	return []byte(b.String()[:n])
}

// makeTree writes n log files of assorted sizes (and a few non-log files)
// and returns their relative paths.
func (e *agentEnv) makeTree(n int) []string {
	e.t.Helper()
	var paths []string
	for i := 0; i < n; i++ {
		rel := fmt.Sprintf("app%d/2026-11-%02d/part-%03d.log", i%3, 1+i%5, i)
		size := []int{0, 1, 100, 4095, 4096, 4097, 70_000, 300_000}[i%8]
		e.write(rel, logLines(uint64(i), size))
		paths = append(paths, rel)
	}
	e.write("app0/notes.txt", []byte("not a log\n"))
	return paths
}

// snapshot maps every file under root (relative slash path) to "size sha256".
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = fileSum(t, p)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d %s", n, hex.EncodeToString(h.Sum(nil)))
}

// logFiles keeps the entries of a snapshot that are log files (not the
// agent's .syncer metadata, not superseded versions).
func logFiles(snap map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range snap {
		if strings.HasPrefix(k, ".syncer/") || strings.Contains(k, ".superseded-") {
			continue
		}
		out[k] = v
	}
	return out
}

// wantSameTree fails unless the server's copy of the agent's log files
// equals the local log files (.log files only: the default pattern).
func (e *agentEnv) wantSameTree() {
	e.t.Helper()
	local := map[string]string{}
	for k, v := range snapshot(e.t, e.dir) {
		if strings.HasSuffix(k, ".log") {
			local[k] = v
		}
	}
	remote := logFiles(snapshot(e.t, e.tg.tree))
	for k, v := range local {
		if remote[k] != v {
			e.t.Errorf("%s: server has %q, local %q", k, remote[k], v)
		}
	}
	for k := range remote {
		if _, ok := local[k]; !ok {
			e.t.Errorf("%s: on the server but not local", k)
		}
	}
}
