package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/internal/testkit"
	"github.com/syncer-dev/syncer/store"
)

// tlsHistorian is an in-process FTPS historian with agent account node1
// and bans after banAfter failed logins (-1: none).
func tlsHistorian(t *testing.T, banAfter int) *ftptest.Server {
	t.Helper()
	return ftptest.NewServer(t, t.TempDir(), ftptest.WithAccount(accounts.User{Name: "node1"}, "pw-"+strings.Repeat("k", 12)),
		ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) {
			cfg.TLSSelfSigned = true
			cfg.BanAfter = banAfter
			cfg.LoginFailDelay = -1
		}))
}

// oneLine checks that a failed command said one line, "syncer: ...",
// naming every word of mention, and never the password.
func oneLine(t *testing.T, r agentRun, code int, password string, mention ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d; stderr %q", r.code, code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "syncer: ") {
		t.Fatalf("stderr %q: want one line starting with \"syncer: \"", r.stderr)
	}
	for _, m := range mention {
		if !strings.Contains(lines[0], m) {
			t.Errorf("stderr %q does not name %q", lines[0], m)
		}
	}
	if password != "" && strings.Contains(r.stderr+r.stdout, password) {
		t.Error("the password appears in the output")
	}
}

// TestPushRefusalsNamed: an unchanged tree is pushed with settings that
// cannot work. Before every push logged in, all of these exited 0 (nothing
// to send, nothing dialled); a ban was reported per file as "server busy",
// exit 1, and a rejected certificate as an unreachable server.
func TestPushRefusalsNamed(t *testing.T) {
	h := tlsHistorian(t, -1)
	logs, state := t.TempDir(), t.TempDir()
	writeLog(t, filepath.Join(logs, "a.log"), 3000)
	base := []string{"push", "--user", "node1", "--state", state, "--dir", logs}
	good := append(base[:len(base):len(base)], "--server", h.URL, "--agent-id", "node1", "--tls-fingerprint", h.Fingerprint)
	if r := runAgent(t, h.Password, good...); r.code != 0 {
		t.Fatalf("first push: exit %d: %s", r.code, r.stderr)
	}
	before := manifestDump(t, state)

	dead := testkit.FreeAddr(t)
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	wrongPin := "sha256:" + strings.Repeat("ab", 32)
	with := func(args ...string) []string { return append(base[:len(base):len(base)], args...) }
	cases := []struct {
		name, password string
		args           []string
		code           int
		mention        []string
	}{
		{"wrong password", "wrong", with("--server", h.URL, "--agent-id", "node1", "--tls-fingerprint", h.Fingerprint), 3,
			[]string{`login refused for account "node1"`, "password"}},
		{"dead historian", h.Password, with("--server", "ftps://"+dead, "--agent-id", "node1", "--tls-fingerprint", h.Fingerprint), 3,
			[]string{"not reachable", dead}},
		{"HTTP port given as FTP", h.Password, with("--server", "ftp://"+strings.TrimPrefix(web.URL, "http://"), "--agent-id", "node1"), 3,
			[]string{"not reachable"}},
		{"certificate not trusted", h.Password, with("--server", h.URL, "--agent-id", "node1"), 3,
			[]string{"certificate", "--tls-fingerprint", "--tls-ca"}},
		{"wrong pin", h.Password, with("--server", h.URL, "--agent-id", "node1", "--tls-fingerprint", wrongPin), 3,
			[]string{"certificate", "--tls-fingerprint"}},
		{"malformed pin", h.Password, with("--server", h.URL, "--agent-id", "node1", "--tls-fingerprint", "sha256:abc"), 2,
			[]string{"--tls-fingerprint", "64 hex digits"}},
		{"pin without TLS", h.Password, with("--server", "ftp://"+h.Addr, "--agent-id", "node1", "--tls-fingerprint", h.Fingerprint), 2,
			[]string{"ftps://"}},
		{"agent id not the account's", h.Password, with("--server", h.URL, "--agent-id", "othernode", "--tls-fingerprint", h.Fingerprint), 2,
			[]string{`account "node1" may not write /othernode/`, "--agent-id node1"}},
		{"dry run with a wrong password", "wrong", with("--server", h.URL, "--agent-id", "node1", "--tls-fingerprint", h.Fingerprint, "--dry-run"), 3,
			[]string{"login refused"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runAgent(t, c.password, c.args...)
			oneLine(t, r, c.code, h.Password, c.mention...)
			if after := manifestDump(t, state); after != before {
				t.Errorf("manifest changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestPushBanNamed: after failed logins the historian bans the address;
// the next push, with the right password, says so with the ban's end,
// exit 3 (before: "1 of 1 files failed", exit 1, or exit 0 with nothing
// to send).
func TestPushBanNamed(t *testing.T) {
	h := tlsHistorian(t, 2)
	logs, state := t.TempDir(), t.TempDir()
	writeLog(t, filepath.Join(logs, "a.log"), 3000)
	args := []string{"push", "--user", "node1", "--state", state, "--dir", logs, "--server", h.URL, "--agent-id", "node1", "--tls-fingerprint", h.Fingerprint}
	oneLine(t, runAgent(t, "wrong", args...), 3, "", "login refused")
	// The second failure bans: its answer is the 530 or the ban's 421,
	// whichever the server sends first.
	oneLine(t, runAgent(t, "wrong", args...), 3, "")
	r := runAgent(t, h.Password, args...)
	oneLine(t, r, 3, h.Password, "refuses this address until", "failed logins", "syncer ban remove")
	if !regexp.MustCompile(`until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).MatchString(r.stderr) {
		t.Errorf("the ban's end is not named: %s", r.stderr)
	}
}

// TestPushFailureSummary: when every file that needed sending failed, the
// last line does not claim "the rest were archived".
func TestPushFailureSummary(t *testing.T) {
	h := startHistorian(t, t.TempDir(), "", 0)
	logs, state := t.TempDir(), t.TempDir()
	writeLog(t, filepath.Join(logs, "sub", "a.log"), 1000)
	// A file where the agent needs a directory: the upload fails.
	if err := os.MkdirAll(filepath.Join(h.root, "node1"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.root, "node1", "sub"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	r := runAgent(t, h.pass, "push", "--server", "ftp://"+h.addr, "--user", "node1", "--agent-id", "node1", "--state", state, "--dir", logs)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "1 file failed and nothing was archived") || strings.Contains(r.stderr, "the rest were archived") {
		t.Errorf("last line %q: want it to say nothing was archived", last)
	}
}

// TestVersionFlagAndDryRunState: `syncer --version` works, and a dry run
// creates no state directory.
func TestVersionFlagAndDryRunState(t *testing.T) {
	r := runAgent(t, "", "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "syncer ") {
		t.Fatalf("syncer --version: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if v := runAgent(t, "", "version"); v.stdout != r.stdout {
		t.Errorf("--version %q, version %q: want the same", r.stdout, v.stdout)
	}
	logs := t.TempDir()
	writeLog(t, filepath.Join(logs, "a.log"), 100)
	state := filepath.Join(t.TempDir(), "state")
	d := runAgent(t, "", "push", "--dry-run", "--dir", logs, "--state", state)
	if d.code != 0 || !strings.Contains(d.stdout, "a.log") {
		t.Fatalf("dry run: exit %d, stdout %q, stderr %q", d.code, d.stdout, d.stderr)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("dry run created %s: %v", state, err)
	}
}

type checkJSON struct {
	Server        string   `json:"server"`
	TLS           string   `json:"tls"`
	Fingerprint   string   `json:"fingerprint"`
	Pinned        bool     `json:"pinned"`
	ServerVersion string   `json:"server_version"`
	ClockSkewMs   *int64   `json:"clock_skew_ms"`
	Tree          string   `json:"tree"`
	Files         int64    `json:"files_matched"`
	Unmatched     []string `json:"unmatched_patterns"`
	Warnings      []string `json:"warnings"`
}

// TestCheckCommand: `syncer check` with good settings reports the TLS
// pin, the historian's version and clock, the writable tree and the
// matched files, beside a watch that holds the manifest; with bad ones it
// exits as push does.
func TestCheckCommand(t *testing.T) {
	h := tlsHistorian(t, -1)
	logs, state := t.TempDir(), t.TempDir()
	writeLog(t, filepath.Join(logs, "a.log"), 100)
	writeLog(t, filepath.Join(logs, "x", "b.log"), 100)
	// A running watch holds the manifest; check must not need it.
	m, err := store.Open(store.Dir(state, "node1"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	args := []string{"check", "--server", h.URL, "--user", "node1", "--agent-id", "node1", "--state", state, "--dir", logs,
		"--tls-fingerprint", h.Fingerprint}
	r := runAgent(t, h.Password, args...)
	if r.code != 0 {
		t.Fatalf("check: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"TLS 1.3", h.Fingerprint + " (pinned)", "account node1: accepted", "historian  syncer ", "/node1/: writable", "2 files under", "ok: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runAgent(t, h.Password, append(args, "--json", "--include", "**/*.log", "--include", "*.txt")...)
	if r.code != 0 {
		t.Fatalf("check --json: exit %d: %s", r.code, r.stderr)
	}
	var rep checkJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check --json output %q: %v", r.stdout, err)
	}
	if rep.ServerVersion == "" || rep.ClockSkewMs == nil || rep.Fingerprint != h.Fingerprint || !rep.Pinned || rep.Tree != "/node1/" || rep.Files != 2 {
		t.Errorf("check --json: %+v", rep)
	}
	if skew := *rep.ClockSkewMs; skew < -5000 || skew > 5000 {
		t.Errorf("clock skew %d ms between two processes of one machine", skew)
	}
	if len(rep.Unmatched) != 1 || rep.Unmatched[0] != "*.txt" || len(rep.Warnings) != 1 {
		t.Errorf("a pattern that matches nothing: unmatched %v, warnings %v", rep.Unmatched, rep.Warnings)
	}
	if entries, _ := os.ReadDir(filepath.Join(h.Root, "node1")); len(entries) != 0 {
		t.Errorf("check stored something in the agent's tree: %v", entries)
	}

	// The pin the error messages point to.
	if fp := runAgent(t, "", "tls", "fingerprint", "--state", h.StateDir); fp.code != 0 || strings.TrimSpace(fp.stdout) != h.Fingerprint {
		t.Errorf("syncer tls fingerprint: exit %d, %q, want %s (%s)", fp.code, fp.stdout, h.Fingerprint, fp.stderr)
	}
	oneLine(t, runAgent(t, "", "tls", "fingerprint", "--state", t.TempDir()), 2, "", "no certificate")

	oneLine(t, runAgent(t, "wrong", args...), 3, "", "login refused")
	oneLine(t, runAgent(t, h.Password, append(args[:len(args)-2:len(args)-2], "--tls-fingerprint", "sha256:"+strings.Repeat("00", 32))...), 3, "", "--tls-fingerprint")
	bad := append([]string{}, args...)
	bad[6] = "othernode" // --agent-id
	oneLine(t, runAgent(t, h.Password, bad...), 2, "", "may not write /othernode/")
}

// TestWatchWrongPasswordWaitsLong: a watch with a wrong password tries
// once and waits minutes, saying so, instead of retrying at 1, 2, 4, 8 s
// and getting the node's address banned.
func TestWatchWrongPasswordWaitsLong(t *testing.T) {
	h := ftptest.NewServer(t, t.TempDir(), ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) {
		cfg.LoginFailDelay = -1
		cfg.BanAfter = 3
	}))
	logs, state := t.TempDir(), t.TempDir()
	writeLog(t, filepath.Join(logs, "a.log"), 100)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.SyncerBinary(t), "watch", "--interval", "200ms", "--server", h.URL, "--user", h.User,
		"--agent-id", h.User, "--state", state, "--dir", logs)
	cmd.Env = append(os.Environ(), "SYNCER_PASSWORD=wrong")
	stderr := &testkit.LockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	out := stderr.String()
	fails := strings.Count(out, "login refused")
	if fails != 1 {
		t.Errorf("watch tried %d times in 4 s with a wrong password, want 1:\n%s", fails, out)
	}
	if !strings.Contains(out, "retry_in=5m0s") || !strings.Contains(out, "check the account name and password") {
		t.Errorf("watch did not say it waits minutes:\n%s", out)
	}
	if _, banned := h.FTP().Defender().Banned("127.0.0.1"); banned {
		t.Error("the watch got its own address banned")
	}
}

// TestExampleAgentConfigServesEveryAgentCommand: scripts/agent.example.yaml,
// pointed at a test historian, works as written with push, check and watch
// (push failed on watch's "interval" key before).
func TestExampleAgentConfigServesEveryAgentCommand(t *testing.T) {
	h := startHistorian(t, t.TempDir(), "", 0)
	logs, state, dir := t.TempDir(), t.TempDir(), t.TempDir()
	writeLog(t, filepath.Join(logs, "a.log"), 100)
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(h.pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("..", "..", "scripts", "agent.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(src)
	for _, r := range []struct{ key, val string }{
		{"server", "ftp://" + h.addr}, {"user", "node1"}, {"agent-id", "node1"},
		{"password-file", pwFile}, {"dir", logs}, {"state", state},
	} {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(r.key) + `:.*$`)
		if !re.MatchString(cfg) {
			t.Fatalf("agent.example.yaml has no %q key", r.key)
		}
		cfg = re.ReplaceAllString(cfg, r.key+": "+r.val)
	}
	file := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "--config", file}, {"push", "--config", file}, {"watch", "--config", file, "--dry-run"}} {
		if r := runAgent(t, "", args...); r.code != 0 {
			t.Errorf("syncer %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(h.root, "node1", "a.log")); err != nil {
		t.Errorf("push --config archived nothing: %v", err)
	}
}

// underTerminal runs the syncer binary under a pseudo-terminal (util-linux
// script(1)) and returns what the terminal showed, with ANSI sequences
// removed and carriage returns made line ends.
func underTerminal(t *testing.T, password string, args ...string) (string, int) {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script(1) from util-linux is needed (.ci/run installs it): %v", err)
	}
	quoted := make([]string, 0, len(args)+1)
	for _, a := range append([]string{testkit.SyncerBinary(t)}, args...) {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-qefc", strings.Join(quoted, " "), "/dev/null")
	cmd.Env = append(os.Environ(), "SYNCER_PASSWORD="+password, "TERM=xterm", "COLUMNS=120")
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("script: %v", err)
	}
	plain := regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`).ReplaceAllString(string(out), "")
	return strings.ReplaceAll(strings.ReplaceAll(plain, "\r\n", "\n"), "\r", "\n"), code
}

// TestPushOnTerminal: on a terminal, push shows a bar in bytes (IEC
// units) only once it is logged in, prints warnings on lines of their own
// above it, and ends with a summary for people; -q prints nothing on
// success. Before, the bar reached 100% before a login failure, counted
// files while measuring bytes, and warnings were glued onto its line.
func TestPushOnTerminal(t *testing.T) {
	root := t.TempDir()
	h := startHistorian(t, root, "", 6<<20)
	logs := t.TempDir()
	writeLog(t, filepath.Join(logs, "big.log"), 9<<20)
	writeLog(t, filepath.Join(logs, "sub", "a.log"), 100)
	// A file where the agent needs a directory: one warning mid-push.
	if err := os.MkdirAll(filepath.Join(root, "node1"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "node1", "sub"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	args := []string{"push", "--server", "ftp://" + h.addr, "--user", "node1", "--agent-id", "node1", "--dir", logs}

	out, code := underTerminal(t, "wrong", append(args, "--state", t.TempDir())...)
	if code != 3 || strings.Contains(out, "%") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("login failure on a terminal: exit %d, want 3 and one line, no bar:\n%s", code, out)
	}

	out, code = underTerminal(t, h.pass, append(args, "--state", t.TempDir())...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one file failed):\n%s", code, out)
	}
	var bars, warns int
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(l, "level=WARN"):
			warns++
			if !strings.HasPrefix(l, "time=") {
				t.Errorf("warning not on a line of its own: %q", l)
			}
		case strings.Contains(l, "% |"):
			bars++
			if !regexp.MustCompile(`\(\s*[\d.]+( [KMG]iB| B)?/[\d.]+ ([KMG]iB|B)(, [\d.]+ ([KMG]iB|B)/s)?\)`).MatchString(l) {
				t.Errorf("bar line not in IEC bytes: %q", l)
			}
		}
	}
	if bars == 0 || warns != 1 {
		t.Errorf("%d bar lines, %d warnings, want some and 1:\n%s", bars, warns, out)
	}
	for _, want := range []string{"Archived:   9.0 MiB in 1 file (1 new", "Failed:     1 file", "Elapsed:"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, " MB") || strings.Contains(out, "push done") {
		t.Errorf("SI units or the log line instead of the summary:\n%s", out)
	}

	writeLog(t, filepath.Join(logs, "c.log"), 100)
	if err := os.Remove(filepath.Join(root, "node1", "sub")); err != nil {
		t.Fatal(err)
	}
	out, code = underTerminal(t, h.pass, append(args, "--state", t.TempDir(), "-q")...)
	if code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("push -q: exit %d, output %q, want 0 and nothing", code, out)
	}
}

// TestServeLogsCalmly: with --log-format json every line of serve's log is
// a JSON object; single logins and uploads are DEBUG, summed up by one
// INFO activity line; the certificate pin has a line of its own; a push
// over TLS leaves no WARN (before: one INFO line per upload, most of them
// the agent's metadata, and spurious close_notify WARNs).
func TestServeLogsCalmly(t *testing.T) {
	c := newServeConfigLogin(t, "pw-node1-secret", "tls-self-signed: true\nlog-format: json\n")
	p := startServe(t, c.config, c.http)
	fp := runAgent(t, "", "tls", "fingerprint", "--state", c.state)
	logs := filepath.Join(c.base, "logs")
	for i := range 5 {
		writeLog(t, filepath.Join(logs, fmt.Sprintf("f%d.log", i)), 1000)
	}
	for range 3 {
		r := runAgent(t, "pw-node1-secret", "push", "--server", "ftps://"+c.ftp, "--user", "node1", "--agent-id", "node1",
			"--dir", logs, "--state", filepath.Join(c.base, "agent"), "--tls-fingerprint", strings.TrimSpace(fp.stdout))
		if r.code != 0 {
			t.Fatalf("push: exit %d: %s", r.code, r.stderr)
		}
	}
	p.stop(t)
	var pinned bool
	var uploads float64
	for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line that is not JSON: %q", line)
		}
		msg, _ := rec["msg"].(string)
		switch {
		case rec["level"] == "WARN" || rec["level"] == "ERROR":
			t.Errorf("%s after successful pushes: %s", rec["level"], line)
		case msg == "upload closed" || msg == "login":
			t.Errorf("a single upload or login above DEBUG: %s", line)
		case strings.Contains(msg, "--tls-fingerprint "+strings.TrimSpace(fp.stdout)):
			pinned = true
		case msg == "activity":
			up, _ := rec["uploads"].(float64)
			uploads += up
		}
	}
	// 5 files, a commit record and 3 heartbeats, in one summary or more.
	if uploads != 9 {
		t.Errorf("activity lines count %v uploads, want 9:\n%s", uploads, p.stderr)
	}
	if !pinned {
		t.Errorf("no line of its own with the pin:\n%s", p.stderr)
	}
	for _, bad := range [][]string{{"--log-level", "loud"}, {"--log-format", "xml"}} {
		oneLine(t, runAgent(t, "", append([]string{"serve", "--root", t.TempDir(), "--state", t.TempDir()}, bad...)...), 2, "", bad[0])
	}
}
