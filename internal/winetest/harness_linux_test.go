//go:build linux

package winetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// The wine suite's machine: one private wine prefix per test binary (its
// first start takes seconds), syncer.exe and the control program winctl.exe
// built once, and a keep-alive process. The keep-alive matters: wine stops
// its services (and services.exe) when the last ordinary wine process
// exits, so without it a service test would see its service killed
// between two commands, and every command would start wine's server again.

var (
	setupOnce sync.Once
	theWine   *wineEnv
	setupErr  error
)

// wineEnv is the prepared wine prefix and the Windows programs.
type wineEnv struct {
	dir    string // temporary: builds and the prefix
	prefix string
	env    []string
	exe    string // syncer.exe
	ctl    string // winctl.exe
	keep   *exec.Cmd
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theWine != nil {
		theWine.close()
	}
	testkit.Cleanup()
	os.Exit(code)
}

// needWine returns the prepared wine, or skips (fails in CI) when wine or
// mingw-w64 is missing.
func needWine(t *testing.T) *wineEnv {
	t.Helper()
	testkit.Require(t, "wine", "wine", "wineserver")
	testkit.Require(t, "wine64", "/usr/lib/wine/wine64")
	testkit.Require(t, "gcc-mingw-w64-x86-64-win32", "x86_64-w64-mingw32-gcc")
	setupOnce.Do(func() { theWine, setupErr = setupWine() })
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return theWine
}

func setupWine() (*wineEnv, error) {
	dir, err := os.MkdirTemp("", "syncer-wine-")
	if err != nil {
		return nil, err
	}
	w := &wineEnv{dir: dir, prefix: filepath.Join(dir, "prefix"),
		exe: filepath.Join(dir, "syncer.exe"), ctl: filepath.Join(dir, "winctl.exe")}
	for _, kv := range os.Environ() {
		// No display: wine must not try to open windows (a dialog would
		// wait for a click that never comes).
		if k, _, _ := strings.Cut(kv, "="); k == "DISPLAY" || k == "WAYLAND_DISPLAY" || strings.HasPrefix(k, "WINE") {
			continue
		}
		w.env = append(w.env, kv)
	}
	w.env = append(w.env, "WINEPREFIX="+w.prefix, "WINEDEBUG=-all",
		// No Mono or Gecko install prompt on the first start.
		"WINEDLLOVERRIDES=mscoree=;mshtml=")
	build := func(out, pkg string) error {
		c := exec.Command("go", "build", "-o", out, pkg)
		c.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		if b, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s for windows: %v\n%s", pkg, err, b)
		}
		return nil
	}
	if err := build(w.exe, "github.com/syncer-dev/syncer/cmd/syncer"); err != nil {
		return w, err
	}
	if err := build(w.ctl, "./testdata/winctl"); err != nil {
		return w, err
	}
	dll := filepath.Join(dir, "bcryptprimitives.dll")
	if b, err := exec.Command("x86_64-w64-mingw32-gcc", "-shared", "-O2", "-o", dll,
		"testdata/prng/prng.c", "testdata/prng/prng.def").CombinedOutput(); err != nil {
		return w, fmt.Errorf("build the ProcessPrng stand-in: %v\n%s", err, b)
	}
	// wineboot starts wine's server and services, which keep the
	// standard output and error they inherit: a file, not a pipe that
	// would never reach its end.
	bootLog := filepath.Join(dir, "wineboot.log")
	lf, err := os.Create(bootLog)
	if err != nil {
		return w, err
	}
	defer lf.Close()
	boot := exec.Command("wineboot", "-i")
	boot.Env, boot.Stdout, boot.Stderr = w.env, lf, lf
	if err := boot.Run(); err != nil {
		b, _ := os.ReadFile(bootLog)
		return w, fmt.Errorf("wineboot -i (prefix %s): %v\n%s", w.prefix, err, b)
	}
	// Go's runtime loads bcryptprimitives.dll from system32 only
	// (LOAD_LIBRARY_SEARCH_SYSTEM32): beside the .exe it is not found.
	sys32 := filepath.Join(w.prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll")
	data, err := os.ReadFile(dll)
	if err != nil {
		return w, err
	}
	if err := os.WriteFile(sys32, data, 0o644); err != nil {
		return w, err
	}
	// Let the server wineboot started go down, so that the keep-alive
	// starts one (and services.exe) that stays, rather than racing with
	// its shutdown.
	ws := exec.Command("wineserver", "-w")
	ws.Env = w.env
	if err := ws.Run(); err != nil {
		return w, fmt.Errorf("wineserver -w: %w", err)
	}
	w.keep = exec.Command("wine", w.ctl, "sleep", "3600")
	w.keep.Env = w.env
	if err := w.keep.Start(); err != nil {
		return w, fmt.Errorf("start wine: %w", err)
	}
	// The first Go program under the prefix: fails here, with its
	// output, if the stand-in does not do.
	v := w.command(context.Background(), w.exe, "version")
	if b, err := v.CombinedOutput(); (err != nil && !errors.Is(err, exec.ErrWaitDelay)) || !strings.Contains(string(b), "syncer") {
		return w, fmt.Errorf("syncer.exe version under wine: %v\n%s", err, b)
	}
	// services.exe answers "database locked" while it starts the
	// services of a new server: wait until it answers.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c := w.command(context.Background(), w.exe, "service", "status", "--name", "syncer-probe")
		b, _ := c.CombinedOutput()
		if strings.Contains(string(b), "not installed") {
			break
		}
		if time.Now().After(deadline) {
			return w, fmt.Errorf("wine's service control manager not ready after 2 minutes: %s", b)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return w, nil
}

func (w *wineEnv) close() {
	if w.keep != nil && w.keep.Process != nil {
		_ = w.keep.Process.Kill()
		_ = w.keep.Wait()
	}
	k := exec.Command("wineserver", "-k")
	k.Env = w.env
	_ = k.Run()
	_ = os.RemoveAll(w.dir)
}

// winPath is the Windows name of the Linux path p (wine's drive Z: is /).
func winPath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

// result is what a finished Windows program printed and its exit code.
type result struct {
	code           int
	stdout, stderr string
}

// command returns the wine command running the Windows program exe.
func (w *wineEnv) command(ctx context.Context, exe string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, "wine", append([]string{exe}, args...)...)
	c.Env = w.env
	// A wine process may leave a helper holding its output pipes: stop
	// reading a moment after the program itself exited.
	c.WaitDelay = 5 * time.Second
	return c
}

// run runs exe with args under wine to the end (at most three minutes).
func (w *wineEnv) run(t *testing.T, stdin string, exe string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := w.command(ctx, exe, args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	err := c.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		t.Fatalf("wine %s %v: %v", filepath.Base(exe), args, err)
	}
	return r
}

// syncer runs syncer.exe.
func (w *wineEnv) syncer(t *testing.T, args ...string) result {
	t.Helper()
	return w.run(t, "", w.exe, args...)
}

// winctl runs the control program and wants it to succeed.
func (w *wineEnv) winctl(t *testing.T, args ...string) {
	t.Helper()
	if r := w.run(t, "", w.ctl, args...); r.code != 0 {
		t.Fatalf("winctl %v: exit %d: %s", args, r.code, r.stderr)
	}
}

// historian is `syncer serve` (the Linux build) on loopback with one
// agent account, node1.
type historian struct {
	t           *testing.T
	root, state string
	ftp, http   string
	pass        string
	extra       []string
	cmd         *exec.Cmd
	done        chan error
	stderr      *testkit.LockedBuffer
}

func newHistorian(t *testing.T, extra ...string) *historian {
	t.Helper()
	dir := t.TempDir()
	h := &historian{t: t, root: filepath.Join(dir, "archive"), state: filepath.Join(dir, "state"),
		pass: "pw-wine-node1-long-enough", extra: extra}
	add := exec.Command(testkit.SyncerBinary(t), "user", "add", "node1", "--password-stdin", "--state", h.state)
	add.Stdin = strings.NewReader(h.pass + "\n")
	if b, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, b)
	}
	t.Cleanup(func() {
		h.kill()
		if t.Failed() && h.stderr != nil {
			t.Logf("serve output:\n%s", h.stderr.String())
		}
	})
	h.start()
	return h
}

// start runs serve and waits for /healthz; the first start picks the
// ports, a restart binds the same ones again.
func (h *historian) start() {
	h.t.Helper()
	first := h.ftp == ""
	for try := 1; ; try++ {
		if first {
			h.ftp, h.http = testkit.FreeAddr(h.t), testkit.FreeAddr(h.t)
		}
		err := h.startOnce()
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "address already in use") || try == 20 {
			h.t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (h *historian) startOnce() error {
	args := append([]string{"serve", "--root", h.root, "--state", h.state, "--ftp", h.ftp, "--http", h.http, "--http-no-login"}, h.extra...)
	h.stderr = &testkit.LockedBuffer{Limit: 1 << 20}
	var err error
	h.cmd, h.done, err = testkit.StartServe(h.t, h.http, h.stderr, args...)
	return err
}

// stop stops serve with SIGTERM and wants exit 0.
func (h *historian) stop() {
	h.t.Helper()
	if h.cmd == nil || h.cmd.ProcessState != nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("serve after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		h.t.Error("serve did not stop within 60s of SIGTERM")
		h.kill()
	}
}

func (h *historian) kill() {
	if h.cmd != nil && h.cmd.ProcessState == nil {
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

// agent is one Windows node: its log directory, state and password file.
type agent struct {
	w                   *wineEnv
	h                   *historian
	logs, state, pwFile string
}

func newAgent(t *testing.T, w *wineEnv, h *historian) *agent {
	t.Helper()
	dir := t.TempDir()
	a := &agent{w: w, h: h, logs: filepath.Join(dir, "logs"), state: filepath.Join(dir, "state"), pwFile: filepath.Join(dir, "pw")}
	if err := os.MkdirAll(a.logs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.pwFile, []byte(h.pass+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// args are the flags of push and watch for this agent (agent id node1, as the account).
func (a *agent) args(extra ...string) []string {
	return append([]string{"--server", "ftp://" + a.h.ftp, "--user", "node1", "--agent-id", "node1",
		"--password-file", winPath(a.pwFile), "--dir", winPath(a.logs), "--state", winPath(a.state)}, extra...)
}

// summary is the part of push --json the tests read.
type summary struct {
	FilesScanned   int64 `json:"files_scanned"`
	FilesNew       int64 `json:"files_new"`
	FilesAppended  int64 `json:"files_appended"`
	FilesRewritten int64 `json:"files_rewritten"`
	FilesUnchanged int64 `json:"files_unchanged"`
	FilesRotated   int64 `json:"files_rotated"`
	FilesFailed    int64 `json:"files_failed"`
	BytesSent      int64 `json:"bytes_sent"`
}

// push runs syncer.exe push --json and wants exit 0.
func (a *agent) push(t *testing.T, extra ...string) summary {
	t.Helper()
	r := a.w.syncer(t, append([]string{"push", "--json"}, a.args(extra...)...)...)
	if r.code != 0 {
		t.Fatalf("push: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var s summary
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &s); err != nil {
		t.Fatalf("push --json: %v: %q", err, r.stdout)
	}
	return s
}

// archived is the archive's copy of rel (slash-separated) of agent node1.
func (a *agent) archived(rel string) string {
	return filepath.Join(a.h.root, "node1", filepath.FromSlash(rel))
}

func sha(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sameFile(a, b string) bool {
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// writeFile writes data to p, making its directory.
func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// appendFile appends data to p.
func appendFile(t *testing.T, p string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

// lineLog numbers the lines it writes, so that a test can check that the
// archive holds each line exactly once through rotations.
type lineLog struct {
	n int
}

// lines returns count new numbered lines of about width bytes each.
func (l *lineLog) lines(count, width int) []byte {
	var b bytes.Buffer
	for range count {
		fmt.Fprintf(&b, "line %07d %s\n", l.n, strings.Repeat("x", width))
		l.n++
	}
	return b.Bytes()
}

// everyLineOnce checks that the archived files under dir (relative to
// win1's tree) hold each of the n lines written exactly once.
func (l *lineLog) everyLineOnce(t *testing.T, archiveDir string) {
	t.Helper()
	seen := make([]int, l.n)
	var names []string
	err := filepath.WalkDir(archiveDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".syncer" {
				return filepath.SkipDir
			}
			return nil
		}
		names = append(names, strings.TrimPrefix(p, archiveDir))
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var i int
			if _, err := fmt.Sscanf(line, "line %07d ", &i); err != nil || i < 0 || i >= l.n {
				t.Errorf("%s: a line that was never written: %.60q", p, line)
				continue
			}
			seen[i]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, twice int
	for _, c := range seen {
		switch {
		case c == 0:
			missing++
		case c > 1:
			twice++
		}
	}
	if missing > 0 || twice > 0 {
		t.Errorf("of %d lines written, %d are not archived and %d are archived more than once (files %v)", l.n, missing, twice, names)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
