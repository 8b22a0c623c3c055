//go:build linux

package winetest

// The agent's Windows build under wine (Debian's wine 8.0), against the
// Linux historian. What these tests cannot show, because wine does it
// differently from Windows:
//
//   - Lazy NTFS metadata. NTFS updates a directory entry's size and last
//     write time lazily while a writer keeps the file open, which is why
//     the agent takes them from a handle (GetFileInformationByHandle) for
//     every candidate file. Wine reads both from the Linux inode, which is
//     always current, so a growing log looks grown either way here: these
//     tests show that the handle path works (appends, rotations and the
//     quick check through it), not that the listing would have been stale.
//   - The file index. Wine reports the Linux inode number as the file
//     index and a fixed serial for drive Z:, so identity through renames
//     behaves as on NTFS, but index reuse on NTFS is not exercised.
//   - The service control manager. Wine's services.exe runs a service
//     (install, start, status, stop and uninstall are tested), but it does
//     not restart one after a failure (the recovery actions are accepted
//     and ignored, and the "on non-crash failures" flag is refused: install
//     warns), there is no boot, and wine's event log only traces: the
//     test reads the service's log file.
//   - os.RemoveAll. Go 1.26 deletes with FileDispositionInformationEx,
//     which wine 8 answers "Invalid function" instead of the status Go
//     falls back on: t.TempDir's cleanup fails in Windows test binaries
//     (the Windows unit tests make their directories themselves), and a
//     dry run's temporary manifest is left behind under wine only.
//
// Sharing modes are wine's own: wineserver enforces them between Windows
// processes (TestWineSharingControl shows a rename refused while a file is
// held open as os.Open does), so a rename done by winctl.exe during an
// upload by syncer.exe is a real test of FILE_SHARE_DELETE. A rename done
// by the Linux test process would bypass them; that is why the control
// program exists.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestWineSharingControl: wine refuses a rename while another Windows
// process holds the file open without delete sharing, as Windows does. The
// rotation test below relies on wine checking sharing modes at all.
func TestWineSharingControl(t *testing.T) {
	w := needWine(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "held.log")
	writeFile(t, p, []byte("x\n"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hold := w.command(ctx, w.ctl, "hold", winPath(p), "20")
	out, err := hold.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Process.Kill(); _ = hold.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "held" {
		t.Fatalf("winctl hold: %q", line)
	}
	r := w.run(t, "", w.ctl, "rename", winPath(p), winPath(p+".1"))
	if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "sharing violation") {
		t.Fatalf("rename of a file held open without FILE_SHARE_DELETE: exit %d %q; want a sharing violation (else wine does not check sharing and the rotation test shows nothing)", r.code, r.stderr)
	}
}

// TestWinePushAwkwardNames: a tree with spaces, non-ASCII and a path
// longer than MAX_PATH, a Windows-style glob (`\` separators) and a name in
// upper case matched by the default '**/*.log' (case-insensitive on
// Windows) arrive byte for byte under the seed's mapping
// (C:\...\Logs\X\20240723\a.txt -> /node1/Logs/X/20240723/a.txt); a second
// push costs no byte (the quick check through the handles).
func TestWinePushAwkwardNames(t *testing.T) {
	w := needWine(t)
	h := newHistorian(t)
	a := newAgent(t, w, h)
	deep := ""
	for i := range 12 {
		deep += fmt.Sprintf("deep directory %02d/", i)
	}
	files := map[string]string{
		"Logs/X/20240723/a.txt":             "seed mapping\r\n",
		"with space/app log.log":            "spaces\n",
		"ünïcödé/日本語 ログ.log":                "non-ascii\n",
		deep + "the end of a long path.log": strings.Repeat("deep\n", 1000),
		"UPPER/CASE.LOG":                    "upper case\n",
		"Logs/X/empty.txt":                  "",
	}
	for rel, data := range files {
		writeFile(t, filepath.Join(a.logs, rel), []byte(data))
	}
	writeFile(t, filepath.Join(a.logs, "skip", "x.txt"), []byte("not matched\n"))
	if n := len(winPath(filepath.Join(a.logs, deep))); n < 260 {
		t.Fatalf("the deep path is %d characters, not past MAX_PATH", n)
	}
	incl := []string{"--include", "**/*.log", "--include", `Logs\X\**\*.txt`}
	s := a.push(t, incl...)
	if s.FilesNew != int64(len(files)) || s.FilesFailed != 0 {
		t.Fatalf("first push: %+v; want %d new files", s, len(files))
	}
	for rel := range files {
		if got, want := sha(t, a.archived(rel)), sha(t, filepath.Join(a.logs, rel)); got != want {
			t.Errorf("%s: archived SHA-256 %s, local %s", rel, got, want)
		}
	}
	if _, err := os.Stat(a.archived("skip/x.txt")); err == nil {
		t.Error("skip/x.txt was archived although no pattern matches it")
	}
	s = a.push(t, incl...)
	if s.FilesUnchanged != int64(len(files)) || s.BytesSent != 0 {
		t.Errorf("second push of an unchanged tree: %+v; want all unchanged, 0 bytes sent", s)
	}
	// Matching case exactly, on request: UPPER/CASE.LOG is not a *.log.
	s = a.push(t, append(incl, "--ignore-case=false", "--dry-run")...)
	if s.FilesScanned != int64(len(files))-1 {
		t.Errorf("--ignore-case=false: %d files matched, want %d (all but CASE.LOG)", s.FilesScanned, len(files)-1)
	}
}

// TestWineAppendExact: appends of every shape (a partial line, one byte,
// a MiB) send exactly the new bytes and the archived copy stays equal to
// the file (SHA-256).
func TestWineAppendExact(t *testing.T) {
	w := needWine(t)
	h := newHistorian(t)
	a := newAgent(t, w, h)
	p := filepath.Join(a.logs, "svc", "app.log")
	var l lineLog
	writeFile(t, p, l.lines(3000, 100))
	if s := a.push(t); s.FilesNew != 1 {
		t.Fatalf("first push: %+v", s)
	}
	for i, add := range [][]byte{[]byte("a partial line without its end"), []byte("\n"), l.lines(10_000, 100), []byte("z")} {
		appendFile(t, p, add)
		s := a.push(t)
		if s.FilesAppended != 1 || s.BytesSent != int64(len(add)) {
			t.Errorf("append %d of %d bytes: %+v; want 1 appended, exactly the new bytes sent", i, len(add), s)
		}
		if got, want := sha(t, a.archived("svc/app.log")), sha(t, p); got != want {
			t.Fatalf("after append %d: archived SHA-256 %s, local %s", i, got, want)
		}
	}
}

// TestWineRenameDuringUpload: a logger rotates its log by renaming it
// while syncer.exe uploads it (slowed by the historian's upload limit).
// The rename succeeds (the agent opens logs with FILE_SHARE_DELETE; Go's
// os.Open would make it fail, see TestWineSharingControl), the upload
// finishes from the renamed file, and after the next push every line is
// archived exactly once.
func TestWineRenameDuringUpload(t *testing.T) {
	w := needWine(t)
	h := newHistorian(t, "--max-upload-rate", "1MiB")
	a := newAgent(t, w, h)
	p := filepath.Join(a.logs, "app.log")
	var l lineLog
	writeFile(t, p, l.lines(40_000, 100)) // 4.4 MiB: about 4 s at 1 MiB/s
	size := int64(len(mustRead(t, p)))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	push := w.command(ctx, w.exe, append([]string{"push", "--json"}, a.args()...)...)
	var out, errb bytes.Buffer
	push.Stdout, push.Stderr = &out, &errb
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- push.Wait() }()
	waitFor(t, "the upload to be under way", time.Minute, func() bool {
		fi, err := os.Stat(a.archived("app.log"))
		return err == nil && fi.Size() > 256<<10
	})
	if fi, err := os.Stat(a.archived("app.log")); err != nil || fi.Size() >= size {
		t.Fatalf("the upload ended before the rename (%v); the test shows nothing", err)
	}
	r := w.run(t, "", w.ctl, "rename", winPath(p), winPath(p+".1"))
	if r.code != 0 {
		t.Fatalf("rename during the upload: exit %d: %s (the agent blocks rotation)", r.code, r.stderr)
	}
	writeFile(t, p, l.lines(500, 100))
	if err := <-done; err != nil {
		t.Fatalf("push during which the log was renamed: %v\n%s", err, errb.String())
	}
	a.push(t)
	l.everyLineOnce(t, filepath.Join(h.root, "node1"))
}

// TestWineCopytruncate: a log rotated by copy and truncate (the copy made
// by a Windows program while the agent's handle may be open) loses no line
// and archives none twice.
func TestWineCopytruncate(t *testing.T) {
	w := needWine(t)
	h := newHistorian(t)
	a := newAgent(t, w, h)
	p := filepath.Join(a.logs, "app.log")
	var l lineLog
	writeFile(t, p, l.lines(2000, 80))
	a.push(t)
	appendFile(t, p, l.lines(300, 80)) // written before the rotation, not yet archived
	w.winctl(t, "copytruncate", winPath(p), winPath(p+".1"))
	appendFile(t, p, l.lines(200, 80))
	if s := a.push(t); s.FilesFailed != 0 {
		t.Fatalf("push after copytruncate: %+v", s)
	}
	l.everyLineOnce(t, filepath.Join(h.root, "node1"))
}

// TestWineWatchHistorianRestart: syncer.exe watch keeps running while the
// historian stops and starts again, and archives what was written
// meanwhile.
func TestWineWatchHistorianRestart(t *testing.T) {
	w := needWine(t)
	h := newHistorian(t)
	a := newAgent(t, w, h)
	p := filepath.Join(a.logs, "app.log")
	var l lineLog
	writeFile(t, p, l.lines(1000, 80))
	ctx, cancel := context.WithCancel(context.Background())
	watch := w.command(ctx, w.exe, append([]string{"watch", "--interval", "300ms"}, a.args()...)...)
	stderr := &testkit.LockedBuffer{Limit: 1 << 20}
	watch.Stderr = stderr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = watch.Wait()
		if t.Failed() {
			t.Logf("watch stderr:\n%s", stderr.String())
		}
	})
	remote := a.archived("app.log")
	waitFor(t, "the log on the historian", time.Minute, func() bool { return sameFile(p, remote) })
	h.stop()
	appendFile(t, p, l.lines(500, 80))
	// The first failed connect (a push retries for 30 s before it
	// gives up and watch backs off; either way it must catch up).
	waitFor(t, "watch to notice the historian is down", time.Minute, func() bool {
		return strings.Contains(stderr.String(), "connect failed") || strings.Contains(stderr.String(), "not reachable")
	})
	appendFile(t, p, l.lines(500, 80))
	h.start()
	waitFor(t, "the lines written while the historian was down", time.Minute, func() bool { return sameFile(p, remote) })
	if watch.ProcessState != nil {
		t.Fatal("watch exited")
	}
}

// TestWineService: syncer service install, start, status, stop and
// uninstall under wine's service control manager, with the example
// configuration of scripts/windows; the service's watch archives a log,
// and the stop request stops it as SIGTERM stops watch.
func TestWineService(t *testing.T) {
	w := needWine(t)
	h := newHistorian(t)
	a := newAgent(t, w, h)
	p := filepath.Join(a.logs, "svc.log")
	var l lineLog
	writeFile(t, p, l.lines(500, 80))
	dir := t.TempDir()
	config := filepath.Join(dir, "agent.yaml")
	// The example of scripts/windows, with this test's historian, paths
	// and interval.
	set := map[string]string{}
	args := a.args("--interval", "300ms")
	for i := 0; i < len(args); i += 2 {
		set[strings.TrimPrefix(args[i], "--")] = args[i+1]
	}
	var yaml strings.Builder
	for _, line := range strings.Split(string(mustRead(t, filepath.Join("..", "..", "scripts", "windows", "agent.example.yaml"))), "\n") {
		if k, _, ok := strings.Cut(line, ":"); ok && set[k] != "" {
			line = fmt.Sprintf("%s: '%s'", k, set[k])
			delete(set, k)
		}
		yaml.WriteString(line + "\n")
	}
	if len(set) > 0 {
		t.Fatalf("scripts/windows/agent.example.yaml lacks the keys %v", set)
	}
	writeFile(t, config, []byte(yaml.String()))
	name := fmt.Sprintf("syncer-test-%d", os.Getpid())
	logFile := filepath.Join(dir, "service.log")
	svc := func(args ...string) result {
		t.Helper()
		return w.syncer(t, append([]string{"service"}, append(args, "--name", name)...)...)
	}
	if r := svc("install", "--config", winPath(config), "--log-file", winPath(logFile)); r.code != 0 || !strings.Contains(r.stdout, "installed") {
		t.Fatalf("service install: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() { svc("uninstall") })
	if r := svc("install", "--config", winPath(config)); r.code != 2 || !strings.Contains(r.stderr, "installed already") {
		t.Errorf("second install: exit %d %q; want 2, installed already", r.code, r.stderr)
	}
	if r := svc("status"); r.code != 0 || !strings.Contains(r.stdout, "stopped") || !strings.Contains(r.stdout, "starts at boot") ||
		!strings.Contains(r.stdout, "service run --name "+name+" --config "+winPath(config)) {
		t.Errorf("status after install: exit %d %q; want stopped, starts at boot, and the command it runs", r.code, r.stdout)
	}
	if r := svc("start"); r.code != 0 || !strings.Contains(r.stdout, "running") {
		t.Fatalf("service start: exit %d\n%s%s\nlog: %s", r.code, r.stdout, r.stderr, readOr(logFile))
	}
	waitFor(t, "the service's watch to archive the log", time.Minute, func() bool { return sameFile(p, a.archived("svc.log")) })
	appendFile(t, p, l.lines(100, 80))
	waitFor(t, "the service's watch to archive an append", time.Minute, func() bool { return sameFile(p, a.archived("svc.log")) })
	if r := svc("status"); r.code != 0 || !strings.Contains(r.stdout, "running") {
		t.Errorf("status while running: exit %d %q", r.code, r.stdout)
	}
	if r := svc("stop"); r.code != 0 || !strings.Contains(r.stdout, "stopped") {
		t.Fatalf("service stop: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if log := readOr(logFile); !strings.Contains(log, "watch stopped") {
		t.Errorf("the service's log does not show an orderly stop:\n%s", log)
	}
	if r := svc("run", "--config", winPath(config)); r.code != 2 || !strings.Contains(r.stderr, "only the service control manager starts this") {
		t.Errorf("service run by hand: exit %d %q; want 2 and a line saying so", r.code, r.stderr)
	}
	if r := svc("uninstall"); r.code != 0 || !strings.Contains(r.stdout, "removed") {
		t.Fatalf("service uninstall: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := svc("status"); r.code != 2 || !strings.Contains(r.stderr, "not installed") {
		t.Errorf("status after uninstall: exit %d %q; want 2, not installed", r.code, r.stderr)
	}
}

// TestWineUsersFile: ten concurrent `syncer user add` on one users file
// all succeed and all ten accounts are kept; and `user add` succeeds while
// another program holds the file open without delete sharing for a moment
// (the replace is retried) — before, Windows refused it with "Access is
// denied".
func TestWineUsersFile(t *testing.T) {
	w := needWine(t)
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yaml")
	var wg sync.WaitGroup
	results := make([]result, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = w.run(t, fmt.Sprintf("pw-node%02d-long-enough\r\n", i), w.exe,
				"user", "add", fmt.Sprintf("node%02d", i), "--password-stdin", "--users", winPath(users))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("concurrent user add %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hold := w.command(ctx, w.ctl, "hold", winPath(users), "1.5")
	out, err := hold.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "held" {
		t.Fatalf("winctl hold: %q", line)
	}
	r := w.run(t, "pw-held-long-enough\r\n", w.exe, "user", "add", "held", "--password-stdin", "--users", winPath(users))
	_ = hold.Wait()
	if r.code != 0 {
		t.Errorf("user add while another program reads the users file: exit %d: %s", r.code, r.stderr)
	}
	// Read back by the Linux build, as the historian would.
	list := testkit.RunSyncer(t, "", "user", "list", "--json", "--users", users)
	var got []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(list.Stdout), &got); err != nil {
		t.Fatalf("user list: exit %d %v: %s%s", list.Code, err, list.Stdout, list.Stderr)
	}
	names := map[string]bool{}
	for _, u := range got {
		names[u.Name] = true
	}
	for i := range results {
		if !names[fmt.Sprintf("node%02d", i)] {
			t.Errorf("account node%02d lost from the users file", i)
		}
	}
	if !names["held"] || len(names) != len(results)+1 {
		t.Errorf("accounts in the users file: %v; want node00..node09 and held", names)
	}
}

// TestWinePasswordFileEncodings: a password file saved by PowerShell 5.1
// (UTF-8 with a byte-order mark, CRLF) logs in; one saved as UTF-16 is
// refused with one line before any login (so it never counts toward the
// historian's ban).
func TestWinePasswordFileEncodings(t *testing.T) {
	w := needWine(t)
	h := newHistorian(t)
	a := newAgent(t, w, h)
	writeFile(t, filepath.Join(a.logs, "a.log"), []byte("hello\n"))
	if err := os.WriteFile(a.pwFile, []byte("\xef\xbb\xbf"+h.pass+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s := a.push(t); s.FilesNew != 1 {
		t.Fatalf("push with a UTF-8 BOM password file: %+v", s)
	}
	var u16 []byte
	u16 = append(u16, 0xff, 0xfe)
	for _, c := range h.pass + "\r\n" {
		u16 = append(u16, byte(c), 0)
	}
	if err := os.WriteFile(a.pwFile, u16, 0o600); err != nil {
		t.Fatal(err)
	}
	r := w.syncer(t, append([]string{"push"}, a.args()...)...)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "UTF-16") {
		t.Fatalf("push with a UTF-16 password file: exit %d, stderr %q; want 2 and one line naming UTF-16", r.code, r.stderr)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readOr(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestWinePackageTests runs the Windows-only unit tests of the agent and
// the accounts under wine: the handle identity through a rename, the
// handle's size of a file still being written, a rename and a delete of a
// log the agent holds open, paths past MAX_PATH; the case rule of globs;
// the users file's shared read and retried replace.
func TestWinePackageTests(t *testing.T) {
	w := needWine(t)
	for _, tc := range []struct{ pkg, run string }{
		{"github.com/syncer-dev/syncer/syncer", "TestWindows|TestMatcher"},
		{"github.com/syncer-dev/syncer/ftpfs/accounts", "TestWindows"},
		{"github.com/syncer-dev/syncer/internal/pathglob", "."},
	} {
		exe := filepath.Join(w.dir, filepath.Base(tc.pkg)+".test.exe")
		c := exec.Command("go", "test", "-c", "-o", exe, tc.pkg)
		c.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("go test -c %s for windows: %v\n%s", tc.pkg, err, b)
		}
		r := w.run(t, "", exe, "-test.run", tc.run, "-test.v", "-test.count=1")
		if r.code != 0 || !strings.Contains(r.stdout, "\nPASS") {
			t.Errorf("%s under wine: exit %d\n%s\n%s", tc.pkg, r.code, r.stdout, r.stderr)
			continue
		}
		var ran []string
		for _, l := range strings.Split(r.stdout, "\n") {
			if name, ok := strings.CutPrefix(l, "--- PASS: "); ok {
				ran = append(ran, strings.Fields(name)[0])
			}
		}
		t.Logf("%s under wine: %d tests passed: %v", tc.pkg, len(ran), ran)
		if len(ran) == 0 {
			t.Errorf("%s: no test ran under wine", tc.pkg)
		}
	}
}
