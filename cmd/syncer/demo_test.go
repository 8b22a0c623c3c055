//go:build unix

package main

import (
	"context"
	"encoding/json"
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

// TestDemoFromALongPath runs scripts/demo.sh (make demo) with its directory
// five levels of 200-character names deep: before, a `find | head` under
// pipefail died of SIGPIPE once find wrote more than a pipe buffer and the
// demo exited 141 before printing the web address, and `serve --help |
// grep -q` switched the FUSE view off the same way. The demo's three agents
// show as it says: demo-node active, demo-cron late, demo-db failing.
func TestDemoFromALongPath(t *testing.T) {
	seg := strings.Repeat("d", 200)
	demo := filepath.Join(t.TempDir(), seg, seg, seg, seg, seg, "demo")
	if err := os.MkdirAll(filepath.Dir(demo), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("..", "..", "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(), "SYNCER_BIN="+testkit.SyncerBinary(t), "DEMO_DIR="+demo)
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() { stopDemo(t, demo) })
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`web viewer:\s+(http://127\.0\.0\.1:\d+)/`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("the demo printed no web address:\n%s", out)
	}
	base := string(m[1])
	token, err := os.ReadFile(filepath.Join(demo, "token"))
	if err != nil {
		t.Fatalf("the demo made no API token: %v", err)
	}
	want := map[string]string{"demo-node": "active", "demo-cron": "late", "demo-db": "failing"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := demoStatuses(t, base, strings.TrimSpace(string(token)))
		if len(got) == len(want) && got["demo-node"] == want["demo-node"] && got["demo-cron"] == want["demo-cron"] && got["demo-db"] == want["demo-db"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent statuses %v, want %v", got, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if os.Geteuid() == 0 {
		if _, err := os.Stat("/dev/fuse"); err == nil {
			if !strings.Contains(string(out), "FUSE view:      "+demo+"/mnt") {
				t.Errorf("root with /dev/fuse, yet the demo did not mount the FUSE view:\n%s", out)
			} else if _, err := os.Stat(filepath.Join(demo, "mnt", "demo-node")); err != nil {
				t.Errorf("the FUSE view shows no demo-node: %v", err)
			}
		}
	}
}

func demoStatuses(t *testing.T, base, token string) map[string]string {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/api/v1/agents", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Agents []struct{ ID, Status string } `json:"agents"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/api/v1/agents: %v", err)
	}
	got := map[string]string{}
	for _, a := range body.Agents {
		got[a.ID] = a.Status
	}
	return got
}

// stopDemo stops the demo's historian as make demo-stop does and waits
// for it (and its FUSE view) to go.
func stopDemo(t *testing.T, demo string) {
	b, err := os.ReadFile(filepath.Join(demo, "serve.pid"))
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &pid); err != nil || pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}
