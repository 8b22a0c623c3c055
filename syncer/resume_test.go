package syncer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncer-dev/syncer/store"
)

// TestResumeAfterCut: the server holds part of a file the manifest never
// recorded (an upload cut before the agent could write it down). If the
// server's bytes are a prefix of the file, only the rest is sent; if not,
// the server's file is kept as a version and the file is stored whole.
func TestResumeAfterCut(t *testing.T) {
	data := logLines(7, 200_000)
	other := logLines(8, 200_000)
	cases := []struct {
		name     string
		remote   []byte
		wantSent int64
		versions int
	}{
		{"prefix on server", data[:123_457], int64(len(data) - 123_457), 0},
		{"whole file on server", data, 0, 0},
		{"other bytes on server", other[:50_000], int64(len(data)), 1},
		{"empty file on server", nil, int64(len(data)), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := startSyncerServer(t, nil)
			e := newEnv(t, tg)
			e.write("a/big.log", data)
			if err := os.MkdirAll(filepath.Join(tg.tree, "a"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tg.tree, "a/big.log"), c.remote, 0o644); err != nil {
				t.Fatal(err)
			}
			s := e.push()
			if s.BytesSent != c.wantSent || s.FilesFailed != 0 {
				t.Fatalf("sent %d, want %d; %+v", s.BytesSent, c.wantSent, s)
			}
			got, _ := os.ReadFile(filepath.Join(tg.tree, "a/big.log"))
			if !bytes.Equal(got, data) {
				t.Fatalf("server copy has %d bytes, not the file", len(got))
			}
			vs, _ := filepath.Glob(filepath.Join(tg.tree, "a/big.log.superseded-*"))
			if len(vs) != c.versions {
				t.Errorf("versions %v, want %d", vs, c.versions)
			}
			ent, err := e.entry("a/big.log")
			if err != nil || ent.Status != store.StatusArchived || ent.Archived != int64(len(data)) {
				t.Errorf("manifest: %+v %v", ent, err)
			}
		})
	}
}

// TestManifestLost: with the state directory gone, a push re-reads the
// files locally, checks them against the server and sends nothing.
func TestManifestLost(t *testing.T) {
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	e.makeTree(12)
	e.push()
	e.state = t.TempDir()
	e.opts.StateDir = e.state
	s := e.push()
	if s.BytesSent != 0 || s.FilesFailed != 0 {
		t.Fatalf("push with a lost manifest: %+v", s)
	}
	if vs, _ := filepath.Glob(filepath.Join(tg.tree, "*", "*", "*.superseded-*")); len(vs) != 0 {
		t.Errorf("versions made: %v", vs)
	}
	if s := e.push(); s.FilesUnchanged != 12 {
		t.Errorf("manifest not rebuilt: %+v", s)
	}
}

// TestRewritePendingResume: a rewrite cut after the new version began
// resumes it; when the server size equals the old size the agent cannot
// tell and stores the version again (nothing is lost).
func TestRewritePendingResume(t *testing.T) {
	data := logLines(11, 100_000)
	cases := []struct {
		name     string
		remote   int // bytes of the new version on the server
		oldSize  int64
		wantSent int64
	}{
		{"new version begun", 40_000, 70_000, int64(len(data) - 40_000)},
		{"ambiguous size", 70_000, 70_000, int64(len(data))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := startSyncerServer(t, nil)
			e := newEnv(t, tg)
			e.write("r.log", data)
			if err := os.MkdirAll(tg.tree, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tg.tree, "r.log"), data[:c.remote], 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := store.Open(store.Dir(e.state, testAgent))
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Put([]byte("r.log"), store.Entry{Status: store.StatusRewritePending, OldSize: c.oldSize, Size: 1}, true); err != nil {
				t.Fatal(err)
			}
			m.Close()
			s := e.push()
			if s.BytesSent != c.wantSent || s.FilesRewritten != 1 {
				t.Fatalf("sent %d, want %d; %+v", s.BytesSent, c.wantSent, s)
			}
			got, _ := os.ReadFile(filepath.Join(tg.tree, "r.log"))
			if !bytes.Equal(got, data) {
				t.Fatalf("server copy has %d bytes, not the file", len(got))
			}
		})
	}
}

// TestDryRunChangesNothing: a dry run lists the work and leaves the server
// and the manifest alone.
func TestDryRunChangesNothing(t *testing.T) {
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	e.makeTree(5)
	var out bytes.Buffer
	e.opts.DryRun, e.opts.DryRunOut = true, &out
	s := e.push()
	if s.FilesNew != 5 || s.BytesSent != 0 {
		t.Fatalf("dry run: %+v", s)
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 5 {
		t.Errorf("dry run printed %d lines, want 5:\n%s", n, out.String())
	}
	if _, err := os.Stat(tg.tree); !os.IsNotExist(err) {
		t.Errorf("dry run created the server tree: %v", err)
	}
	e.opts.DryRun = false
	if s := e.push(); s.FilesNew != 5 {
		t.Errorf("after the dry run the manifest was not empty: %+v", s)
	}
}
