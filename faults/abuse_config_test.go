package faults

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// listing is every path under dir with its size, to show that nothing
// changed.
func listing(t testing.TB, dir string) string {
	t.Helper()
	var out []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		// Lock files (users.yaml.lock, serve.lock) are empty and hold
		// no data: creating one changes nothing.
		if err == nil && !strings.HasSuffix(p, ".lock") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel+" "+fi.Mode().String()+" "+string(rune('0'+fi.Size()%10)))
		}
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestConfigAbuse runs serve, push and watch with bad configuration: each
// exits 2 with one line on stderr that names the problem, crashes nothing,
// and changes nothing in the archive, the state or the log directory.
func TestConfigAbuse(t *testing.T) {
	base := t.TempDir()
	h := newHistorian(t, base, "node1")
	logs := filepath.Join(base, "logs")
	writeLogFile(t, filepath.Join(logs, "a.log"), 1000, nil2())
	if err := os.MkdirAll(h.root, 0o755); err != nil {
		t.Fatal(err)
	}
	file := func(name, body string) string {
		p := filepath.Join(base, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := file("plain-users.yaml", "users:\n  - name: node9\n    password: hunter2-plain-text\n")
	serve := []string{"serve", "--root", h.root, "--state", h.state, "--ftp", testkit.FreeAddr(t), "--http", testkit.FreeAddr(t)}
	push := append([]string{"push"}, agentArgs("node1", h.ftp, logs, filepath.Join(base, "agent"))...)
	watch := append([]string{"watch"}, agentArgs("node1", h.ftp, logs, filepath.Join(base, "agent"))...)
	cases := []struct {
		name    string
		args    []string
		mention string
	}{
		{"serve: malformed YAML", append(serve, "--config", file("bad.yaml", "root: [unclosed\n")), "bad.yaml"},
		{"serve: unknown key", append(serve, "--config", file("unknown.yaml", "max-conn: 5\n")), "max-conn"},
		{"serve: bad rate", append(serve, "--max-upload-rate", "10 mbit"), "10 mbit"},
		{"serve: bad rate in YAML", append(serve, "--config", file("rate.yaml", "max-download-rate: fast\n")), "fast"},
		{"serve: missing TLS files", append(serve, "--tls-cert", filepath.Join(base, "no.crt"), "--tls-key", filepath.Join(base, "no.key")), "no.crt"},
		{"serve: TLS cert without key", append(serve, "--tls-cert", plain), "tls-key"},
		{"serve: bad passive ports", append(serve, "--passive-ports", "6000-5000"), "6000-5000"},
		{"serve: users file with plain-text password", append(serve, "--users", plain), "plain-text"},
		{"push: bad include glob", append(push, "--include", "a/[b"), "a/[b"},
		{"push: bad exclude glob", append(push, "--exclude", "{x"), "{x"},
		{"push: malformed YAML", append(push, "--config", file("agent.yaml", "include: {\n")), "agent.yaml"},
		{"push: unknown key", append(push, "--config", file("agent2.yaml", "inclde: ['*.log']\n")), "inclde"},
		{"push: bad server URL", append(push, "--server", "http://x"), "http://x"},
		{"watch: bad interval", append(watch, "--interval", "soon"), "soon"},
		{"watch: interval too short", append(watch, "--interval", "1ms"), "1ms"},
		{"push: missing log dir", append(push, "--dir", filepath.Join(base, "missing")), "missing"},
	}
	before := listing(t, base)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, testkit.SyncerBinary(t), c.args...)
			cmd.Env = append(os.Environ(), "SYNCER_PASSWORD="+h.passwords["node1"])
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			msg := strings.TrimSpace(stderr.String())
			if code != 2 {
				t.Errorf("exit %d (%v), want 2; stderr %q", code, err, msg)
			}
			if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, c.mention) {
				t.Errorf("stderr %q: want one line naming %q", msg, c.mention)
			}
			if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine") {
				t.Errorf("crash: %s", msg)
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, h.passwords["node1"]) {
				t.Errorf("a password in the error: %s", msg)
			}
		})
	}
	// The state directory of the agent may not even be created; nothing
	// else may change.
	after := listing(t, base)
	if before != after {
		t.Errorf("files changed by refused runs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	report(t, "Config: malformed YAML, unknown keys, bad rates, bad passive ports, missing TLS files, cert without key, plain-text password in the users file, bad globs, bad server URL, bad or too short interval, missing log directory",
		"exit 2 with one line on stderr naming the key or value; no crash; no password in the text; no file created or changed (`TestConfigAbuse`, 16 cases)", 0)
}
