package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// webDo does GET path on serve's web viewer with the given Host (""
// keeps the address), basic auth user:pw ("" none) or bearer token, from
// the loopback address local ("" any); it returns the status and body.
func webDo(t *testing.T, p *serveProc, path, host, user, pw, token, local string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", p.scheme+"://"+p.http+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := insecureClient
	if local != "" {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c = &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: d.DialContext}}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeWebLoginOnLoopback: the default loopback viewer of `syncer
// serve` wants a login (401 and a challenge without one), answers only to
// loopback Host names (421 for evil.example, also with the right
// password), and with --http-no-login lets everyone in, Host check kept.
// (Before: no login, any Host served.)
func TestServeWebLoginOnLoopback(t *testing.T) {
	clearSyncerEnv(t)
	const pw = "pw-node1-web-login"
	c := newServeConfigLogin(t, pw, "")
	p := startServe(t, c.config, c.http)
	_, port, _ := net.SplitHostPort(c.http)
	for _, tc := range []struct {
		name, host, user string
		want             int
	}{
		{"no login", "", "", http.StatusUnauthorized},
		{"wrong password", "", "node1-wrong", http.StatusUnauthorized},
		{"node1", "", "node1", http.StatusOK},
		{"Host localhost", "localhost:" + port, "node1", http.StatusOK},
		{"Host [::1]", "[::1]:" + port, "node1", http.StatusOK},
		{"Host 127.0.0.2", "127.0.0.2", "node1", http.StatusOK},
		{"Host evil.example", "evil.example:" + port, "node1", http.StatusMisdirectedRequest},
		{"Host evil.example, no login", "evil.example", "", http.StatusMisdirectedRequest},
	} {
		user, pass := tc.user, pw
		if user == "node1-wrong" {
			user, pass = "node1", "wrong"
		}
		code, body := webDo(t, p, "/api/v1/agents", tc.host, user, pass, "", "")
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	p.stop(t)

	c = newServeConfig(t, pw, "") // --http-no-login
	p = startServe(t, c.config, c.http)
	defer p.stop(t)
	if code, body := webDo(t, p, "/api/v1/agents", "", "", "", "", ""); code != http.StatusOK {
		t.Errorf("--http-no-login, no login: %d %s", code, body)
	}
	if code, _ := webDo(t, p, "/api/v1/agents", "evil.example", "", "", "", ""); code != http.StatusMisdirectedRequest {
		t.Errorf("--http-no-login, Host evil.example: %d, want 421", code)
	}
}

// TestServeWebOffLoopbackNeedsHTTPS: serve refuses to start a web viewer
// off loopback with plain HTTP, and --http-no-login off loopback, with one
// line naming the flag and exit 2; with --tls-self-signed the same viewer
// speaks HTTPS and wants a login. (Before: plain HTTP, basic auth in
// clear text.)
func TestServeWebOffLoopbackNeedsHTTPS(t *testing.T) {
	clearSyncerEnv(t)
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	c := newServeConfigLogin(t, "pw-node1-offloop", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http", "0.0.0.0:" + port}, "--http 0.0.0.0:" + port + ": off loopback the web viewer needs HTTPS"},
		{[]string{"--http", "0.0.0.0:" + port, "--tls-self-signed", "--http-no-login"}, "--http-no-login: only with a loopback web viewer"},
		{[]string{"--http-tls-cert", filepath.Join(c.base, "missing.pem"), "--http-tls-key", filepath.Join(c.base, "missing.key")}, "--http-tls-cert"},
		{[]string{"--http-tls-cert", c.config}, "--http-tls-cert and --http-tls-key go together"},
	} {
		cmd := exec.Command(testkit.SyncerBinary(t), append([]string{"serve", "--root", c.root, "--state", c.state, "--ftp", testkit.FreeAddr(t)}, tc.args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(last, tc.want) || strings.Count(last, "\n") > 0 {
				t.Errorf("serve %v: %v, stderr %q; want exit 2 and one line with %q", tc.args, err, stderr.String(), tc.want)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("serve %v started; want a refusal\n%s", tc.args, stderr.String())
		}
	}

	// The same address with the self-signed certificate: HTTPS, a login.
	ip := "0.0.0.0"
	cfg := "tls-self-signed: true\n"
	c2 := newServeConfigLogin(t, "pw-node1-offloop", cfg)
	httpAddr := net.JoinHostPort(ip, port)
	if err := os.WriteFile(c2.config, []byte(strings.Replace(readFile(t, c2.config), "http: "+c2.http, "http: "+httpAddr, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, c2.config, net.JoinHostPort("127.0.0.1", port))
	defer p.stop(t)
	if p.scheme != "https" {
		t.Fatalf("viewer off loopback with --tls-self-signed speaks %s", p.scheme)
	}
	if code, _ := webDo(t, p, "/api/v1/agents", "", "", "", "", ""); code != http.StatusUnauthorized {
		t.Errorf("off loopback without a login: %d, want 401", code)
	}
	if code, _ := webDo(t, p, "/api/v1/agents", "historian.example.org", "node1", "pw-node1-offloop", "", ""); code != http.StatusOK {
		t.Errorf("off loopback, any Host, over HTTPS with a login: %d, want 200", code)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// syncerRun runs the binary with args and returns stdout, stderr and the
// exit code.
func syncerRun(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testkit.SyncerBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// TestTokenCommands: `syncer token add` prints the token once, alone on
// stdout, and the state directory keeps only a hash; list and list --json
// show names and agents, never tokens; remove removes (exit 1 the second
// time); bad input exits 2 with one line.
func TestTokenCommands(t *testing.T) {
	clearSyncerEnv(t)
	state := t.TempDir()
	out, errOut, code := syncerRun(t, "token", "add", "ci", "--agent", "node17", "--state", state)
	token := strings.TrimSpace(out)
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.HasPrefix(token, "syncer_") || !strings.Contains(errOut, "only this once") {
		t.Fatalf("token add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, _, code := syncerRun(t, "token", "add", "dashboards", "--state", state); code != 0 {
		t.Fatalf("token add dashboards: exit %d", code)
	}
	file := readFile(t, filepath.Join(state, "tokens.json"))
	if strings.Contains(file, token) || strings.Contains(file, strings.TrimPrefix(token, "syncer_")) {
		t.Error("tokens.json holds the token")
	}
	out, _, code = syncerRun(t, "token", "list", "--state", state)
	if code != 0 || !regexp.MustCompile(`(?m)^ci +node17 +20`).MatchString(out) || !regexp.MustCompile(`(?m)^dashboards +\* +20`).MatchString(out) || strings.Contains(out, token) {
		t.Errorf("token list: exit %d\n%s", code, out)
	}
	out, _, code = syncerRun(t, "token", "list", "--json", "--state", state)
	var list []struct{ Name, Agent string }
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 2 || list[0].Name != "ci" || list[0].Agent != "node17" || list[1].Agent != "" {
		t.Errorf("token list --json: exit %d, %v\n%s", code, err, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"token", "add", "ci", "--state", state}, 1, "already exists"},
		{[]string{"token", "add", "../x", "--state", state}, 2, "invalid user name"},
		{[]string{"token", "add", "x", "--agent", "a/b", "--state", state}, 2, "agent id"},
		{[]string{"token", "add", "x"}, 2, "--state is required"},
		{[]string{"token", "add", "--state", state}, 2, "takes one token NAME"},
		{[]string{"token", "bogus"}, 2, "unknown subcommand"},
		{[]string{"token", "remove", "ci", "--state", state}, 0, ""},
		{[]string{"token", "remove", "ci", "--state", state}, 1, "no such token"},
	} {
		_, errOut, code := syncerRun(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%v: exit %d %q, want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// TestServeWebTokens: tokens made by `syncer token add` while serve runs
// work at once as "Authorization: Bearer": --agent confines to that
// agent's tree (404 for another's, no agent list beyond it), no agent
// reads everything; wrong tokens get 401 and ban the address like wrong
// passwords (`syncer ban list` shows it); `syncer token remove` takes
// effect without a restart.
func TestServeWebTokens(t *testing.T) {
	clearSyncerEnv(t)
	c := newServeConfigLogin(t, "pw-node1-tokens", "")
	for _, agent := range []string{"node1", "node2"} {
		writeTestFile(t, filepath.Join(c.root, agent, "app.log"), agent+" line\n")
	}
	p := startServe(t, c.config, c.http)
	defer p.stop(t)
	add := func(args ...string) string {
		out, errOut, code := syncerRun(t, append([]string{"token", "add"}, append(args, "--state", c.state)...)...)
		if code != 0 {
			t.Fatalf("token add %v: %d %s", args, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	one, all := add("ci", "--agent", "node1"), add("dashboards")
	waitFor(t, "the index to show node2's file", 15*time.Second, func() bool {
		code, _ := webDo(t, p, "/api/v1/files/node2/app.log", "", "", "", all, "")
		return code == 200
	})
	for _, tc := range []struct {
		token, path string
		want        int
	}{
		{one, "/api/v1/files/node1/app.log", 200},
		{one, "/raw/node1/app.log", 200},
		{one, "/api/v1/files/node2/app.log", 404},
		{one, "/raw/node2/app.log", 404},
		{one, "/metrics", 403},
		{all, "/raw/node2/app.log", 200},
		{all, "/metrics", 200},
		{"syncer_wrong", "/api/v1/agents", 401},
	} {
		if code, body := webDo(t, p, tc.path, "", "", "", tc.token, ""); code != tc.want {
			t.Errorf("token %.12s… %s: %d %.80s, want %d", tc.token, tc.path, code, body, tc.want)
		}
	}
	if _, body := webDo(t, p, "/api/v1/agents", "", "", "", one, ""); strings.Contains(body, "node2") {
		t.Errorf("the node1 token sees node2 in the agent list: %s", body)
	}

	const attacker = "127.0.0.77"
	for i := range 5 {
		if code, _ := webDo(t, p, "/api/v1/agents", "", "", "", "syncer_guess", attacker); code != 401 {
			t.Fatalf("wrong token #%d: %d, want 401", i+1, code)
		}
	}
	if code, _ := webDo(t, p, "/api/v1/agents", "", "", "", all, attacker); code != http.StatusTooManyRequests {
		t.Errorf("a right token from the banned address: %d, want 429", code)
	}
	waitFor(t, "the ban in the bans file", 10*time.Second, func() bool {
		out, _, _ := syncerRun(t, "ban", "list", "--state", c.state)
		return strings.Contains(out, attacker)
	})

	if _, errOut, code := syncerRun(t, "token", "remove", "ci", "--state", c.state); code != 0 {
		t.Fatalf("token remove: %d %s", code, errOut)
	}
	if code, _ := webDo(t, p, "/raw/node1/app.log", "", "", "", one, ""); code != 401 {
		t.Errorf("removed token: %d, want 401", code)
	}
	if code, _ := webDo(t, p, "/raw/node1/app.log", "", "", "", all, ""); code != 200 {
		t.Errorf("the other token after the removal: %d, want 200", code)
	}
}
