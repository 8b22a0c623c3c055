//go:build linux

package fuseview

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
	"golang.org/x/sys/unix"
)

// TestViewMatchesArchive: diff -r, grep -r and find on the mount agree
// with the archive minus .syncer/, and sizes and mtimes are exact.
func TestViewMatchesArchive(t *testing.T) {
	requireFUSE(t)
	for _, pt := range []struct {
		name string
		off  bool
	}{{"passthrough", false}, {"daemon-reads", true}} {
		t.Run(pt.name, func(t *testing.T) {
			root := makeArchive(t)
			m, mp := mountView(t, root, Options{NoPassthrough: pt.off})

			if _, err := exec.LookPath("diff"); err != nil {
				t.Skip("diff not installed")
			}
			out, err := exec.Command("diff", "-r", "-x", archive.MetaDir, root, mp).CombinedOutput()
			if err != nil {
				t.Fatalf("diff -r archive view: %v\n%s", err, out)
			}

			want := filesUnder(t, root, true)
			if got := filesUnder(t, mp, false); !reflect.DeepEqual(got, want) {
				t.Fatalf("files in the view:\n%v\nwant:\n%v", got, want)
			}
			findOut, err := exec.Command("find", mp, "-type", "f").Output()
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			for _, l := range strings.Split(strings.TrimSpace(string(findOut)), "\n") {
				found = append(found, strings.TrimPrefix(l, mp+"/"))
			}
			sort.Strings(found)
			if !reflect.DeepEqual(found, want) {
				t.Fatalf("find -type f:\n%v\nwant:\n%v", found, want)
			}

			grep := func(dir string) []string {
				out, err := exec.Command("grep", "-r", "ERROR", dir).Output()
				if err != nil {
					t.Fatalf("grep -r %s: %v", dir, err)
				}
				var lines []string
				for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
					l = strings.TrimPrefix(l, dir+"/")
					if strings.Contains(l, "/"+archive.MetaDir+"/") {
						continue
					}
					lines = append(lines, l)
				}
				sort.Strings(lines)
				return lines
			}
			wantLines := grep(root)
			if len(wantLines) < 100 {
				t.Fatalf("the test archive has too few ERROR lines (%d) to prove anything", len(wantLines))
			}
			if got := grep(mp); !reflect.DeepEqual(got, wantLines) {
				t.Fatalf("grep -r through the view found %d lines, the archive %d", len(got), len(wantLines))
			}

			for _, rel := range want {
				a, err := os.Stat(filepath.Join(root, rel))
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.Stat(filepath.Join(mp, rel))
				if err != nil {
					t.Fatal(err)
				}
				if a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()) {
					t.Errorf("%s: view size %d mtime %v, archive %d %v", rel, b.Size(), b.ModTime(), a.Size(), a.ModTime())
				}
			}
			for _, p := range []string{"node1/.syncer", "node1/.syncer/agent.json", "node2/.syncer", ".syncer"} {
				if _, err := os.Stat(filepath.Join(mp, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("stat %s in the view: %v, want not exist (hidden)", p, err)
				}
			}

			st := m.Stats()
			t.Logf("passthrough %v, %+v", m.Passthrough(), st)
			if st.Opens == 0 {
				t.Fatal("no file was opened through the view")
			}
			if pt.off && st.DaemonReads == 0 {
				t.Error("reads were not served by the daemon with NoPassthrough")
			}
			if !pt.off && m.Passthrough() && st.DaemonReads != 0 {
				t.Errorf("passthrough is on but %d reads went through the daemon", st.DaemonReads)
			}
		})
	}
}

// TestMountIsReadOnlyInKernel: the mount carries ro,nosuid,nodev.
func TestMountIsReadOnlyInKernel(t *testing.T) {
	requireFUSE(t)
	root := makeArchive(t)
	_, mp := mountView(t, root, Options{})
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		bit  int64
	}{{"ro", unix.ST_RDONLY}, {"nosuid", unix.ST_NOSUID}, {"nodev", unix.ST_NODEV}} {
		if st.Flags&f.bit == 0 {
			t.Errorf("mount flags %#x lack %s", st.Flags, f.name)
		}
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(" "+mp+" ro,")) {
		t.Errorf("mountinfo has no read-only entry for %s", mp)
	}
}

// TestWritesAreRefused: every kind of write through the view gets EROFS
// and the archive does not change.
func TestWritesAreRefused(t *testing.T) {
	requireFUSE(t)
	root := makeArchive(t)
	_, mp := mountView(t, root, Options{})
	before := snapshot(t, root)
	file := filepath.Join(mp, "node1/app/2026-11-24.log")
	dir := filepath.Join(mp, "node1/app")
	openWith := func(flags int) func() error {
		return func() error {
			f, err := os.OpenFile(file, flags, 0o644)
			if err == nil {
				f.Close()
			}
			return err
		}
	}
	mtime := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		op   func() error
	}{
		{"create", func() error { return os.WriteFile(filepath.Join(dir, "new.log"), []byte("x"), 0o644) }},
		{"create in root", func() error { return os.WriteFile(filepath.Join(mp, "new"), []byte("x"), 0o644) }},
		{"open O_WRONLY", openWith(os.O_WRONLY)},
		{"open O_RDWR", openWith(os.O_RDWR)},
		{"open O_APPEND", openWith(os.O_WRONLY | os.O_APPEND)},
		{"open O_TRUNC", openWith(os.O_RDONLY | os.O_TRUNC)},
		{"truncate", func() error { return os.Truncate(file, 0) }},
		{"unlink", func() error { return os.Remove(file) }},
		{"rmdir", func() error { return unix.Rmdir(filepath.Join(mp, "node2/emptydir")) }},
		{"mkdir", func() error { return os.Mkdir(filepath.Join(dir, "sub"), 0o755) }},
		{"mkdir agent", func() error { return os.Mkdir(filepath.Join(mp, "node9"), 0o755) }},
		{"rename", func() error { return os.Rename(file, file+".old") }},
		{"rename dir", func() error { return os.Rename(dir, dir+"2") }},
		{"chmod", func() error { return os.Chmod(file, 0o777) }},
		{"chown", func() error { return os.Chown(file, 1, 1) }},
		{"utimes", func() error { return os.Chtimes(file, mtime, mtime) }},
		{"symlink", func() error { return os.Symlink("/etc/passwd", filepath.Join(dir, "l")) }},
		{"link", func() error { return os.Link(file, filepath.Join(dir, "hard")) }},
		{"mknod fifo", func() error { return unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644) }},
		{"setxattr", func() error { return unix.Setxattr(file, "user.x", []byte("y"), 0) }},
		{"removexattr", func() error { return unix.Removexattr(file, "user.x") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.op(); !isErrno(err, unix.EROFS) {
				t.Errorf("got %v, want EROFS", err)
			}
		})
	}
	// A file opened for reading cannot be written either.
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Error("write on a read-only open file succeeded")
	}
	f.Close()
	if after := snapshot(t, root); !reflect.DeepEqual(after, before) {
		t.Errorf("the archive changed under a read-only view")
	}
}

// appendTo appends data to the archived file p, as an upload resuming
// from REST does.
func appendTo(t *testing.T, p string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestChangesShowWithinASecond: a new file, a new agent, an append and a
// superseded file show in the view within a second. The kernel is told to
// trust its caches for a minute here, so only the change notifications
// can make them show: this tests them, not the timeouts.
func TestChangesShowWithinASecond(t *testing.T) {
	requireFUSE(t)
	for _, pt := range []struct {
		name string
		off  bool
	}{{"passthrough", false}, {"daemon-reads", true}} {
		t.Run(pt.name, func(t *testing.T) {
			root := makeArchive(t)
			_, mp := mountView(t, root, Options{
				EntryTimeout: time.Minute, AttrTimeout: time.Minute, NegativeTimeout: time.Minute,
				NoPassthrough: pt.off,
			})
			logPath := "node1/app/2026-11-24.log"
			old, err := os.ReadFile(filepath.Join(mp, logPath))
			if err != nil {
				t.Fatal(err)
			}
			// Fill the kernel's caches: listings, attributes, a negative entry.
			for _, d := range []string{"", "node1", "node1/app"} {
				if _, err := os.ReadDir(filepath.Join(mp, d)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(filepath.Join(mp, "node1/app/new.log")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("new.log before it exists: %v", err)
			}
			// A reader that holds the file open, as less and tail -f do.
			held, err := os.Open(filepath.Join(mp, logPath))
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			if _, err := held.Seek(0, 2); err != nil {
				t.Fatal(err)
			}

			added := []byte("2026-11-24T11:00:00.000Z ERROR node1 appended while mounted\n")
			appendTo(t, filepath.Join(root, logPath), added)
			writeFile(t, root, "node1/app/new.log", []byte("brand new\n"), time.Now())
			writeFile(t, root, "node7/first.log", []byte("a new agent\n"), time.Now())

			want := append(append([]byte{}, old...), added...)
			eventually(t, time.Second, "appended bytes through a new open", func() error {
				got, err := os.ReadFile(filepath.Join(mp, logPath))
				if err != nil || !bytes.Equal(got, want) {
					return errors.New("old content")
				}
				return nil
			})
			eventually(t, time.Second, "new size in stat", func() error {
				fi, err := os.Stat(filepath.Join(mp, logPath))
				if err != nil || fi.Size() != int64(len(want)) {
					return errors.New("old size")
				}
				return nil
			})
			eventually(t, time.Second, "the reader that held the file open sees the new bytes", func() error {
				fi, err := held.Stat()
				if err != nil || fi.Size() != int64(len(want)) {
					return errors.New("fstat shows the old size")
				}
				buf := make([]byte, len(added)+10)
				n, _ := held.Read(buf)
				if !bytes.Equal(buf[:n], added) {
					return errors.New("read did not return the appended bytes")
				}
				return nil
			})
			eventually(t, time.Second, "new file in the listing", func() error {
				ents, err := os.ReadDir(filepath.Join(mp, "node1/app"))
				if err != nil {
					return err
				}
				for _, e := range ents {
					if e.Name() == "new.log" {
						return nil
					}
				}
				return errors.New("not listed")
			})
			eventually(t, time.Second, "new file by name (negative entry dropped)", func() error {
				got, err := os.ReadFile(filepath.Join(mp, "node1/app/new.log"))
				if err != nil || string(got) != "brand new\n" {
					return errors.New("not there yet")
				}
				return nil
			})
			eventually(t, time.Second, "new agent", func() error {
				got, err := os.ReadFile(filepath.Join(mp, "node7/first.log"))
				if err != nil || string(got) != "a new agent\n" {
					return errors.New("not there yet")
				}
				return nil
			})

			// A rewrite on the node: the historian keeps the old version under
			// a new name and writes the new file. A reader of the old one keeps
			// reading the old bytes; a new open gets the new file.
			oldVer := filepath.Join(root, logPath+".superseded-20261124T110000Z")
			if err := os.Rename(filepath.Join(root, logPath), oldVer); err != nil {
				t.Fatal(err)
			}
			writeFile(t, root, logPath, []byte("rewritten\n"), time.Now())
			eventually(t, time.Second, "superseded file replaced by the new version", func() error {
				got, err := os.ReadFile(filepath.Join(mp, logPath))
				if err != nil || string(got) != "rewritten\n" {
					return errors.New("still the old version")
				}
				if got, err := os.ReadFile(filepath.Join(mp, logPath+".superseded-20261124T110000Z")); err != nil || !bytes.Equal(got, want) {
					return errors.New("old version not shown")
				}
				return nil
			})
			if _, err := held.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(held); err != nil || !bytes.Equal(got, want) {
				t.Errorf("the reader of the superseded file read %d bytes (%v), want its %d", len(got), err, len(want))
			}
		})
	}
}

// TestTailFollowsGrowingFile: tail -f through the view prints lines
// appended to the archived file while it runs.
func TestTailFollowsGrowingFile(t *testing.T) {
	requireFUSE(t)
	if _, err := exec.LookPath("tail"); err != nil {
		t.Skip("tail not installed")
	}
	root := makeArchive(t)
	_, mp := mountView(t, root, Options{})
	logPath := "node2/x/y.log"
	var out syncBuffer
	cmd := exec.Command("tail", "-n", "1", "-s", "0.1", "-f", filepath.Join(mp, logPath))
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	for i := 0; i < 3; i++ {
		line := []byte("2026-11-24T12:00:00.000Z INFO tail-line-" + string(rune('a'+i)) + "\n")
		appendTo(t, filepath.Join(root, logPath), line)
		eventually(t, 5*time.Second, "tail -f prints the appended line", func() error {
			if !bytes.Contains(out.Bytes(), line) {
				return errors.New("not printed yet")
			}
			return nil
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// TestMountpointChecks: a missing, non-directory, non-empty or busy mount
// point gets a clear error wrapping ErrMountpoint.
func TestMountpointChecks(t *testing.T) {
	requireFUSE(t)
	root := makeArchive(t)
	_, busy := mountView(t, root, Options{})
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, mp, want string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope"), "does not exist"},
		{"not a directory", file, "not a directory"},
		{"not empty", nonEmpty, "not empty"},
		{"busy", busy, "busy"},
		{"empty name", "", "no mount point"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, err := NewDiskSource(root, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			m, err := Mount(t.Context(), src, root, c.mp, Options{Logger: testLogger(t)})
			if err == nil {
				unmountRetrying(t, m)
				t.Fatal("mounted")
			}
			if !errors.Is(err, ErrMountpoint) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want ErrMountpoint saying %q", err, c.want)
			}
		})
	}
	// The busy mount is untouched by the refused attempt.
	if _, err := os.Stat(filepath.Join(busy, "node1/app/2026-11-24.log")); err != nil {
		t.Errorf("the first mount broke: %v", err)
	}
}

// TestUnmountLazyWhenBusy: with a file still open, Unmount detaches the
// mount at once, the open file keeps reading, and the file system goes
// when it is closed. Cancelling the context unmounts too.
func TestUnmountLazyWhenBusy(t *testing.T) {
	requireFUSE(t)
	root := makeArchive(t)
	src, err := NewDiskSource(root, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	mp := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := Mount(ctx, src, root, mp, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountRetrying(t, m) })
	f, err := os.Open(filepath.Join(mp, "node2/big.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cancel() // as SIGTERM does in syncer mount
	eventually(t, 5*time.Second, "mount point released", func() error {
		if _, ok := mountedAt(mp); ok {
			return errors.New("still mounted")
		}
		return nil
	})
	if err := m.Unmount(); err != nil {
		t.Fatalf("second Unmount: %v", err)
	}
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read the open file after the lazy detach: %v", err)
	}
	want, _ := os.ReadFile(filepath.Join(root, "node2/big.log"))
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes after the lazy detach, want %d", len(got), len(want))
	}
	f.Close()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the file system did not go after the last file was closed")
	}
}

// buildSyncer builds the syncer binary for tests that run it.
func buildSyncer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "syncer")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/syncer-dev/syncer/cmd/syncer")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestKilledMountIsClearedAtNextStart: syncer mount killed with -9 leaves
// a dead mount (ENOTCONN); the next syncer mount clears it, mounts again
// and, on SIGTERM, unmounts and exits 0.
func TestKilledMountIsClearedAtNextStart(t *testing.T) {
	requireFUSE(t)
	if testing.Short() {
		t.Skip("builds the syncer binary; skipped with -short")
	}
	bin := buildSyncer(t)
	root := makeArchive(t)
	state := t.TempDir()
	mp := t.TempDir()
	t.Cleanup(func() {
		if _, ok := mountedAt(mp); ok {
			_ = unix.Unmount(mp, unix.MNT_DETACH)
		}
	})
	logPath := filepath.Join(mp, "node1/app/2026-11-24.log")
	want, err := os.ReadFile(filepath.Join(root, "node1/app/2026-11-24.log"))
	if err != nil {
		t.Fatal(err)
	}
	start := func() (*exec.Cmd, *syncBuffer) {
		var stderr syncBuffer
		cmd := exec.Command(bin, "mount", "--root", root, "--state", state, mp)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		eventually(t, 30*time.Second, "syncer mount serves the archive", func() error {
			got, err := os.ReadFile(logPath)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, want) {
				return errors.New("wrong content")
			}
			return nil
		})
		return cmd, &stderr
	}

	first, _ := start()
	if err := first.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	var sfs unix.Statfs_t
	if err := unix.Statfs(mp, &sfs); !isErrno(err, unix.ENOTCONN) {
		t.Fatalf("after kill -9 the mount point gives %v, want ENOTCONN (a dead mount)", err)
	}

	second, stderr := start()
	if !bytes.Contains(stderr.Bytes(), []byte("stale mount")) {
		t.Errorf("the second start did not say it cleared the stale mount:\n%s", stderr.Bytes())
	}
	if err := second.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("syncer mount after SIGTERM: %v\n%s", err, stderr.Bytes())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("syncer mount did not exit after SIGTERM")
	}
	if fstype, ok := mountedAt(mp); ok {
		t.Fatalf("still mounted (%s) after a clean exit", fstype)
	}
}
