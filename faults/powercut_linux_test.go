package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/lazyfs"
	"github.com/syncer-dev/syncer/internal/testkit"
	"github.com/syncer-dev/syncer/store"
)

// TestHistorianPowerCut cuts the power under `syncer serve` while agents
// push many files at once: the historian's archive and state live on
// lazyfs, which keeps only what was fsynced; at a random moment serve is
// killed with SIGKILL and everything the disk had not been told to keep is
// dropped. serve restarts on what survived. After every cut, each byte an
// agent's manifest holds as confirmed (it advances only on a 226) must be
// in the archive, as the source has it; at the end every file is archived
// byte-identical and the index shows it verified.
func TestHistorianPowerCut(t *testing.T) {
	testkit.RequireRoot(t, "mounts a FUSE file system (internal/lazyfs)")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testkit.Unavailable(t, "no /dev/fuse: "+err.Error())
	}
	cuts, agents, smallFiles := 3, 3, 100
	if full() {
		cuts, agents, smallFiles = 15, 6, 400
	}
	base := t.TempDir()
	rng := rand.New(rand.NewPCG(18, 18))
	names := make([]string, agents)
	var total int64
	for i := range names {
		names[i] = fmt.Sprintf("node%d", i+1)
		logs := filepath.Join(base, "logs-"+names[i])
		writeLogFile(t, filepath.Join(logs, "big.log"), 3<<20, rng)
		total += 3 << 20
		for j := range smallFiles {
			n := 100 + rng.IntN(20000)
			writeLogFile(t, filepath.Join(logs, fmt.Sprintf("d%d/%03d.log", j%7, j)), n, rng)
			fi, err := os.Stat(filepath.Join(logs, fmt.Sprintf("d%d/%03d.log", j%7, j)))
			if err != nil {
				t.Fatal(err)
			}
			total += fi.Size()
		}
	}

	mnt := filepath.Join(base, "mnt")
	disk := filepath.Join(base, "disk-0")
	for _, d := range []string{mnt, disk} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lz := mountLazy(t, mnt, disk, filepath.Join(base, "store-0"))
	h := newHistorian(t, mnt, names...)
	// Installed and started once, then everything made durable: the cuts
	// are about uploads, not about an install that never reached the disk.
	h.start()
	h.stop()
	syncTree(t, mnt)

	var sent int64
	var confirmed int64
	// held: the bytes of each file (archive path) confirmed at the last
	// cut; the agents must not send any of them again.
	var held map[string]int64
	for i := range cuts {
		h.start()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var wg sync.WaitGroup
		for _, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pushOnce(ctx, t, h, base, name)
			}()
		}
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		h.kill9()
		syncs := lz.Syncs()
		lz.Crash()
		sent += lz.Written("logs")
		checkNotResent(t, lz, held)
		wg.Wait() // the pushes fail by themselves: the server is gone
		cancel()
		if err := lz.Unmount(); err != nil {
			t.Fatal(err)
		}
		next := filepath.Join(base, fmt.Sprintf("disk-%d", i+1))
		if err := os.Mkdir(next, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := lz.Survivors(next); err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		held = map[string]int64{}
		for _, name := range names {
			n += checkConfirmed(t, filepath.Join(base, "state-"+name), name,
				filepath.Join(base, "logs-"+name), filepath.Join(next, "archive", name), held)
		}
		confirmed = n
		t.Logf("cut %d: %d fsyncs kept; %d bytes confirmed to the agents, all of them survived", i+1, syncs, n)
		if t.Failed() {
			return
		}
		lz = mountLazy(t, mnt, next, filepath.Join(base, fmt.Sprintf("store-%d", i+1)))
	}

	// Power back for good: the agents push until they are done.
	h.start()
	for try := 1; ; try++ {
		ok := true
		for _, name := range names {
			code, out := pushOnce(context.Background(), t, h, base, name)
			if code != 0 {
				ok = false
				t.Logf("%s: push exit %d: %s", name, code, out)
			}
		}
		if ok {
			break
		}
		if try == 3 {
			t.Fatal("the agents did not complete their pushes after the last cut")
		}
	}
	sent += lz.Written("logs")
	checkNotResent(t, lz, held)
	var files int
	var lost int64
	for _, name := range names {
		f, l := compareTree(t, filepath.Join(base, "logs-"+name), filepath.Join(h.root, name))
		files += f
		lost += l
		checkIndex(t, h, name, filepath.Join(base, "logs-"+name))
	}
	// Bytes written beyond the source's size were in flight at a cut,
	// never confirmed: the agent sends them again, as it must.
	t.Logf("%d bytes of logs, %d written into the archive in all: %d sent again (unconfirmed at a cut); %d confirmed before the last cut",
		total, sent, sent-total, confirmed)
	report(t, fmt.Sprintf("power cut under `syncer serve` (lazyfs: unsynced data and names dropped) %d times while %d agents push", cuts, agents),
		fmt.Sprintf("every byte confirmed by a 226 survived each cut and none was sent again (no write below a confirmed offset); the agents then completed; %d files identical by SHA-256, index verified; %d bytes sent again, all unconfirmed at a cut (`TestHistorianPowerCut`)", files, sent-total), lost)
	h.stop()
}

// mountLazy mounts lazyfs at mnt over backing and unmounts it when the
// test ends, unless the test did.
func mountLazy(t *testing.T, mnt, backing, storeDir string) *lazyfs.FS {
	t.Helper()
	if err := os.Mkdir(storeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	lz, err := lazyfs.Mount(mnt, backing, storeDir)
	if err != nil {
		t.Fatal(err)
	}
	// The bytes of logs the historian writes into the archive (not the
	// agents' own records, rewritten by every push).
	lz.Count(func(p string) string {
		if strings.HasPrefix(p, "archive/") && strings.HasSuffix(p, ".log") && !strings.Contains(p, "/.syncer/") {
			return "logs"
		}
		return ""
	})
	t.Cleanup(func() { _ = lz.Unmount() })
	return lz
}

// syncTree fsyncs every file and directory under root.
func syncTree(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || (!d.IsDir() && !d.Type().IsRegular()) {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pushOnce runs one `syncer push --parallel 4` of agent name and returns
// its exit code and its stderr.
func pushOnce(ctx context.Context, t *testing.T, h *historian, base, name string) (int, string) {
	args := append([]string{"push", "--parallel", "4"},
		agentArgs(name, h.ftp, filepath.Join(base, "logs-"+name), filepath.Join(base, "state-"+name))...)
	cmd := exec.CommandContext(ctx, testkit.SyncerBinary(t), args...)
	cmd.Env = append(os.Environ(), "SYNCER_PASSWORD="+h.passwords[name])
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), errb.String()
	} else if err != nil {
		return -1, err.Error()
	}
	return 0, errb.String()
}

// checkConfirmed wants every byte the agent's manifest holds as archived
// to be in the archive as the source has it, and returns how many there
// are.
func checkConfirmed(t *testing.T, state, name, src, archived string, held map[string]int64) int64 {
	t.Helper()
	m, err := store.Open(store.Dir(state, name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatalf("%s: manifest: %v", name, err)
	}
	defer m.Close()
	it, err := m.Files()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var n int64
	for ; it.Valid(); it.Next() {
		e, err := it.Entry()
		if err != nil {
			t.Fatal(err)
		}
		rel := string(it.Path())
		if e.Archived == 0 || !strings.HasSuffix(rel, ".log") {
			continue
		}
		n += e.Archived
		held["archive/"+name+"/"+rel] = e.Archived
		want := make([]byte, e.Archived)
		if err := readPrefix(filepath.Join(src, rel), want); err != nil {
			t.Fatalf("%s: source %s: %v", name, rel, err)
		}
		got := make([]byte, e.Archived)
		if err := readPrefix(filepath.Join(archived, rel), got); err != nil {
			t.Errorf("%s/%s: %d bytes confirmed to the agent, lost in the cut: %v", name, rel, e.Archived, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s: the %d bytes confirmed to the agent differ after the cut", name, rel, e.Archived)
		}
	}
	return n
}

// checkNotResent wants no write below the bytes held confirmed for each
// file since the last cut: the agents resume after what the server
// confirmed, and never send a confirmed byte again.
func checkNotResent(t *testing.T, lz *lazyfs.FS, held map[string]int64) {
	t.Helper()
	for p, n := range held {
		if off, ok := lz.FirstWrite(p); ok && off < n {
			t.Errorf("%s: written again from offset %d after the cut, but %d bytes were confirmed", p, off, n)
		}
	}
}

// readPrefix fills b from the start of the file at p.
func readPrefix(p string, b []byte) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.ReadFull(f, b)
	return err
}
