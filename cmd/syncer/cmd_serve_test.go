package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// serveProc is a running `syncer serve`.
type serveProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
	http   string
	scheme string // of the web viewer: "http", or "https" with a certificate
}

// insecureClient takes any certificate: for tests of what is behind TLS.
var insecureClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// webScheme finds out whether the viewer at addr speaks HTTPS or HTTP and
// whether it is ready: its scheme once /healthz says "ok".
func webScheme(addr string) (string, error) {
	for _, scheme := range []string{"http", "https"} {
		resp, err := insecureClient.Get(scheme + "://" + addr + "/healthz")
		if err != nil {
			if scheme == "https" {
				return "", err
			}
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) == "ok" {
			return scheme, nil
		}
		if !strings.Contains(string(b), "HTTPS server") {
			return "", fmt.Errorf("/healthz: %d %q", resp.StatusCode, b)
		}
	}
	return "", fmt.Errorf("/healthz: not ready")
}

func startServe(t *testing.T, config string, httpAddr string) *serveProc {
	t.Helper()
	cmd := exec.Command(testkit.SyncerBinary(t), "serve", "--config", config)
	p := &serveProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1), http: httpAddr}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		scheme, err := webScheme(httpAddr)
		if err == nil {
			p.scheme = scheme
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready: %v\n%s", err, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and wants exit 0.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop after SIGTERM\n%s", p.stderr)
	}
}

func (p *serveProc) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := insecureClient.Get(p.scheme + "://" + p.http + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// serveConfig is a historian configured by one YAML file (every flag of
// serve) under base, with an agent account node1 whose password is pw;
// extra holds more YAML lines. Its loopback web viewer has no login
// (http-no-login): the tests that use it are about the archive; those
// about the login use newServeConfigLogin.
type serveConfig struct {
	base, root, state, config string
	ftp, http                 string
}

func newServeConfig(t *testing.T, pw, extra string) *serveConfig {
	t.Helper()
	return newServeConfigLogin(t, pw, "http-no-login: true\n"+extra)
}

// newServeConfigLogin is newServeConfig with the web viewer's default
// login.
func newServeConfigLogin(t *testing.T, pw, extra string) *serveConfig {
	t.Helper()
	base := t.TempDir()
	c := &serveConfig{base: base, root: filepath.Join(base, "archive"), state: filepath.Join(base, "state"),
		config: filepath.Join(base, "serve.yaml"), ftp: testkit.FreeAddr(t), http: testkit.FreeAddr(t)}
	cfg := fmt.Sprintf("root: %s\nstate: %s\nftp: %s\nhttp: %s\n%s", c.root, c.state, c.ftp, c.http, extra)
	if err := os.WriteFile(c.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	add := exec.Command(testkit.SyncerBinary(t), "user", "add", "node1", "--password-stdin", "--state", c.state)
	add.Stdin = strings.NewReader(pw + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	return c
}

// TestServeHistorianEndToEnd: the binary's serve, configured by YAML,
// archives what the binary's push sends and verifies it; a second serve on
// the same state directory fails with one clear line. (The lifecycle
// itself, a rebuilt index included, is tested in package historian.)
func TestServeHistorianEndToEnd(t *testing.T) {
	c := newServeConfig(t, "pw-node1-secret", "max-conns: 50\nmax-upload-rate: 100MiB\n")
	base, config := c.base, c.config
	logs := filepath.Join(base, "logs")
	ftpAddr, httpAddr := c.ftp, c.http
	files := map[string]string{"app/a.log": strings.Repeat("alpha line\n", 5000), "b.log": "bravo\n"}
	for rel, data := range files {
		writeTestFile(t, filepath.Join(logs, rel), data)
	}

	p := startServe(t, config, httpAddr)
	r := runAgent(t, "pw-node1-secret", "push", "--server", "ftp://"+ftpAddr, "--user", "node1",
		"--agent-id", "node1", "--dir", logs, "--state", filepath.Join(base, "agent"), "--json")
	if r.code != 0 {
		t.Fatalf("push: %d %s %s", r.code, r.stdout, r.stderr)
	}
	check := func(p *serveProc) string {
		t.Helper()
		var out strings.Builder
		// Sorted, so the two reports compare equal whatever the map order.
		for _, rel := range slices.Sorted(maps.Keys(files)) {
			data := files[rel]
			sum := sha256.Sum256([]byte(data))
			var f struct {
				Size   int64  `json:"size"`
				SHA256 string `json:"sha256"`
				Status string `json:"status"`
			}
			// The index follows the upload events; allow it a moment.
			deadline := time.Now().Add(10 * time.Second)
			for {
				p.getJSON(t, "/api/v1/files/node1/"+rel, &f)
				if f.Status == "verified" || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if f.Size != int64(len(data)) || f.SHA256 != hex.EncodeToString(sum[:]) || f.Status != "verified" {
				t.Errorf("%s: %+v", rel, f)
			}
			fmt.Fprintf(&out, "%s %+v\n", rel, f)
		}
		var agents struct {
			Agents []struct {
				ID     string `json:"id"`
				Files  int64  `json:"files"`
				Status string `json:"status"`
			} `json:"agents"`
		}
		p.getJSON(t, "/api/v1/agents", &agents)
		if len(agents.Agents) != 1 || agents.Agents[0].ID != "node1" || agents.Agents[0].Files != 2 || agents.Agents[0].Status != "active" {
			t.Errorf("agents: %+v", agents)
		}
		fmt.Fprintf(&out, "%+v\n", agents)
		return out.String()
	}
	check(p)

	// A second serve on the same state directory fails clearly.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testkit.SyncerBinary(t), "serve", "--config", config, "--ftp", "127.0.0.1:0", "--http", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another syncer serve") {
		t.Errorf("second serve: %v %s", err, out)
	}

	p.stop(t)
}

func writeTestFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
