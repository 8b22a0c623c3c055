package syncer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncer-dev/syncer/store"
)

// TestRotationByRename: app.log -> app.log.1 and a new app.log. The rotated
// file's archived bytes are not sent again, the tail written just before
// the rename is, and the server ends with the complete old log (as the
// superseded version of app.log) and the new app.log.
func TestRotationByRename(t *testing.T) {
	for _, newFile := range []bool{true, false} {
		name := "rename and create"
		if !newFile {
			name = "rename only"
		}
		t.Run(name, func(t *testing.T) {
			tg := startSyncerServer(t, nil)
			e := newEnv(t, tg)
			e.opts.Include = []string{"**/*.log", "**/*.log.[0-9]"}
			first := logLines(1, 50_000)
			e.write("svc/app.log", first)
			e.write("svc/other.log", logLines(2, 1000))
			if s := e.push(); s.FilesNew != 2 {
				t.Fatalf("initial push: %+v", s)
			}
			tail := logLines(3, 1234)
			e.appendTo("svc/app.log", tail)
			if err := os.Rename(filepath.Join(e.dir, "svc/app.log"), filepath.Join(e.dir, "svc/app.log.1")); err != nil {
				t.Fatal(err)
			}
			fresh := logLines(4, 300)
			if newFile {
				e.write("svc/app.log", fresh)
			}
			s := e.push()
			wantSent := int64(len(tail))
			if newFile {
				wantSent += int64(len(fresh))
			}
			if s.BytesSent != wantSent || s.FilesRotated != 1 || s.FilesFailed != 0 {
				t.Fatalf("rotation push: sent %d (want %d = tail + new file), rotated %d, summary %+v", s.BytesSent, wantSent, s.FilesRotated, s)
			}
			full := append(append([]byte{}, first...), tail...)
			if _, err := os.Stat(filepath.Join(tg.tree, "svc/app.log.1")); !os.IsNotExist(err) {
				t.Errorf("app.log.1 was uploaded under its own name: %v", err)
			}
			if newFile {
				got, _ := os.ReadFile(filepath.Join(tg.tree, "svc/app.log"))
				if !bytes.Equal(got, fresh) {
					t.Errorf("server app.log is not the new file (%d bytes)", len(got))
				}
				vs, _ := filepath.Glob(filepath.Join(tg.tree, "svc/app.log.superseded-*"))
				if len(vs) != 1 {
					t.Fatalf("superseded versions of app.log: %v, want 1", vs)
				}
				old, _ := os.ReadFile(vs[0])
				if !bytes.Equal(old, full) {
					t.Errorf("superseded app.log has %d bytes, want the rotated log with its tail (%d)", len(old), len(full))
				}
			} else {
				got, _ := os.ReadFile(filepath.Join(tg.tree, "svc/app.log"))
				if !bytes.Equal(got, full) {
					t.Errorf("server app.log has %d bytes, want the rotated log with its tail (%d)", len(got), len(full))
				}
			}
			ent, err := e.entry("svc/app.log.1")
			if err != nil || ent.Status != store.StatusRotated || string(ent.Remote) != "svc/app.log" || ent.Archived != int64(len(full)) {
				t.Errorf("manifest of app.log.1: %+v %v", ent, err)
			}
			// Nothing more to send; a later rotation step (app.log.1 ->
			// app.log.2) moves the entry without sending either.
			if s := e.push(); s.BytesSent != 0 || s.FilesUnchanged != int64(2+btoi(newFile)) {
				t.Errorf("push after rotation: %+v", s)
			}
			if err := os.Rename(filepath.Join(e.dir, "svc/app.log.1"), filepath.Join(e.dir, "svc/app.log.2")); err != nil {
				t.Fatal(err)
			}
			if s := e.push(); s.BytesSent != 0 || s.FilesRotated != 1 {
				t.Errorf("second rotation step: %+v", s)
			}
			if ent, err := e.entry("svc/app.log.2"); err != nil || string(ent.Remote) != "svc/app.log" {
				t.Errorf("manifest of app.log.2: %+v %v", ent, err)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRotationByCopy: a new file that begins with the archived bytes of a
// log is recognised by its head fingerprint. When the log no longer
// continues them at its own path (copytruncate: copied, then truncated in
// place; or copied elsewhere and deleted), the copy continues the archived
// log: only its tail is sent, and the truncated log becomes a new version
// afterwards. A copy of a log that still grows in place is a new file.
func TestRotationByCopy(t *testing.T) {
	cases := []struct {
		name string
		// after copying app.log to the copy's path
		then        func(e *agentEnv, fresh []byte)
		rotated     bool // the copy continues the archived app.log
		originalNow bool // app.log still exists
	}{
		{"copytruncate", func(e *agentEnv, fresh []byte) {
			if err := os.Truncate(filepath.Join(e.dir, "svc/app.log"), 0); err != nil {
				t.Fatal(err)
			}
			e.appendTo("svc/app.log", fresh)
		}, true, true},
		{"copy and delete", func(e *agentEnv, _ []byte) {
			if err := os.Remove(filepath.Join(e.dir, "svc/app.log")); err != nil {
				t.Fatal(err)
			}
		}, true, false},
		{"copy of a growing log", func(e *agentEnv, fresh []byte) {
			e.appendTo("svc/app.log", fresh)
		}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := startSyncerServer(t, nil)
			e := newEnv(t, tg)
			e.opts.Include = []string{"**/*.log", "**/*.log.[0-9]"}
			first := logLines(1, 30_000)
			e.write("svc/app.log", first)
			if s := e.push(); s.FilesNew != 1 {
				t.Fatalf("initial push: %+v", s)
			}
			tail := logLines(3, 777)
			e.appendTo("svc/app.log", tail)
			full := append(append([]byte{}, first...), tail...)
			// The copy sorts before app.log, so the walk meets it first.
			e.write("svc/a-copy.log.1", full)
			fresh := logLines(4, 300)
			tc.then(e, fresh)
			s := e.push()
			if s.FilesFailed != 0 {
				t.Fatalf("push: %+v", s)
			}
			copyEntry, err := e.entry("svc/a-copy.log.1")
			if err != nil {
				t.Fatal(err)
			}
			vs, _ := filepath.Glob(filepath.Join(tg.tree, "svc/app.log.superseded-*"))
			cur, _ := os.ReadFile(filepath.Join(tg.tree, "svc/app.log"))
			if tc.rotated {
				wantSent := int64(len(tail))
				if tc.originalNow {
					wantSent += int64(len(fresh))
				}
				if s.FilesRotated != 1 || s.BytesSent != wantSent {
					t.Errorf("sent %d bytes (want %d: the tail and the new app.log), rotated %d", s.BytesSent, wantSent, s.FilesRotated)
				}
				if _, err := os.Stat(filepath.Join(tg.tree, "svc/a-copy.log.1")); !os.IsNotExist(err) {
					t.Errorf("the copy was uploaded under its own name: %v", err)
				}
				if copyEntry.Status != store.StatusRotated || string(copyEntry.Remote) != "svc/app.log" {
					t.Errorf("manifest of the copy: %+v", copyEntry)
				}
				if tc.originalNow {
					old := []byte(nil)
					if len(vs) == 1 {
						old, _ = os.ReadFile(vs[0])
					}
					if len(vs) != 1 || !bytes.Equal(old, full) || !bytes.Equal(cur, fresh) {
						t.Errorf("server: %d superseded versions (want 1 holding the copied log, %d bytes, got %d), app.log %d bytes (want the new %d)", len(vs), len(full), len(old), len(cur), len(fresh))
					}
				} else if len(vs) != 0 || !bytes.Equal(cur, full) {
					t.Errorf("server app.log %d bytes, want the copied log (%d), and no versions (%v)", len(cur), len(full), vs)
				}
				if _, err := e.entry("svc/app.log"); tc.originalNow != (err == nil) {
					t.Errorf("entry of app.log: %v (app.log exists: %v)", err, tc.originalNow)
				}
			} else {
				if s.FilesRotated != 0 || s.FilesNew != 1 || s.FilesAppended != 1 {
					t.Errorf("a copy of a growing log must be a new file: %+v", s)
				}
				got, _ := os.ReadFile(filepath.Join(tg.tree, "svc/a-copy.log.1"))
				want := append(append([]byte{}, full...), fresh...)
				if !bytes.Equal(got, full) || !bytes.Equal(cur, want) || len(vs) != 0 {
					t.Errorf("server: copy %d bytes (want %d), app.log %d (want %d), versions %v", len(got), len(full), len(cur), len(want), vs)
				}
			}
			if s := e.push(); s.BytesSent != 0 || s.FilesFailed != 0 {
				t.Errorf("second push sent %d bytes: %+v", s.BytesSent, s)
			}
		})
	}
}
