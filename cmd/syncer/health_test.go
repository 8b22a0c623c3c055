package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// get fetches path from the historian's web viewer.
func (p *serveProc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := insecureClient.Get(p.scheme + "://" + p.http + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// addAccount adds an agent account to the historian's users file.
func addAccount(t *testing.T, state, name, pw string) {
	t.Helper()
	add := exec.Command(testkit.SyncerBinary(t), "user", "add", name, "--password-stdin", "--state", state)
	add.Stdin = strings.NewReader(pw + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add %s: %v %s", name, err, out)
	}
}

// TestAgentHealthEndToEnd: a real historian with four agents: one that
// declared a schedule and went quiet (late), one whose last push failed a
// file (failing, with the error shown), an account that never pushed, and
// a tree whose account was removed (retired). The API, the pages and the
// per-agent Prometheus gauges say so, promtool accepts the metrics, and
// the example alert rules pass their promtool tests. Before: the quiet
// cron agent was never late, the failing one showed "active", the
// overview counted neither, /metrics had no per-agent health.
func TestAgentHealthEndToEnd(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool (Debian package prometheus, installed by .ci/run) is needed: %v", err)
	}
	rules := filepath.Join("..", "..", "scripts", "prometheus")
	for _, args := range [][]string{{"check", "rules", filepath.Join(rules, "syncer-alerts.yml")}, {"test", "rules", filepath.Join(rules, "syncer-alerts.test.yml")}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	c := newServeConfig(t, "pw-node1-secret", "")
	for _, a := range []string{"node2", "node3", "node4"} {
		addAccount(t, c.state, a, "pw-"+a+"-secret")
	}
	p := startServe(t, c.config, c.http)
	push := func(agent string, extra ...string) agentRun {
		logs := filepath.Join(c.base, "logs-"+agent)
		writeLog(t, filepath.Join(logs, "a.log"), 500)
		writeLog(t, filepath.Join(logs, "sub", "b.log"), 500)
		return runAgent(t, "pw-"+agent+"-secret", append([]string{"push", "--server", "ftp://" + c.ftp, "--user", agent,
			"--agent-id", agent, "--dir", logs, "--state", filepath.Join(c.base, "state-"+agent)}, extra...)...)
	}
	if r := push("node1", "--expect-every", "1s"); r.code != 0 {
		t.Fatalf("push node1: %d %s", r.code, r.stderr)
	}
	// node2's "sub" is a file on the historian: sub/b.log fails.
	writeTestFile(t, filepath.Join(c.root, "node2", "sub"), "x")
	if r := push("node2"); r.code != 1 {
		t.Fatalf("push node2: exit %d, want 1: %s", r.code, r.stderr)
	}
	if r := push("node4"); r.code != 0 {
		t.Fatalf("push node4: %d %s", r.code, r.stderr)
	}
	if out, err := exec.Command(testkit.SyncerBinary(t), "user", "remove", "node4", "--state", c.state).CombinedOutput(); err != nil {
		t.Fatalf("user remove node4: %v %s", err, out)
	}

	want := map[string]string{"node1": "late", "node2": "failing", "node3": "never seen", "node4": "retired"}
	var agents struct {
		Agents []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Failed int64  `json:"last_push_failed"`
			Errors []struct {
				Path  string `json:"path"`
				Error string `json:"error"`
			} `json:"last_push_errors"`
		} `json:"agents"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.getJSON(t, "/api/v1/agents", &agents)
		got := map[string]string{}
		for _, a := range agents.Agents {
			got[a.ID] = a.Status
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, a := range agents.Agents {
		if a.ID == "node2" && (a.Failed != 1 || len(a.Errors) != 1 || a.Errors[0].Path != "sub/b.log") {
			t.Errorf("node2's last push errors: %+v", a)
		}
	}
	var ov struct {
		Statuses map[string]int `json:"agent_statuses"`
	}
	p.getJSON(t, "/api/v1/overview", &ov)
	if ov.Statuses["late"] != 1 || ov.Statuses["failing"] != 1 || ov.Statuses["never seen"] != 1 || ov.Statuses["retired"] != 1 {
		t.Errorf("overview statuses %v", ov.Statuses)
	}
	_, page := p.get(t, "/")
	if i, j := strings.Index(page, "Needs attention"), strings.Index(page, "Verification"); i < 0 || j < i ||
		!strings.Contains(page, "sub/b.log") || !strings.Contains(page, ">late<") {
		t.Errorf("the overview does not lead with the agents needing attention:\n%s", page)
	}
	if _, page = p.get(t, "/agent/node2"); !strings.Contains(page, "sub/b.log</code>:") {
		t.Errorf("the agent page does not show the last push's error")
	}
	_, page = p.get(t, "/agents?sort=status")
	if !strings.Contains(page, "every 1s (cron)") || strings.Index(page, "node1") > strings.Index(page, "node4") {
		t.Errorf("agents page sorted by status: schedule or order wrong")
	}

	code, metrics := p.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range []string{
		`syncer_agent_status{agent="node1",status="late"} 1`,
		`syncer_agent_status{agent="node2",status="failing"} 1`,
		`syncer_agent_status{agent="node3",status="never seen"} 1`,
		`syncer_agent_status{agent="node4",status="retired"} 1`,
		`syncer_agent_status{agent="node1",status="active"} 0`,
		`syncer_agent_last_push_failed_files{agent="node2"} 1`,
		`syncer_agent_schedule_seconds{agent="node1"} 1`,
		`syncer_agent_last_seen_timestamp_seconds{agent="node3"} 0`,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = strings.NewReader(metrics)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	rulesText, err := os.ReadFile(filepath.Join(rules, "syncer-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"syncer_agent_status", "syncer_agent_last_push_failed_files", "syncer_verification_files"} {
		if !strings.Contains(string(rulesText), name) || !strings.Contains(metrics, "# TYPE "+name+" ") {
			t.Errorf("the alert rules use %s, which /metrics must export", name)
		}
	}

}

// TestWatchHeartbeatKeepsQuietAgentActive: a watch whose logs do not
// change still tells the historian it is alive every interval, so it
// never shows late (before: late after three intervals of quiet logs).
func TestWatchHeartbeatKeepsQuietAgentActive(t *testing.T) {
	c := newServeConfig(t, "pw-node1-secret", "")
	p := startServe(t, c.config, c.http)
	logs := filepath.Join(c.base, "logs")
	writeLog(t, filepath.Join(logs, "a.log"), 500)
	cmd := exec.Command(testkit.SyncerBinary(t), "watch", "--interval", "500ms", "--server", "ftp://"+c.ftp, "--user", "node1",
		"--agent-id", "node1", "--dir", logs, "--state", filepath.Join(c.base, "agent"))
	cmd.Env = append(os.Environ(), "SYNCER_PASSWORD=pw-node1-secret")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var agents struct {
		Agents []struct {
			ID       string    `json:"id"`
			Status   string    `json:"status"`
			LastSeen time.Time `json:"last_seen"`
		} `json:"agents"`
	}
	var first time.Time
	for i := 0; i < 16; i++ { // 4 s: eight intervals without a change
		time.Sleep(250 * time.Millisecond)
		p.getJSON(t, "/api/v1/agents", &agents)
		if len(agents.Agents) != 1 {
			continue
		}
		a := agents.Agents[0]
		if first.IsZero() {
			first = a.LastSeen
		}
		if a.Status == "late" {
			t.Fatalf("a watch with quiet logs shows late: %+v", a)
		}
	}
	if len(agents.Agents) != 1 || !agents.Agents[0].LastSeen.After(first.Add(2*time.Second)) || agents.Agents[0].Status != "active" {
		t.Errorf("last seen did not advance with the heartbeats: first %s, now %+v", first, agents.Agents)
	}
}
