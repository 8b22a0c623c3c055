package historian

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/internal/statelock"
)

const testPassword = "pw-node1-secret"

// running is a Historian that Run serves in the background.
type running struct {
	h      *Historian
	cancel context.CancelFunc
	done   chan error
}

// testConfig is a historian on loopback ports chosen by the kernel over
// an archive and a state directory under base, with an agent account node1.
func testConfig(t *testing.T, base string) Config {
	t.Helper()
	cfg := Config{Archive: LocalArchive(filepath.Join(base, "archive")), State: filepath.Join(base, "state"),
		FTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", StopTimeout: 10 * time.Second}
	users, err := accounts.Open(filepath.Join(cfg.State, "users.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := users.Lookup("node1"); !ok {
		if err := users.Add(accounts.User{Name: "node1"}, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// start runs cfg until the test stops it (or ends).
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{h: h, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	select {
	case <-h.Ready():
	case err := <-r.done:
		r.done <- err
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("historian not ready within 30s")
	}
	return r
}

// stop cancels Run and wants it to return nil.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("historian did not stop within 30s")
	}
}

// upload stores data as /node1/<rel> over FTP.
func (r *running) upload(t *testing.T, rel, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ftpfs.Dial(ctx, ftpfs.ClientConfig{Server: "ftp://" + r.h.FTPAddr().String(), User: "node1", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := "/node1/" + rel
	if err := c.MkdirAll(ctx, filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(ctx, p, strings.NewReader(data), 0); err != nil {
		t.Fatal(err)
	}
}

// size is the size of node1's rel in the web viewer's API; it waits a
// moment for the index to follow the upload events.
func (r *running) size(t *testing.T, rel string, want int64) int64 {
	t.Helper()
	var f struct {
		Size int64 `json:"size"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequest("GET", r.h.HTTPURL()+"/api/v1/files/node1/"+rel, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("node1", testPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
		}
		if f.Size == want || time.Now().After(deadline) {
			return f.Size
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunEndToEnd: a historian in-process takes uploads over FTP and shows
// them in its web viewer; a second one on the same state directory is
// refused while the first runs; after a stop, a deleted index is rebuilt
// from the archive at the next start.
func TestRunEndToEnd(t *testing.T) {
	base := t.TempDir()
	cfg := testConfig(t, base)
	files := map[string]string{"app/a.log": strings.Repeat("alpha line\n", 5000), "b.log": "bravo\n"}
	r := start(t, cfg)
	for rel, data := range files {
		r.upload(t, rel, data)
	}
	for rel, data := range files {
		if got := r.size(t, rel, int64(len(data))); got != int64(len(data)) {
			t.Errorf("%s: size %d, want %d", rel, got, len(data))
		}
	}

	second := cfg
	second.FTPAddr, second.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	h2, err := New(second)
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.Run(context.Background()); !errors.Is(err, statelock.ErrHeld) {
		t.Errorf("second historian on one state directory: %v, want statelock.ErrHeld", err)
	}

	r.stop(t)
	if err := os.RemoveAll(indexDir(cfg.State)); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg)
	for rel, data := range files {
		if got := r.size(t, rel, int64(len(data))); got != int64(len(data)) {
			t.Errorf("after rebuilding the index: %s: size %d, want %d", rel, got, len(data))
		}
	}
	r.stop(t)
}

// TestRunConfigErrors: what cannot work is refused as a *ConfigError
// naming the field, and nothing that started is left running (the state
// directory is unlocked again).
func TestRunConfigErrors(t *testing.T) {
	base := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"bad http address", func(c *Config) { c.HTTPAddr = "127.0.0.1:99999" }, "HTTPAddr"},
		{"ftp port taken", func(c *Config) { c.FTPAddr = taken.Addr().String() }, "FTPAddr"},
		{"bad ftp setting", func(c *Config) { c.FTPAddr = "127.0.0.1:99999" }, ""},
		{"http port taken", func(c *Config) { c.HTTPAddr = taken.Addr().String() }, "HTTPAddr"},
		{"no state", func(c *Config) { c.State = "" }, "State"},
		{"no archive", func(c *Config) { c.Archive = nil }, "Archive"},
		{"world-writable files", func(c *Config) { c.ArchiveFileMode = 0o646 }, "ArchiveFileMode"},
		{"directories the server cannot enter", func(c *Config) { c.ArchiveDirMode = 0o640 }, "ArchiveDirMode"},
		{"a wildcard certificate name", func(c *Config) { c.TLSSelfSigned, c.TLSHosts = true, []string{"*.example.org"} }, "TLSHosts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, base)
			tc.edit(&cfg)
			h, err := New(cfg)
			if err == nil {
				err = h.Run(context.Background())
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Errorf("err %v (%T), want a ConfigError naming %s", err, err, tc.field)
			}
		})
	}
	// Every failed start let go of the lock.
	r := start(t, testConfig(t, base))
	r.stop(t)
}

// TestRunStopsWhenAComponentFails: a component failing while the
// historian runs (the index database's fatal error, the web server's
// Serve) ends Run with that error after the ordered stop, which lets go
// of the state directory: a new historian starts on it.
func TestRunStopsWhenAComponentFails(t *testing.T) {
	base := t.TempDir()
	cfg := testConfig(t, base)
	r := start(t, cfg)
	boom := errors.New("index database failed: MANIFEST sync failed")
	r.h.fail(boom)
	select {
	case err := <-r.done:
		r.done <- err
		if !errors.Is(err, boom) {
			t.Errorf("Run = %v, want %v", err, boom)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("historian still running after a component failed")
	}
	start(t, cfg).stop(t)
}

// TestArchiveDirectoryMode: an archive directory the historian creates
// gets the archive's directory mode exactly (0750 by default, not 0755
// less the umask); one that exists keeps the mode the operator gave it.
func TestArchiveDirectoryMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits on Windows")
	}
	for _, tc := range []struct {
		name     string
		existing os.FileMode // 0: the historian creates it
		mode     ftpfs.Mode
		want     os.FileMode
	}{
		{"created, default", 0, 0, 0o750},
		{"created, configured", 0, 0o770, 0o770},
		{"existing", 0o755, 0, 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			cfg := testConfig(t, base)
			cfg.ArchiveDirMode = tc.mode
			if tc.existing != 0 {
				if err := os.Mkdir(cfg.Archive.Dir(), tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			r := start(t, cfg)
			r.stop(t)
			fi, err := os.Stat(cfg.Archive.Dir())
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.want {
				t.Errorf("archive directory %04o, want %04o", fi.Mode().Perm(), tc.want)
			}
		})
	}
}
