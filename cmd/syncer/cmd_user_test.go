package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// userTestSecret must never show up in any output.
const userTestSecret = "Tr0ub4dor-user-test"

// clearSyncerEnv unsets every SYNCER_* variable for the test, so that the
// environment of whoever runs the tests cannot change the flags.
func clearSyncerEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SYNCER_") {
			t.Setenv(k, "") // restores the old value after the test
			os.Unsetenv(k)
		}
	}
}

// runUserInProcess runs the root command as run() does, with stdin, and
// returns the exit code run() would return and the output.
func runUserInProcess(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(ctx)
	// The same mapping as run() in main.go.
	code = exitOK
	if err != nil {
		errOut.WriteString("syncer: " + err.Error() + "\n")
		code = exitUsage
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return code, out.String(), errOut.String()
}

func TestUserCommandUsageErrors(t *testing.T) {
	clearSyncerEnv(t)
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yaml")
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("users:\n  - name: a\n    password: "+userTestSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}{
		{"no subcommand", "", []string{"user"}, "missing subcommand"},
		{"unknown subcommand", "", []string{"user", "ad", "x"}, `unknown subcommand "ad"`},
		{"no users file", userTestSecret + "\n", []string{"user", "add", "node17", "--password-stdin"}, "give --users FILE or --state DIR"},
		{"list without file", "", []string{"user", "list"}, "give --users FILE or --state DIR"},
		{"remove without file", "", []string{"user", "remove", "x"}, "give --users FILE or --state DIR"},
		{"passwd without file", "", []string{"user", "passwd", "x"}, "give --users FILE or --state DIR"},
		{"add without name", "", []string{"user", "add", "--users", users}, "takes one account NAME, got 0"},
		{"add two names", "", []string{"user", "add", "a", "b", "--users", users}, "takes one account NAME, got 2"},
		{"list with argument", "", []string{"user", "list", "x", "--users", users}, "takes no arguments"},
		{"bad name", userTestSecret + "\n", []string{"user", "add", "../etc", "--password-stdin", "--users", users}, "invalid user name"},
		{"bad perm", userTestSecret + "\n", []string{"user", "add", "n", "--perm", "elrX", "--password-stdin", "--users", users}, "unknown letter 'X'"},
		{"bad rate", userTestSecret + "\n", []string{"user", "add", "n", "--max-upload-rate", "10Mb", "--password-stdin", "--users", users}, `"10Mb"`},
		{"unknown flag", "", []string{"user", "list", "--jsn", "--users", users}, "unknown flag"},
		{"password as flag", "", []string{"user", "add", "n", "--password", userTestSecret, "--users", users}, "unknown flag"},
		{"no terminal", "", []string{"user", "add", "n", "--users", users}, "not a terminal"},
		{"passwd on malformed file", "", []string{"user", "passwd", "n", "--users", broken}, "plain-text passwords are not allowed"},
		{"empty stdin", "", []string{"user", "add", "n", "--password-stdin", "--users", users}, "empty"},
		{"blank line", "\n", []string{"user", "add", "n", "--password-stdin", "--users", users}, "empty"},
		{"long line", strings.Repeat("x", 5000), []string{"user", "add", "n", "--password-stdin", "--users", users}, "longer than"},
		{"too long for bcrypt", strings.Repeat("x", 73) + "\n", []string{"user", "add", "n", "--password-stdin", "--users", users}, "longer than 72 bytes"},
		{"perm with NUL", userTestSecret + "\n", []string{"user", "add", "n", "--password-stdin", "--users", filepath.Join(dir, "x", "..", "users.yaml"), "--perm", "elr\x00"}, "unknown letter"},
		{"malformed users file", userTestSecret + "\n", []string{"user", "add", "n", "--password-stdin", "--users", broken}, "plain-text passwords are not allowed"},
		{"list malformed file", "", []string{"user", "list", "--users", broken}, broken},
		{"bad config key", "", []string{"user", "list", "--config", writeConfig(t, "root: /x\n")}, `unknown key "root"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runUserInProcess(t, tt.stdin, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr %q does not say %q", stderr, tt.wantErr)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
				t.Errorf("error is %d lines, want one:\n%s", lines, stderr)
			}
			if strings.Contains(stdout+stderr, userTestSecret) {
				t.Errorf("output reveals the password:\n%s%s", stdout, stderr)
			}
		})
	}
	if _, err := os.Stat(users); !os.IsNotExist(err) {
		t.Errorf("failed commands created the users file: %v", err)
	}
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "syncer.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUserCommandInProcess(t *testing.T) {
	// One add in process, so the race detector sees the command's own code;
	// the bcrypt of cost 10 is slow under it, so the rest runs in
	// TestUserCommandBinary.
	clearSyncerEnv(t)
	state := t.TempDir()
	code, stdout, stderr := runUserInProcess(t, userTestSecret+"\r\n", "user", "add", "node17", "--password-stdin", "--state", state, "--max-upload-rate", "10MiB")
	if code != exitOK {
		t.Fatalf("add: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "added agent account node17") {
		t.Errorf("add printed %q", stdout)
	}
	db, err := accounts.Open(filepath.Join(state, accounts.FileName))
	if err != nil {
		t.Fatal(err)
	}
	// "\r\n" is trimmed: the password is exactly the line.
	u, err := db.Authenticate("node17", userTestSecret)
	if err != nil {
		t.Fatalf("Authenticate with the piped password: %v", err)
	}
	if u.Perm != accounts.DefaultAgentPerm || u.Home != "/node17" || u.MaxUploadRate != 10<<20 {
		t.Errorf("account %+v", u)
	}
	code, _, stderr = runUserInProcess(t, "", "user", "add", "NODE17", "--state", state)
	if code != exitPartial || !strings.Contains(stderr, "already exists") {
		t.Errorf("add of a taken name (before asking a password): exit %d, %s", code, stderr)
	}
	if strings.Contains(stdout+stderr, userTestSecret) {
		t.Errorf("output reveals the password")
	}
}

// buildSyncer builds the syncer binary into a temporary directory.
func buildSyncer(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the binary needs the go command on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "syncer")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncerEnv is the environment without SYNCER_* variables, plus extra.
func syncerEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SYNCER_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func TestUserCommandBinary(t *testing.T) {
	bin := buildSyncer(t)
	state := filepath.Join(t.TempDir(), "state")
	var allOutput strings.Builder

	type result struct {
		code           int
		stdout, stderr string
	}
	syncer := func(t *testing.T, env []string, stdin string, args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = syncerEnv(env...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run %v: %v", args, err)
		}
		allOutput.WriteString(out.String() + errOut.String())
		return result{cmd.ProcessState.ExitCode(), out.String(), errOut.String()}
	}
	listJSON := func(t *testing.T, args ...string) []userListEntry {
		t.Helper()
		r := syncer(t, nil, "", append([]string{"user", "list", "--json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("list --json: exit %d: %s", r.code, r.stderr)
		}
		var list []userListEntry
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatalf("list --json printed %q: %v", r.stdout, err)
		}
		if strings.Contains(r.stdout, "$2") || strings.Contains(r.stdout, "hash") {
			t.Errorf("list --json shows password hashes: %s", r.stdout)
		}
		return list
	}

	if got := listJSON(t, "--state", state); got == nil || len(got) != 0 {
		t.Fatalf("list of a missing file = %#v, want []", got)
	}
	steps := []struct {
		name     string
		env      []string
		stdin    string
		args     []string
		wantCode int
	}{
		{"add agent", nil, userTestSecret + "\n", []string{"user", "add", "node17", "--password-stdin", "--state", state}, 0},
		{"add admin via env", []string{"SYNCER_STATE=" + state}, "ops-" + userTestSecret, []string{"user", "add", "ops", "--admin", "--password-stdin"}, 0},
		{"add reader via config", nil, "r-" + userTestSecret + "\n", []string{"user", "add", "reader", "--perm", "elr", "--password-stdin", "--max-download-rate", "1MiB",
			"--config", writeConfig(t, "users: "+filepath.Join(state, "users.yaml")+"\n")}, 0},
		{"add taken name", nil, userTestSecret + "\n", []string{"user", "add", "node17", "--password-stdin", "--state", state}, 1},
		{"add without a terminal", nil, userTestSecret + "\n", []string{"user", "add", "node18", "--state", state}, 2},
		{"passwd", nil, "new-" + userTestSecret + "\n", []string{"user", "passwd", "node17", "--password-stdin", "--state", state}, 0},
		{"passwd unknown", nil, "x\n", []string{"user", "passwd", "ghost", "--password-stdin", "--state", state}, 1},
		{"remove unknown", nil, "", []string{"user", "remove", "ghost", "--state", state}, 1},
		{"remove reader", nil, "", []string{"user", "remove", "reader", "--state", state}, 0},
	}
	for _, s := range steps {
		r := syncer(t, s.env, s.stdin, s.args...)
		if r.code != s.wantCode {
			t.Errorf("%s: exit %d, want %d; stderr: %s", s.name, r.code, s.wantCode, r.stderr)
		}
		if s.wantCode != 0 && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s: error is not one line: %q", s.name, r.stderr)
		}
	}

	want := []userListEntry{
		{Name: "node17", Perm: accounts.DefaultAgentPerm, Home: "/node17"},
		{Name: "ops", Perm: accounts.DefaultAdminPerm, Admin: true, Home: "/"},
	}
	if got := listJSON(t, "--users", filepath.Join(state, accounts.FileName)); !reflect.DeepEqual(got, want) {
		t.Errorf("list --json = %+v, want %+v", got, want)
	}
	r := syncer(t, nil, "", "user", "list", "--state", state)
	if r.code != 0 || !strings.Contains(r.stdout, "NAME") || !strings.Contains(r.stdout, "node17") || !strings.Contains(r.stdout, "elradfmwMT") {
		t.Errorf("list: exit %d, table:\n%s", r.code, r.stdout)
	}

	db, err := accounts.Open(filepath.Join(state, accounts.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate("node17", "new-"+userTestSecret); err != nil {
		t.Errorf("passwd did not set the new password: %v", err)
	}
	if _, err := db.Authenticate("ops", "ops-"+userTestSecret); err != nil {
		t.Errorf("password without a final newline: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(state, accounts.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), userTestSecret) {
		t.Error("the users file holds a plain password")
	}
	if strings.Contains(allOutput.String(), userTestSecret) {
		t.Errorf("a password appeared in the output:\n%s", allOutput.String())
	}

	t.Run("terminal", func(t *testing.T) { testUserTerminal(t, bin, state) })
}

// ptyDriver runs argv on a new pseudo-terminal, answers each password
// prompt in turn with the given line, and prints everything the terminal
// showed, then "EXIT <code>". The terminal shows what was typed while echo
// was on, so a password in its output was echoed.
const ptyDriver = `
import os, pty, sys, json, termios, time
answers = json.loads(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
seen = b""
def read():
    global seen
    try:
        data = os.read(fd, 4096)
    except OSError:  # EIO once the child has exited
        return False
    seen += data
    return bool(data)
for i, answer in enumerate(answers):
    while seen.count(b"password for") <= i and read():
        pass
    # Answer once echo is off, as a person would after the prompt: typed
    # ahead, the line discipline would echo it before ReadPassword runs.
    for _ in range(1000):
        try:
            if not termios.tcgetattr(fd)[3] & termios.ECHO:
                break
        except termios.error:
            break
        time.sleep(0.01)
    try:
        os.write(fd, answer.encode() + b"\r")
    except OSError:
        break
while read():
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.stdout.write("\nEXIT %d\n" % os.waitstatus_to_exitcode(status))
`

func testUserTerminal(t *testing.T, bin, state string) {
	if runtime.GOOS != "linux" {
		t.Skip("the pseudo-terminal driver is Linux-only")
	}
	py := "/usr/bin/python3" // Debian's; the python3 on PATH may be another build
	if _, err := os.Stat(py); err != nil {
		t.Skip("needs /usr/bin/python3 (pty module) to drive a terminal")
	}
	tests := []struct {
		name     string
		args     []string
		answers  []string
		wantCode int
		want     string
	}{
		{"add", []string{"user", "add", "tty1", "--state", state}, []string{"tty-" + userTestSecret, "tty-" + userTestSecret}, 0, "added agent account tty1"},
		{"mismatch", []string{"user", "add", "tty2", "--state", state}, []string{"tty-" + userTestSecret, "other-" + userTestSecret}, 2, "differ"},
		{"passwd", []string{"user", "passwd", "tty1", "--state", state}, []string{"tty2-" + userTestSecret, "tty2-" + userTestSecret}, 0, "password of tty1 changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answers, _ := json.Marshal(tt.answers)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, append([]string{"-c", ptyDriver, string(answers), bin}, tt.args...)...)
			cmd.Env = syncerEnv()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("pty driver: %v\n%s", err, out)
			}
			shown := string(out)
			if !strings.Contains(shown, "EXIT "+strconv.Itoa(tt.wantCode)+"\n") {
				t.Errorf("exit code: want %d; terminal showed:\n%s", tt.wantCode, shown)
			}
			if !strings.Contains(shown, tt.want) {
				t.Errorf("terminal does not show %q:\n%s", tt.want, shown)
			}
			if strings.Contains(shown, userTestSecret) {
				t.Errorf("the password was echoed:\n%s", shown)
			}
		})
	}
	db, err := accounts.Open(filepath.Join(state, accounts.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate("tty1", "tty2-"+userTestSecret); err != nil {
		t.Errorf("password typed on the terminal does not work: %v", err)
	}
	if _, ok := db.Lookup("tty2"); ok {
		t.Error("mismatched passwords still created the account")
	}
}
