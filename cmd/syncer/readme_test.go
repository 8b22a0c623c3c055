package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// quickStartBlocks returns the shell blocks of the README's Quick start,
// one command a line (continuations joined, comments and `make build`
// dropped).
func quickStartBlocks(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\n## Quick start")
	if i < 0 {
		t.Fatal("README has no Quick start")
	}
	text = text[i+1:]
	if j := strings.Index(text[3:], "\n## "); j >= 0 {
		text = text[:j+3]
	}
	var blocks [][]string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		var cmds []string
		for _, line := range strings.Split(strings.ReplaceAll(m[1], "\\\n", " "), "\n") {
			if k := strings.Index(line, "  #"); k >= 0 {
				line = line[:k]
			}
			line = strings.Join(strings.Fields(line), " ")
			if line != "" && line != "make build" {
				cmds = append(cmds, line)
			}
		}
		blocks = append(blocks, cmds)
	}
	if len(blocks) != 2 {
		t.Fatalf("Quick start has %d shell blocks, want 2 (historian, node)", len(blocks))
	}
	return blocks
}

// TestReadmeQuickStart runs the README's Quick start as written, with this
// test's directories, ports and binary in place of the README's: the
// historian block (user add answering the password prompt on a terminal,
// serve with TLS, passive ports and the FUSE view), then the node block
// (check, push, the example config for watch), and checks what the README
// says then works: grep and less through the mount, the HTTPS viewer with
// the account's login.
func TestReadmeQuickStart(t *testing.T) {
	blocks := quickStartBlocks(t)
	bin := testkit.SyncerBinary(t)
	base := t.TempDir()
	ftpPort, httpPort, pasv := testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
	const pw = "pw-quick-start-1"
	dirs := map[string]string{"state": filepath.Join(base, "state"), "srv": filepath.Join(base, "srv-archive"),
		"mnt": filepath.Join(base, "mnt"), "etc": filepath.Join(base, "etc"), "logs": filepath.Join(base, "logs")}
	sub := func(cmd, fingerprint string) string {
		r := strings.NewReplacer(
			"/var/lib/syncer", dirs["state"], "/srv/archive", dirs["srv"], "/etc/syncer", dirs["etc"],
			"/var/log/app", dirs["logs"], "0.0.0.0:2121", fmt.Sprintf("127.0.0.1:%d", ftpPort),
			"historian:2121", fmt.Sprintf("127.0.0.1:%d", ftpPort), "50000-50100", fmt.Sprintf("%d-%d", pasv, pasv),
			"127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", httpPort), "sha256:...", fingerprint,
			"'the password'", "'"+pw+"'", "bin/syncer ", bin+" ", "cp agent.example.yaml", "cp ../../scripts/agent.example.yaml")
		cmd = r.Replace(cmd)
		cmd = regexp.MustCompile(`(^| )/archive\b`).ReplaceAllString(cmd, "${1}"+dirs["mnt"])
		if strings.HasPrefix(cmd, "syncer ") {
			cmd = bin + cmd[len("syncer"):]
		}
		return cmd
	}
	run := func(cmd, stdin string) {
		t.Helper()
		c := exec.Command("bash", "-c", cmd)
		c.Stdin = strings.NewReader(stdin)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}

	// The historian.
	var serve *exec.Cmd
	for _, cmd := range blocks[0] {
		cmd = sub(cmd, "")
		switch {
		case strings.Contains(cmd, " user add "):
			// It asks twice on a terminal: answer through script(1).
			run(fmt.Sprintf("script -qec %q /dev/null", cmd), pw+"\n"+pw+"\n")
		case strings.Contains(cmd, " serve "):
			if os.Geteuid() != 0 {
				t.Fatal("the Quick start mounts the FUSE view: run as root (CI does)")
			}
			serve = exec.Command("bash", "-c", "exec "+cmd)
			serve.Stderr = &testkit.LockedBuffer{}
			if err := serve.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = serve.Process.Signal(syscall.SIGTERM); _ = serve.Wait() })
		default:
			run(cmd, "")
		}
	}
	if serve == nil {
		t.Fatal("the historian block starts no serve")
	}
	web := fmt.Sprintf("https://127.0.0.1:%d", httpPort)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if resp, err := insecureClient.Get(web + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the Quick start's serve does not answer on %s:\n%s", web, serve.Stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fp := runAgent(t, "", "tls", "fingerprint", "--state", dirs["state"])
	if fp.code != 0 {
		t.Fatalf("tls fingerprint: %s", fp.stderr)
	}
	fingerprint := strings.TrimSpace(fp.stdout)

	// The node, with the log the README then greps and reads.
	writeTestFile(t, filepath.Join(dirs["logs"], "2026-11-24.log"), "2026-11-24T10:00:00Z INFO up\n2026-11-24T10:00:01Z ERROR disk full\n")
	for _, cmd := range blocks[1] {
		cmd = sub(cmd, fingerprint)
		switch {
		case strings.Contains(cmd, " watch "):
			// The example config, set as the comment above says.
			cfg := filepath.Join(dirs["etc"], "agent.yaml")
			b, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			for _, kv := range [][2]string{{"server", "ftps://127.0.0.1:" + fmt.Sprint(ftpPort)}, {"dir", dirs["logs"]},
				{"state", filepath.Join(base, "agent-state")}, {"password-file", filepath.Join(dirs["etc"], "password")}} {
				text = regexp.MustCompile(`(?m)^`+kv[0]+`:.*$`).ReplaceAllString(text, kv[0]+": "+kv[1])
			}
			text += "tls-fingerprint: " + fingerprint + "\n"
			if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			w := exec.Command("bash", "-c", "exec "+cmd)
			out := &testkit.LockedBuffer{}
			w.Stderr = out
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Second)
			_ = w.Process.Signal(syscall.SIGTERM)
			if err := w.Wait(); err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
		default:
			run(cmd, "")
		}
	}

	// "Then grep -r ERROR /archive/ and less /archive/node17/2026-11-24.log work."
	if out, err := exec.Command("grep", "-r", "ERROR", dirs["mnt"]+"/").CombinedOutput(); err != nil || !strings.Contains(string(out), "disk full") {
		t.Errorf("grep -r ERROR through the mount: %v %s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dirs["mnt"], "node17", "2026-11-24.log")); err != nil || !strings.Contains(string(b), "ERROR disk full") {
		t.Errorf("read node17/2026-11-24.log through the mount: %v", err)
	}
	req, _ := http.NewRequest("GET", web+"/api/v1/agents", nil)
	req.SetBasicAuth("node17", pw)
	resp, err := insecureClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the web viewer with node17's login: %d", resp.StatusCode)
	}
}
