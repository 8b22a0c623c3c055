package ftpfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
)

// TestServerSetModTime: an agent account (w and a, no T) may set the time
// of the files of its own tree (its logs keep their node's mtime), not of
// a superseded version, a directory or another agent's file; an account
// without w, a or T may not; an admin (T) may. The index hears of it.
func TestServerSetModTime(t *testing.T) {
	var (
		mu      sync.Mutex
		touched []string
	)
	s := ftptest.NewServer(t, t.TempDir(),
		ftptest.WithAccount(accounts.User{Name: "node1"}, "pw-node1-0123"),
		ftptest.WithAccount(accounts.User{Name: "node2", Perm: "elr"}, "pw-node2-0123"),
		ftptest.WithAccount(accounts.User{Name: "ops", Admin: true}, "pw-ops-012345"),
		ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) {
			prev := cfg.OnUpload
			cfg.OnUpload = func(ev activity.UploadEvent) {
				if ev.Kind == activity.UploadTouched {
					mu.Lock()
					touched = append(touched, ev.Path)
					mu.Unlock()
				}
				if prev != nil {
					prev(ev)
				}
			}
		}))
	for _, f := range []string{"node1/a.log", "node1/a.log.superseded-20260101T000000Z", "node2/b.log"} {
		p := filepath.Join(s.Root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	when := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	login := func(user, pass string) *ftpfs.Client {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := ftpfs.Dial(ctx, ftpfs.ClientConfig{Server: s.URL, User: user, Password: pass})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ctx := context.Background()
	node1, node2, ops := login("node1", "pw-node1-0123"), login("node2", "pw-node2-0123"), login("ops", "pw-ops-012345")
	for _, c := range []struct {
		name string
		c    *ftpfs.Client
		path string
		ok   bool
	}{
		{"agent, own log", node1, "/node1/a.log", true},
		{"agent, own version", node1, "/node1/a.log.superseded-20260101T000000Z", false},
		{"agent, own directory", node1, "/node1", false},
		{"agent, another agent's log", node1, "/node2/b.log", false},
		{"read-only account, own log", node2, "/node2/b.log", false},
		{"admin", ops, "/node2/b.log", true},
	} {
		err := c.c.SetModTime(ctx, c.path, when)
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, ftpfs.ErrPermission)) {
			t.Errorf("%s: SetModTime(%s) = %v, want ok=%v or a permission error", c.name, c.path, err, c.ok)
			continue
		}
		fi, err := os.Stat(filepath.Join(s.Root, c.path))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.ModTime().Equal(when); got != c.ok {
			t.Errorf("%s: mtime %s, changed=%v, want %v", c.name, fi.ModTime().UTC(), got, c.ok)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(touched) != 2 || touched[0] != "/node1/a.log" || touched[1] != "/node2/b.log" {
		t.Errorf("touched events %v, want the two files set", touched)
	}
}
