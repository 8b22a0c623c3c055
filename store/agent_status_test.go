package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAgentStatus: statuses mean what they say. Before, a cron agent was
// never late and an agent whose last push failed files was "active".
func TestAgentStatus(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	failed := []byte(`{"files_failed":2,"errors":[{"path":"a.log","error":"permission denied"},{"path":"b.log","error":"x"}]}`)
	for _, c := range []struct {
		name string
		rec  AgentRecord
		want string
	}{
		{"never seen", AgentRecord{Interval: "10s"}, AgentNeverSeen},
		{"watch on time", AgentRecord{Interval: "10s", LastSeen: now.Add(-29 * time.Second)}, AgentActive},
		{"watch late", AgentRecord{Interval: "10s", LastSeen: now.Add(-31 * time.Second)}, AgentLate},
		{"cron on time", AgentRecord{ExpectEvery: "1h", LastSeen: now.Add(-2 * time.Hour)}, AgentActive},
		{"cron late", AgentRecord{ExpectEvery: "1h", LastSeen: now.Add(-3*time.Hour - time.Second)}, AgentLate},
		{"no schedule is never late", AgentRecord{LastSeen: now.Add(-1000 * time.Hour)}, AgentActive},
		{"failing", AgentRecord{Interval: "10s", LastSeen: now, LastPush: failed}, AgentFailing},
		{"late beats failing", AgentRecord{Interval: "10s", LastSeen: now.Add(-time.Hour), LastPush: failed}, AgentLate},
		{"a bad summary is not a failure", AgentRecord{LastSeen: now, LastPush: []byte(`{"files_failed":"x"`)}, AgentActive},
	} {
		if got := c.rec.Status(now); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	r := AgentRecord{LastPush: failed}
	if errs := r.LastPushErrors(1); len(errs) != 1 || errs[0].Path != "a.log" || errs[0].Error != "permission denied" {
		t.Errorf("LastPushErrors(1) = %+v", errs)
	}
}

// TestAgentScheduleKept: a manual push under a watch agent's id (its
// description has no interval) keeps the watch's schedule; before, it
// wiped it and the agent could never be late again. Last seen is the
// historian's time of the description, not the node's clock.
func TestAgentScheduleKept(t *testing.T) {
	e := newIxEnv(t)
	e.write("n1/.syncer/agent.json", []byte(`{"id":"n1","interval":"10s","time":"2020-01-01T00:00:00Z"}`))
	e.start()
	a, err := e.ix.Agent("n1")
	if err != nil || a.Interval != "10s" {
		t.Fatalf("agent after watch: %+v %v", a, err)
	}
	if since := time.Since(a.LastSeen); since < 0 || since > time.Minute {
		t.Errorf("last seen %s: want the description's arrival (now), not the node's clock", a.LastSeen)
	}
	describe := func(js string) {
		t.Helper()
		if err := os.Remove(filepath.Join(e.root, "n1", ".syncer", "agent.json")); err != nil {
			t.Fatal(err)
		}
		e.upload("n1", ".syncer/agent.json", 0, []byte(js), false)
		e.flush()
	}
	describe(`{"id":"n1","last_push":{"files_failed":1},"time":"2026-01-01T00:00:00Z"}`)
	if a, _ = e.ix.Agent("n1"); a.Interval != "10s" || a.LastPushFailed() != 1 {
		t.Errorf("after a manual push: interval %q, failed %d; want the watch's 10s kept and 1", a.Interval, a.LastPushFailed())
	}
	describe(`{"id":"n1","expect_every":"1h","time":"2026-01-01T00:00:00Z"}`)
	if a, _ = e.ix.Agent("n1"); a.Interval != "" || a.ExpectEvery != "1h" || a.Schedule() != time.Hour {
		t.Errorf("after a cron push: interval %q, expect every %q", a.Interval, a.ExpectEvery)
	}
}

// TestIndexTouched: an agent's MFMT after an upload gives the index the
// node's mtime at once (what the mount and the viewer show), keeping the
// hash; the upload time stays known apart.
func TestIndexTouched(t *testing.T) {
	e := newIxEnv(t)
	e.start()
	data := lines(1, 50)
	e.upload("n1", "a.log", 0, data, false)
	e.flush()
	before := e.lookup("n1", "a.log")
	when := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(e.root, "n1", "a.log"), when, when); err != nil {
		t.Fatal(err)
	}
	e.ix.Notify(IngestEvent{Kind: IngestTouched, Path: "/n1/a.log", Account: "n1", Time: time.Now()})
	e.flush()
	got := e.lookup("n1", "a.log")
	if !got.Mtime().Equal(when) || got.SHA256Hex() != before.SHA256Hex() || got.Hashed != before.Hashed || got.FirstUploadNs != before.FirstUploadNs {
		t.Errorf("after MFMT: mtime %s hashed %d sha %s first upload %d; want %s and the hash kept (%d, %s, %d)",
			got.Mtime(), got.Hashed, got.SHA256Hex(), got.FirstUploadNs, when, before.Hashed, before.SHA256Hex(), before.FirstUploadNs)
	}
}
