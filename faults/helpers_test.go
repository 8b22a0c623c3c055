package faults

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.Cleanup()
	os.Exit(code)
}

// full selects the full-size variants (FAULTS_FULL=1, set by make faults);
// the default is the bounded version that `go test ./...` and CI run.
func full() bool { return os.Getenv("FAULTS_FULL") != "" }

// report records one row of the README table when FAULTS_REPORT names a
// file (scripts/faults/run.sh sets it); the test log always gets it.
func report(t testing.TB, fault, happened string, lost int64) {
	t.Helper()
	t.Logf("RESULT | %s | %s | %d", fault, happened, lost)
	name := os.Getenv("FAULTS_REPORT")
	if name == "" {
		return
	}
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "| %s | %s | %d |\n", fault, happened, lost)
}

// historian is a `syncer serve` process that can be killed and restarted
// over the same root and state.
type historian struct {
	t           testing.TB
	root, state string
	ftp, http   string
	extra       []string
	cmd         *exec.Cmd
	stderr      *testkit.LockedBuffer
	done        chan error
	passwords   map[string]string
	killed9s    int
	// everUp is set once serve has answered /healthz: from then on its
	// addresses are fixed, because agents were told them.
	everUp bool
}

// newHistorian prepares root and state under dir and adds the agent
// accounts (password "pw-" + name + "-long-enough").
func newHistorian(t testing.TB, dir string, agents ...string) *historian {
	t.Helper()
	h := &historian{t: t, root: filepath.Join(dir, "archive"), state: filepath.Join(dir, "state"),
		ftp: testkit.FreeAddr(t), http: testkit.FreeAddr(t), passwords: map[string]string{}}
	for _, a := range agents {
		h.addUser(a)
	}
	t.Cleanup(h.kill)
	return h
}

func (h *historian) addUser(name string) {
	h.t.Helper()
	pw := "pw-" + name + "-long-enough"
	cmd := exec.Command(testkit.SyncerBinary(h.t), "user", "add", name, "--password-stdin", "--state", h.state)
	cmd.Stdin = strings.NewReader(pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		h.t.Fatalf("user add %s: %v %s", name, err, out)
	}
	h.passwords[name] = pw
}

// start runs `syncer serve` and waits for /healthz. freeAddr closes the
// port it found before serve binds it, so another socket can take it in
// between: serve then exits with "address already in use" and start tries
// again, with new ports before the first start and the same ports after it.
func (h *historian) start() {
	h.t.Helper()
	for try := 1; ; try++ {
		err := h.startOnce()
		if err == nil {
			h.everUp = true
			return
		}
		if !strings.Contains(err.Error(), "address already in use") || try == 10 {
			h.t.Fatal(err)
		}
		if h.everUp {
			time.Sleep(500 * time.Millisecond)
		} else {
			h.ftp, h.http = testkit.FreeAddr(h.t), testkit.FreeAddr(h.t)
		}
	}
}

func (h *historian) startOnce() error {
	// No web login: these tests are about the archive and the front
	// door's limits; the web login has its own tests (cmd/syncer, historian).
	args := append([]string{"serve", "--root", h.root, "--state", h.state, "--ftp", h.ftp, "--http", h.http, "--http-no-login"}, h.extra...)
	h.stderr = &testkit.LockedBuffer{}
	var err error
	h.cmd, h.done, err = testkit.StartServe(h.t, h.http, h.stderr, args...)
	return err
}

// kill9 kills the process with SIGKILL and waits for it.
func (h *historian) kill9() {
	h.t.Helper()
	if h.cmd == nil || h.cmd.ProcessState != nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.done
	h.killed9s++
}

// stop sends SIGTERM and wants exit 0.
func (h *historian) stop() {
	h.t.Helper()
	if h.cmd == nil || h.cmd.ProcessState != nil {
		return
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("serve after SIGTERM: %v\n%s", err, h.stderr)
		}
	case <-time.After(60 * time.Second):
		h.t.Errorf("serve did not stop after SIGTERM\n%s", h.stderr)
		h.kill()
	}
}

func (h *historian) kill() {
	if h.cmd != nil && h.cmd.ProcessState == nil {
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

// fileInfo is the API's metadata of one archived file.
type fileInfo struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Status string `json:"status"`
}

// apiFile asks the index about one file; ok false means 404.
func (h *historian) apiFile(agent, rel string) (fileInfo, bool) {
	h.t.Helper()
	resp, err := http.Get("http://" + h.http + "/api/v1/files/" + agent + "/" + rel)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 404 {
		return fileInfo{}, false
	}
	if resp.StatusCode != 200 {
		h.t.Fatalf("GET files/%s/%s: %d %s", agent, rel, resp.StatusCode, b)
	}
	var fi fileInfo
	if err := json.Unmarshal(b, &fi); err != nil {
		h.t.Fatalf("files/%s/%s: %v: %s", agent, rel, err, b)
	}
	return fi, true
}

// agentArgs are the push flags for agent name against server addr.
func agentArgs(name, server, dir, state string) []string {
	return []string{"--server", "ftp://" + server, "--user", name, "--agent-id", name,
		"--dir", dir, "--state", state}
}

type run struct {
	code           int
	stdout, stderr string
}

// push runs `syncer push` to the end, bounded by two minutes.
func push(t testing.TB, password string, args ...string) run {
	t.Helper()
	r := testkit.RunSyncer(t, password, append([]string{"push", "--json"}, args...)...)
	return run{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
}

// summary is the part of `push --json` the tests read.
type summary struct {
	FilesFailed        int64 `json:"files_failed"`
	FilesUnrecoverable int64 `json:"files_unrecoverable"`
	BytesSent          int64 `json:"bytes_sent"`
	Errors             []struct {
		Path  string `json:"path"`
		Error string `json:"error"`
	} `json:"errors"`
}

func parseSummary(t testing.TB, r run) summary {
	t.Helper()
	var s summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("push --json output %q: %v (stderr %s)", r.stdout, err, r.stderr)
	}
	return s
}

// sumFile is the SHA-256 of a file, hex.
func sumFile(t testing.TB, p string) string {
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
	return hex.EncodeToString(h.Sum(nil))
}

// compareTree checks that every regular *.log file under src has a
// byte-identical copy at the same relative path under dst. It returns the
// bytes of the source not found intact (the "bytes lost"), reporting each
// difference as a test error.
func compareTree(t testing.TB, src, dst string) (files int, lost int64) {
	t.Helper()
	files, diffs, lost := treeDiff(t, src, dst)
	for _, d := range diffs {
		t.Error(d)
	}
	return files, lost
}

// treeDiff is compareTree without failing: the differences as text.
// catchUp waits up to d for every agent's logs (base/logs-NAME) to be
// archived identically under root/NAME; it returns the files compared last
// and whether they caught up.
func catchUp(t testing.TB, base, root string, names []string, d time.Duration) (files int, ok bool) {
	t.Helper()
	ok = waitFor(d, func() bool {
		files = 0
		same := true
		for _, name := range names {
			n, diffs, _ := treeDiff(t, filepath.Join(base, "logs-"+name), filepath.Join(root, name))
			files += n
			same = same && len(diffs) == 0
		}
		return same
	})
	return files, ok
}

func treeDiff(t testing.TB, src, dst string) (files int, diffs []string, lost int64) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(p, ".log") {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		files++
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		a := filepath.Join(dst, rel)
		if _, err := os.Stat(a); err != nil {
			diffs = append(diffs, fmt.Sprintf("%s: not archived: %v", rel, err))
			lost += fi.Size()
			return nil
		}
		if s, d := sumFile(t, p), sumFile(t, a); s != d {
			diffs = append(diffs, fmt.Sprintf("%s: archived copy differs (sha256 %s, archived %s)", rel, s, d))
			lost += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, diffs, lost
}

// writeLogFile writes n bytes of log lines to p (random content from rng).
func writeLogFile(t testing.TB, p string, n int, rng *rand.Rand) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, logBytes(n, rng), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logBytes is n bytes of log-like lines with random words.
func logBytes(n int, rng *rand.Rand) []byte {
	var b bytes.Buffer
	b.Grow(n + 128)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "2026-11-24T10:%02d:%02d.%03dZ INFO req=%d id=%016x served\n",
			i/60%60, i%60, i%1000, i, rng.Uint64())
	}
	return b.Bytes()[:n]
}

// appendFile appends data to p.
func appendFile(t testing.TB, p string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or d passes; false on timeout.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watcher is a running `syncer watch`.
type watcher struct {
	cmd    *exec.Cmd
	stderr *testkit.LockedBuffer
	done   chan error
}

// startWatch runs `syncer watch` with args (the push flags) until stopped.
func startWatch(t testing.TB, password string, interval time.Duration, args ...string) *watcher {
	t.Helper()
	all := append([]string{"watch", "--interval", interval.String()}, args...)
	w := &watcher{cmd: exec.Command(testkit.SyncerBinary(t), all...), stderr: &testkit.LockedBuffer{}, done: make(chan error, 1)}
	w.cmd.Env = append(os.Environ(), "SYNCER_PASSWORD="+password)
	w.cmd.Stderr = w.stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- w.cmd.Wait() }()
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

// stop sends SIGTERM and wants a clean exit within 60 s.
func (w *watcher) stop(t testing.TB) {
	t.Helper()
	if w.cmd.ProcessState != nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.done:
		if err != nil {
			t.Errorf("watch after SIGTERM: %v\n%s", err, w.stderr)
		}
	case <-time.After(60 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
		t.Errorf("watch did not stop after SIGTERM\n%s", w.stderr)
	}
}

// exited reports whether the process ended by itself.
func (w *watcher) exited() bool {
	select {
	case err := <-w.done:
		w.done <- err
		return true
	default:
		return false
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// nil2 is a fixed random source for content that does not matter.
func nil2() *rand.Rand { return rand.New(rand.NewPCG(0, 0)) }

// urlQuery escapes s for a query parameter.
func urlQuery(s string) string { return url.QueryEscape(s) }
