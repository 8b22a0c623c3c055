package syncer_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/store"
	"github.com/syncer-dev/syncer/syncer"
)

func wantCounts(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s = %d, want %d (all: %v)", what, k, got[k], w, got)
		}
	}
}

func commits(t *testing.T, tree string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(tree, ".syncer", "commits"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// statTree maps each file on the server to its size and mtime, to show
// that a push stored nothing.
func statTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, err := d.Info()
			if err == nil {
				out[p] = fmt.Sprintf("%d %s", fi.Size(), fi.ModTime())
			}
		}
		return nil
	})
	return out
}

// TestPushLifecycle is the end-to-end story against the syncer server:
// initial push, an idle push, appends, rewrite and truncation, deletion.
func TestPushLifecycle(t *testing.T) {
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	paths := e.makeTree(40)

	sum := e.push()
	wantCounts(t, "initial push", map[string]int64{"new": sum.FilesNew, "failed": sum.FilesFailed, "scanned": sum.FilesScanned},
		map[string]int64{"new": 40, "failed": 0, "scanned": 40})
	var total int64
	for _, p := range paths {
		fi, _ := os.Stat(filepath.Join(e.dir, p))
		total += fi.Size()
	}
	if sum.BytesSent != total {
		t.Errorf("initial push sent %d bytes, the tree has %d", sum.BytesSent, total)
	}
	e.wantSameTree()
	if c := commits(t, tg.tree); len(c) != 1 {
		t.Fatalf("commit records after the first push: %v, want 1", c)
	}
	if _, err := os.Stat(filepath.Join(tg.tree, ".syncer", "agent.json")); err != nil {
		t.Errorf("agent description missing: %v", err)
	}

	// Nothing changed: nothing is sent or stored but the heartbeat, the
	// agent description.
	heartbeat := filepath.Join(tg.tree, ".syncer", "agent.json")
	before := statTree(t, tg.tree)
	sum = e.push()
	wantCounts(t, "idle push", map[string]int64{"unchanged": sum.FilesUnchanged, "sent": sum.BytesSent, "new": sum.FilesNew},
		map[string]int64{"unchanged": 40, "sent": 0, "new": 0})
	after := statTree(t, tg.tree)
	if len(before) != len(after) {
		t.Errorf("idle push changed the number of server files: %d -> %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v && k != heartbeat {
			t.Errorf("idle push touched %s", k)
		}
	}
	if after[heartbeat] == before[heartbeat] {
		t.Errorf("idle push sent no heartbeat: %s unchanged", heartbeat)
	}

	// Appends: only the new bytes travel.
	var growth int64
	for i, p := range paths[:10] {
		add := logLines(uint64(1000+i), 777+i*13)
		e.appendTo(p, add)
		growth += int64(len(add))
	}
	sum = e.push()
	wantCounts(t, "append push", map[string]int64{"appended": sum.FilesAppended, "sent": sum.BytesSent, "rewritten": sum.FilesRewritten, "unchanged": sum.FilesUnchanged},
		map[string]int64{"appended": 10, "sent": growth, "rewritten": 0, "unchanged": 30})
	e.wantSameTree()
	if c := commits(t, tg.tree); len(c) != 2 {
		t.Errorf("commit records after the append push: %v, want 2", c)
	}

	// Rewrite one file in place (same size), truncate another, replace a
	// third with different content: new versions, the old ones kept.
	rewritten := paths[13] // 4097 bytes (makeTree: size by i%8)
	truncated := paths[14] // 70,000 bytes
	oldRewritten := fileSum(t, filepath.Join(tg.tree, rewritten))
	oldTruncated := fileSum(t, filepath.Join(tg.tree, truncated))
	data, _ := os.ReadFile(filepath.Join(e.dir, rewritten))
	data[len(data)/2] ^= 0xff
	e.write(rewritten, data)
	if err := os.Truncate(filepath.Join(e.dir, truncated), 10); err != nil {
		t.Fatal(err)
	}
	sum = e.push()
	wantCounts(t, "rewrite push", map[string]int64{"rewritten": sum.FilesRewritten, "failed": sum.FilesFailed},
		map[string]int64{"rewritten": 2, "failed": 0})
	e.wantSameTree()
	for p, old := range map[string]string{rewritten: oldRewritten, truncated: oldTruncated} {
		vs, _ := filepath.Glob(filepath.Join(tg.tree, p) + ".superseded-*")
		if len(vs) != 1 {
			t.Errorf("%s: superseded versions %v, want 1", p, vs)
			continue
		}
		if got := fileSum(t, vs[0]); got != old {
			t.Errorf("%s: superseded version holds %s, want the old content %s", p, got, old)
		}
	}

	// Delete locally: still archived, marked gone.
	gone := paths[20]
	if err := os.Remove(filepath.Join(e.dir, gone)); err != nil {
		t.Fatal(err)
	}
	sum = e.push()
	if sum.FilesGone != 1 || sum.BytesSent != 0 {
		t.Errorf("delete push: gone %d sent %d, want 1 and 0", sum.FilesGone, sum.BytesSent)
	}
	if _, err := os.Stat(filepath.Join(tg.tree, gone)); err != nil {
		t.Errorf("deleted file no longer archived: %v", err)
	}
	ent, err := e.entry(gone)
	if err != nil || ent.Status != store.StatusGone {
		t.Errorf("manifest entry of the deleted file: %v %v, want gone", ent.Status, err)
	}
}

// TestPushFailedFileIsNotFatal: an unreadable file is reported and the
// others are archived.
func TestPushFailedFileIsNotFatal(t *testing.T) {
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	e.makeTree(6)
	bad := "bad/unreadable.log"
	if os.Geteuid() == 0 {
		// root reads any file whatever its mode: a FIFO named like a log
		// is a file the agent cannot archive.
		if err := os.MkdirAll(filepath.Join(e.dir, "bad"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := mkfifo(filepath.Join(e.dir, bad)); err != nil {
			t.Skipf("cannot make a FIFO here (%v), and as root chmod 000 does not stop reads", err)
		}
	} else {
		e.write(bad, []byte("secret\n"))
		if err := os.Chmod(filepath.Join(e.dir, bad), 0); err != nil {
			t.Fatal(err)
		}
	}
	sum := e.push()
	if sum.FilesFailed != 1 || len(sum.Errors) != 1 || sum.Errors[0].Path != bad {
		t.Fatalf("failed %d, errors %+v; want 1 for %s", sum.FilesFailed, sum.Errors, bad)
	}
	if sum.FilesNew != 6 {
		t.Errorf("new = %d, want the 6 readable files", sum.FilesNew)
	}
	if _, err := os.Stat(filepath.Join(tg.tree, bad)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unreadable file reached the server: %v", err)
	}
	for _, fe := range sum.Errors {
		if strings.Contains(fe.Error, e.dir) {
			t.Errorf("error names the absolute path: %q", fe.Error)
		}
	}
}

// TestStateInsideLogDir: a state directory inside the log directory is not
// archived (Pebble names its write-ahead log *.log).
func TestStateInsideLogDir(t *testing.T) {
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	e.state = filepath.Join(e.dir, "state")
	e.opts.StateDir = e.state
	e.write("a.log", []byte("one line\n"))
	s := e.push()
	if s.FilesNew != 1 || s.FilesScanned != 1 {
		t.Fatalf("push: %+v", s)
	}
	if _, err := os.Stat(filepath.Join(tg.tree, "state")); !os.IsNotExist(err) {
		t.Errorf("state directory archived: %v", err)
	}
}

// TestUnchangedPushStillLogsIn: every push logs in, also one that finds
// nothing changed, so a dead historian or a wrong password is reported on
// the first push, not on the day a log changes (exit code 3 in push).
func TestUnchangedPushStillLogsIn(t *testing.T) {
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	e.makeTree(5)
	e.push()
	dead := *tg
	dead.url = "ftp://127.0.0.1:1"
	e.tg = &dead
	if s, err := e.tryPush(); !errors.Is(err, ftpfs.ErrUnreachable) || !syncer.IsConnectError(err) {
		t.Fatalf("unchanged push without a server: %+v, err = %v, want an unreachable server", s, err)
	}
	wrong := *tg
	wrong.pass = "wrong"
	e.tg = &wrong
	if s, err := e.tryPush(); !errors.Is(err, ftpfs.ErrClientLogin) || !syncer.IsConnectError(err) {
		t.Fatalf("unchanged push with a wrong password: %+v, err = %v, want a refused login", s, err)
	}
}
