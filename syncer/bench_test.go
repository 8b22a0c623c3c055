package syncer_test

// Benchmarks of the agent (figures in syncer/README.md; `make bench` runs
// the real binary beside find, rclone and lftp):
//
//	go test -run XXX -bench . -benchtime 3x ./syncer/
//
// SYNCER_BENCH_FILES overrides the 100,000 files of the unchanged-tree
// benchmark.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/store"
	"github.com/syncer-dev/syncer/syncer"
)

// memServer is an in-memory FTP server stand-in with the syncer server's
// rules (REST only at the end), so benchmarks measure the agent alone.
type memServer struct {
	mu    sync.Mutex
	files map[string][]byte
}

func newMemServer() *memServer { return &memServer{files: map[string][]byte{}} }

func (m *memServer) Get(context.Context) (syncer.Conn, error) { return m, nil }
func (m *memServer) Put(syncer.Conn, error)                   {}
func (m *memServer) Close() error                             { return nil }

func (m *memServer) Size(_ context.Context, p string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[p]
	if !ok {
		return 0, fmt.Errorf("size %s: %w", p, ftpfs.ErrNotFound)
	}
	return int64(len(b)), nil
}

func (m *memServer) MkdirAll(context.Context, string) error { return nil }

func (m *memServer) List(_ context.Context, dir string) ([]ftpfs.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ftpfs.Entry
	for p, b := range m.files {
		if path.Dir(p) == path.Clean(dir) {
			out = append(out, ftpfs.Entry{Name: path.Base(p), Size: int64(len(b))})
		}
	}
	return out, nil
}

func (m *memServer) Store(_ context.Context, p string, r io.Reader, off int64) (int64, error) {
	data, err := io.ReadAll(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.files[p]
	if off != 0 && off != int64(len(old)) {
		return 0, fmt.Errorf("stor %s: %w", p, ftpfs.ErrOffset)
	}
	if off == 0 {
		old = nil
	}
	m.files[p] = append(old, data...)
	return int64(len(data)), err
}

func (m *memServer) Retrieve(_ context.Context, p string, w io.Writer, off int64) (int64, error) {
	m.mu.Lock()
	b, ok := m.files[p]
	m.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("retr %s: %w", p, ftpfs.ErrNotFound)
	}
	n, err := w.Write(b[off:])
	return int64(n), err
}

// benchAgent pushes dir to srv with a manifest in state.
func benchPush(b *testing.B, dir, state string, srv syncer.Conns) syncer.Summary {
	b.Helper()
	m, err := store.Open(store.Dir(state, testAgent))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	a, err := syncer.NewAgent(syncer.Options{AgentID: testAgent, Dir: dir, StateDir: state, Parallel: 4}, m)
	if err != nil {
		b.Fatal(err)
	}
	s, err := a.Push(context.Background(), srv)
	if err != nil {
		b.Fatal(err)
	}
	if s.FilesFailed > 0 {
		b.Fatalf("push failed files: %+v", s.Errors[0])
	}
	return s
}

// makeFlatTree writes n small log files in directories of 500.
func makeFlatTree(b *testing.B, dir string, n, size int) {
	b.Helper()
	line := bytes.Repeat([]byte("2026-11-24T10:00:00.000Z INFO x\n"), size/32+1)[:size]
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("app%02d", i/500), fmt.Sprintf("f%06d.log", i))
		if i%500 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(p, line, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnchangedTree: a push over an unchanged tree (one lstat per file,
// a merge against the manifest, no reads, no network), and the same tree
// listed by find for comparison (metric x_find: push time over find time).
func BenchmarkUnchangedTree(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("SYNCER_BENCH_FILES")); err == nil && v > 0 {
		n = v
	}
	dir, state := b.TempDir(), b.TempDir()
	makeFlatTree(b, dir, n, 100)
	srv := newMemServer()
	if s := benchPush(b, dir, state, srv); s.FilesNew != int64(n) {
		b.Fatalf("initial push: %+v", s)
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		s := benchPush(b, dir, state, srv)
		if s.FilesUnchanged != int64(n) || s.BytesSent != 0 {
			b.Fatalf("unchanged push: %+v", s)
		}
	}
	pushTime := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	if _, err := exec.LookPath("find"); err == nil {
		var findTime time.Duration
		for i := 0; i < 3; i++ {
			t0 := time.Now()
			cmd := exec.Command("find", dir, "-type", "f", "-printf", `%s %T@\n`)
			cmd.Stdout = io.Discard
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
			if d := time.Since(t0); i == 0 || d < findTime {
				findTime = d
			}
		}
		b.ReportMetric(float64(pushTime)/float64(findTime), "x_find")
	}
	b.ReportMetric(float64(n)/pushTime.Seconds(), "files/s")
}

// BenchmarkAppendTenPercent: 1,000 files of 1 MiB archived, then 1 KiB
// appended to 100 of them: metric sent/appended is bytes sent over bytes
// appended (1.00 is the ideal; whole-file tools re-send 1 MiB per file).
func BenchmarkAppendTenPercent(b *testing.B) {
	dir, state := b.TempDir(), b.TempDir()
	const files, size = 1000, 1 << 20
	for i := 0; i < files; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i/100), fmt.Sprintf("f%04d.log", i))
		if i%100 == 0 {
			os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err := os.WriteFile(p, logLines(uint64(i), size), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	srv := newMemServer()
	benchPush(b, dir, state, srv)
	var appended, sent int64
	round := 0
	for b.Loop() {
		b.StopTimer()
		for i := 0; i < files; i += 10 {
			p := filepath.Join(dir, fmt.Sprintf("d%02d", i/100), fmt.Sprintf("f%04d.log", i))
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			add := logLines(uint64(round*files+i), 1024)
			f.Write(add)
			f.Close()
			appended += int64(len(add))
		}
		round++
		b.StartTimer()
		s := benchPush(b, dir, state, srv)
		sent += s.BytesSent
		if s.FilesAppended != files/10 {
			b.Fatalf("append push: %+v", s)
		}
	}
	b.ReportMetric(float64(sent)/float64(appended), "sent/appended")
}

// BenchmarkManifestMillion: a push with a manifest of 1,000,000 entries
// (999,000 of them for files deleted long ago, as a long-lived agent
// accumulates) over a tree of 1,000 unchanged files. Metric peak_MiB is the
// process's peak resident memory during the push (Linux: VmHWM after
// resetting it through /proc/self/clear_refs).
func BenchmarkManifestMillion(b *testing.B) {
	dir, state := b.TempDir(), b.TempDir()
	makeFlatTree(b, dir, 1000, 100)
	srv := newMemServer()
	benchPush(b, dir, state, srv)
	m, err := store.Open(store.Dir(state, testAgent))
	if err != nil {
		b.Fatal(err)
	}
	hs := bytes.Repeat([]byte{7}, 108)
	for i := 0; i < 999_000; {
		batch := m.NewBatch()
		for j := 0; j < 10_000; j, i = j+1, i+1 {
			e := store.Entry{Status: store.StatusGone, Size: 1 << 20, Archived: 1 << 20, Ino: uint64(10_000_000 + i), HashState: hs}
			if err := batch.Put([]byte(fmt.Sprintf("old/2025-%02d/host-%07d.log", i%12+1, i)), e); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(false); err != nil {
			b.Fatal(err)
		}
	}
	m.Close()
	b.ResetTimer()
	peak := 0.0
	for b.Loop() {
		b.StopTimer()
		resetPeak()
		b.StartTimer()
		s := benchPush(b, dir, state, srv)
		if s.FilesUnchanged != 1000 {
			b.Fatalf("push: %+v", s)
		}
		peak = max(peak, peakMiB())
	}
	if peak > 0 {
		b.ReportMetric(peak, "peak_MiB")
	}
}

func resetPeak() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakMiB reads VmHWM (Linux); 0 elsewhere.
func peakMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
