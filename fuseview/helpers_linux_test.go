//go:build linux

package fuseview

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
	"golang.org/x/sys/unix"
)

// requireFUSE skips the test unless it can mount: root and /dev/fuse.
func requireFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting the FUSE view needs root (CI runs these tests as root)")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("mounting the FUSE view needs /dev/fuse: %v", err)
	}
	f.Close()
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// mountView mounts a disk-backed view of root on a new directory and
// unmounts it when the test ends (retrying while the kernel says busy).
func mountView(t *testing.T, root string, opts Options) (*Mounted, string) {
	t.Helper()
	src, err := NewDiskSource(root, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	mp := t.TempDir()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	m, err := Mount(context.Background(), src, root, mp, opts)
	if err != nil {
		src.Close()
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		unmountRetrying(t, m)
		src.Close()
	})
	return m, mp
}

func unmountRetrying(t *testing.T, m *Mounted) {
	t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		if err = m.Unmount(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Last resort, so that no test leaves a mount behind.
	_ = unix.Unmount(m.Mountpoint(), unix.MNT_DETACH)
	t.Errorf("unmount %s: %v", m.Mountpoint(), err)
}

// writeFile writes content to root/rel, creating directories, and sets
// its mtime.
func writeFile(t *testing.T, root, rel string, content []byte, mtime time.Time) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// logLines makes n lines of a plausible log, some with ERROR.
func logLines(rng *rand.Rand, agent string, n int) []byte {
	var b strings.Builder
	levels := []string{"INFO", "DEBUG", "WARN", "ERROR"}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "2026-11-24T10:%02d:%02d.%03dZ %s %s request %d took %dms\n",
			i/60%60, i%60, rng.Intn(1000), levels[rng.Intn(len(levels))], agent, rng.Int63(), rng.Intn(5000))
	}
	return []byte(b.String())
}

// makeArchive builds an archive tree as the historian keeps it: agents,
// nested directories, metadata under .syncer/, a superseded version, an
// empty file, odd names, and one file larger than a FUSE read.
func makeArchive(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	mt := time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)
	files := map[string][]byte{
		"node1/app/2026-11-24.log":                              logLines(rng, "node1", 200),
		"node1/app/2026-11-23.log":                              logLines(rng, "node1", 50),
		"node1/app/2026-11-23.log.superseded-20261124T100000Z":  logLines(rng, "node1", 10),
		"node1/app/empty.log":                                   nil,
		"node1/sys/kern/deep/er/still.log":                      logLines(rng, "node1", 5),
		"node1/with space and ünïcode.log":                      logLines(rng, "node1", 3),
		"node1/.syncer/agent.json":                              []byte(`{"agent":"node1","ERROR":"not a log"}` + "\n"),
		"node1/.syncer/commits/1732442400000000000-1.json":      []byte(`{"ERROR":1}` + "\n"),
		"node2/big.log":                                         logLines(rng, "node2", 40000),
		"node2/x/y.log":                                         logLines(rng, "node2", 100),
		"node2/.syncer/agent.json":                              []byte(`{"agent":"node2"}` + "\n"),
		"node-3.example.com/var/log/messages":                   logLines(rng, "node3", 30),
		"node-3.example.com/var/log/app/2026/11/24/service.log": logLines(rng, "node3", 30),
	}
	for rel, content := range files {
		writeFile(t, root, rel, content, mt.Add(time.Duration(len(content))*time.Millisecond))
	}
	if err := os.MkdirAll(filepath.Join(root, "node2/emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// snapshot records every path under root with its type, size, mtime and
// content hash, to prove that nothing changed.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		v := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			v += " " + hex.EncodeToString(sum[:])
		}
		snap[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// filesUnder lists the regular files under dir (relative, sorted), leaving
// out .syncer directories at the agent level when skipMeta is set.
func filesUnder(t *testing.T, dir string, skipMeta bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if skipMeta && d.IsDir() && d.Name() == archive.MetaDir && strings.Count(rel, string(filepath.Separator)) == 1 {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// eventually polls cond every 10ms until it holds or the deadline passes:
// a liveness check with a bound, not a timing measurement.
func eventually(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isErrno reports whether err is (or wraps) the errno want.
func isErrno(err error, want unix.Errno) bool {
	var e unix.Errno
	return errors.As(err, &e) && e == want
}
