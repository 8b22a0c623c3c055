package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/internal/testkit"
	"github.com/syncer-dev/syncer/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.Cleanup()
	testkit.StopS3()
	os.Exit(code)
}

// historian is an in-process ftpfs server with agent account "node1".
type historian struct {
	srv  *ftptest.Server
	root string
	addr string
	pass string
}

func startHistorian(t *testing.T, root, addr string, rate accounts.Rate) *historian {
	t.Helper()
	return newHistorian(t, root, addr, rate, "pw-"+rand.Text()[:12])
}

func startHistorianWithPassword(t *testing.T, root, addr, pass string) *historian {
	t.Helper()
	return newHistorian(t, root, addr, 0, pass)
}

func newHistorian(t *testing.T, root, addr string, rate accounts.Rate, pass string) *historian {
	t.Helper()
	s := ftptest.NewServer(t, root, ftptest.WithAccount(accounts.User{Name: "node1"}, pass),
		ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) {
			if addr != "" {
				cfg.ListenAddr = addr
			}
			cfg.MaxUploadRate = rate
		}))
	return &historian{srv: s, root: root, addr: s.Addr, pass: pass}
}

func (h *historian) stop() { _ = h.srv.Close() }

// agentCmd runs the binary with the password in the environment.
type agentRun struct {
	code           int
	stdout, stderr string
}

func runAgent(t *testing.T, password string, args ...string) agentRun {
	t.Helper()
	r := testkit.RunSyncer(t, password, args...)
	return agentRun{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
}

type summary struct {
	Agent          string `json:"agent"`
	FilesScanned   int64  `json:"files_scanned"`
	FilesNew       int64  `json:"files_new"`
	FilesAppended  int64  `json:"files_appended"`
	FilesRewritten int64  `json:"files_rewritten"`
	FilesUnchanged int64  `json:"files_unchanged"`
	FilesFailed    int64  `json:"files_failed"`
	BytesSent      int64  `json:"bytes_sent"`
	DurationMs     *int64 `json:"duration_ms"`
	Errors         []struct {
		Path  string `json:"path"`
		Error string `json:"error"`
	} `json:"errors"`
}

func parseSummary(t *testing.T, r agentRun) summary {
	t.Helper()
	var s summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("--json output %q: %v (stderr %s)", r.stdout, err, r.stderr)
	}
	if s.DurationMs == nil || s.Errors == nil {
		t.Fatalf("--json output lacks duration_ms or errors: %s", r.stdout)
	}
	return s
}

// manifestDump lists every manifest entry, to show a failed run left it alone.
func manifestDump(t *testing.T, state string) string {
	t.Helper()
	m, err := store.Open(store.Dir(state, "node1"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	it, err := m.Files()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for ; it.Valid(); it.Next() {
		e, err := it.Entry()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %d %x\n", it.Path(), e.Status, e.Archived, e.HashState)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func writeLog(t *testing.T, p string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "2026-11-24T10:00:%02d.000Z INFO request %d served\n", i%60, i)
	}
	if err := os.WriteFile(p, b.Bytes()[:n], 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPushCommandBadInput(t *testing.T) {
	h := startHistorian(t, t.TempDir(), "", 0)
	logs, state := t.TempDir(), t.TempDir()
	writeLog(t, filepath.Join(logs, "a/x.log"), 5000)
	writeLog(t, filepath.Join(logs, "y.log"), 100)
	base := []string{"push", "--server", "ftp://" + h.addr, "--user", "node1", "--agent-id", "node1", "--state", state, "--json"}
	first := runAgent(t, h.pass, append(base, "--dir", logs)...)
	if first.code != 0 {
		t.Fatalf("first push: exit %d: %s", first.code, first.stderr)
	}
	if s := parseSummary(t, first); s.FilesNew != 2 || s.Agent != "node1" {
		t.Fatalf("first push summary: %+v", s)
	}
	before := manifestDump(t, state)
	writeLog(t, filepath.Join(logs, "a/x.log"), 9000) // something to send

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()

	cases := []struct {
		name     string
		password string
		args     []string
		code     int
		mention  string
	}{
		{"missing dir flag", h.pass, base, 2, "--dir"},
		{"directory does not exist", h.pass, append(base[:len(base):len(base)], "--dir", filepath.Join(logs, "nope")), 2, "nope"},
		{"bad glob", h.pass, append(base[:len(base):len(base)], "--dir", logs, "--include", "app/[a-"), 2, `"app/[a-"`},
		{"bad exclude glob", h.pass, append(base[:len(base):len(base)], "--dir", logs, "--exclude", "{x"), 2, `"{x"`},
		{"wrong password", "wrong-" + h.pass, append(base[:len(base):len(base)], "--dir", logs), 3, "login"},
		{"unreachable server", h.pass, []string{"push", "--server", "ftp://" + deadAddr, "--user", "node1", "--agent-id", "node1",
			"--state", state, "--dir", logs}, 3, "unreachable"},
		{"bad server URL", h.pass, []string{"push", "--server", "http://x", "--user", "node1", "--state", state, "--dir", logs}, 2, "--server"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runAgent(t, c.password, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, c.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "syncer: ") || !strings.Contains(lines[0], c.mention) {
				t.Errorf("stderr %q: want one line starting with \"syncer: \" naming %q", r.stderr, c.mention)
			}
			if strings.Contains(r.stderr+r.stdout, h.pass) {
				t.Errorf("the password appears in the output")
			}
			if after := manifestDump(t, state); after != before {
				t.Errorf("manifest changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestPushCommandKill9Resume kills the agent in the middle of a large,
// throttled upload and runs it again: the file ends byte-identical and the
// bytes sent again are at most one buffer.
func TestPushCommandKill9Resume(t *testing.T) {
	root := t.TempDir()
	const rate = 40 << 20
	h := startHistorian(t, root, "", rate)
	logs, state := t.TempDir(), t.TempDir()
	const size = 200 << 20
	big := filepath.Join(logs, "big.log")
	writeLog(t, big, size)
	args := []string{"push", "--server", "ftp://" + h.addr, "--user", "node1", "--agent-id", "node1",
		"--state", state, "--dir", logs, "--json"}
	cmd := exec.Command(testkit.SyncerBinary(t), args...)
	cmd.Env = append(os.Environ(), "SYNCER_PASSWORD="+h.pass)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(root, "node1", "big.log")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if fi, err := os.Stat(remote); err == nil && fi.Size() > 20<<20 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("upload did not get going within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// Let the server notice the cut and close the file, then restart it
	// without the rate limit on the same archive.
	h.stop()
	fi, err := os.Stat(remote)
	if err != nil {
		t.Fatal(err)
	}
	had := fi.Size()
	if had >= size {
		t.Fatalf("the kill came too late: server already has %d of %d bytes", had, size)
	}
	h2 := startHistorian(t, root, "", 0)
	args[2] = "ftp://" + h2.addr
	r := runAgent(t, h2.pass, args...)
	if r.code != 0 {
		t.Fatalf("second push: exit %d: %s", r.code, r.stderr)
	}
	s := parseSummary(t, r)
	missing := int64(size) - had
	resent := s.BytesSent - missing
	t.Logf("server had %d bytes after the kill; second push sent %d (missing %d, re-sent %d)", had, s.BytesSent, missing, resent)
	if resent < 0 || resent > ftpfs.UploadBufferSize {
		t.Errorf("re-sent %d bytes, want 0..%d (one buffer)", resent, ftpfs.UploadBufferSize)
	}
	if got, want := sum(t, remote), sum(t, big); got != want {
		t.Fatalf("server copy differs from the file after resume")
	}
	if vs, _ := filepath.Glob(remote + ".superseded-*"); len(vs) != 0 {
		t.Errorf("resume made versions: %v", vs)
	}
}

func sum(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
