package syncer_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rotator rotates svc/app.log the ways logrotate and Python's logging
// handlers do, in Go, so that the agent's identity cases run as unit tests
// (faults/ drives the real programs).
type rotator struct {
	t    *testing.T
	e    *agentEnv
	keep int // numbered names kept: app.log.1 .. app.log.<keep>
	// copytruncate copies app.log to app.log.1 and truncates it in place
	// instead of renaming it.
	copytruncate bool
	// compress gzips rotated names (app.log.N.gz); delay leaves app.log.1
	// plain until the next rotation (logrotate's delaycompress).
	compress, delay bool
	// olddir moves rotated names into this directory (relative to svc/).
	olddir string
	// written holds every line written to app.log, in order.
	written []string
	bytes   int64
	n       int
	// sent adds up bytes_sent over the pushes made with push.
	sent int64
}

// push runs one push of the agent; a failed file or a log reported
// unrecoverable fails the test (every line is on the node).
func (r *rotator) push() {
	r.t.Helper()
	s := r.e.push()
	r.sent += s.BytesSent
	if s.FilesFailed != 0 || s.FilesUnrecoverable != 0 {
		r.t.Fatalf("push: %+v", s)
	}
}

func (r *rotator) path(name string) string {
	if r.olddir != "" && name != "app.log" {
		return filepath.Join(r.e.dir, "svc", r.olddir, name)
	}
	return filepath.Join(r.e.dir, "svc", name)
}

// write appends n numbered lines to app.log (creating it).
func (r *rotator) write(n int) {
	r.t.Helper()
	var b strings.Builder
	for range n {
		l := fmt.Sprintf("line %06d of the log %s", r.n, strings.Repeat("x", r.n%37))
		r.n++
		r.written = append(r.written, l)
		b.WriteString(l + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(r.path("app.log")), 0o755); err != nil {
		r.t.Fatal(err)
	}
	f, err := os.OpenFile(r.path("app.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		r.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.bytes += int64(b.Len())
}

func (r *rotator) name(i int) string {
	n := fmt.Sprintf("app.log.%d", i)
	if r.compress && !(r.delay && i == 1) {
		n += ".gz"
	}
	return n
}

// rotate does one rotation of app.log and leaves an empty app.log.
func (r *rotator) rotate() {
	r.t.Helper()
	if r.olddir != "" {
		if err := os.MkdirAll(filepath.Join(r.e.dir, "svc", r.olddir), 0o755); err != nil {
			r.t.Fatal(err)
		}
	}
	os.Remove(r.path(r.name(r.keep)))
	for i := r.keep - 1; i >= 1; i-- {
		from := r.path(r.name(i))
		if r.compress && r.delay && i == 1 {
			// delaycompress: the plain .1 is compressed as it moves to .2.
			if _, err := os.Stat(from); err == nil {
				gzipTo(r.t, from, r.path(r.name(2)))
				os.Remove(from)
			}
			continue
		}
		if err := os.Rename(from, r.path(r.name(i+1))); err != nil && !os.IsNotExist(err) {
			r.t.Fatal(err)
		}
	}
	cur := r.path("app.log")
	if _, err := os.Stat(cur); err != nil {
		return
	}
	switch {
	case r.copytruncate:
		data, err := os.ReadFile(cur)
		if err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(r.path("app.log.1"), data, 0o644); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Truncate(cur, 0); err != nil {
			r.t.Fatal(err)
		}
		if r.compress && !r.delay {
			gzipTo(r.t, r.path("app.log.1"), r.path("app.log.1.gz"))
			os.Remove(r.path("app.log.1"))
		}
	case r.compress && !r.delay:
		gzipTo(r.t, cur, r.path("app.log.1.gz"))
		os.Remove(cur)
	default:
		if err := os.Rename(cur, r.path("app.log.1")); err != nil {
			r.t.Fatal(err)
		}
	}
	if !r.copytruncate {
		if err := os.WriteFile(cur, nil, 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
}

func gzipTo(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(to, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(from)
	os.Chtimes(to, fi.ModTime(), fi.ModTime()) // as logrotate does
}

// archivedLineCounts counts every line of every archived file (outside
// .syncer, .gz decompressed) and the archive's bytes.
func archivedLineCounts(t *testing.T, tree string) (map[string]int, int64) {
	t.Helper()
	counts := map[string]int{}
	var total int64
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".syncer" {
				return filepath.SkipDir
			}
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		var rd io.Reader = f
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				return err
			}
			rd = zr
		}
		data, err := io.ReadAll(rd)
		if err != nil {
			return err
		}
		total += int64(len(data))
		s := bufio.NewScanner(bytes.NewReader(data))
		for s.Scan() {
			counts[s.Text()]++
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return counts, total
}

// check asserts every line written archived exactly once and no byte sent
// twice.
func (r *rotator) check(tree string) {
	sent := r.sent
	r.t.Helper()
	counts, total := archivedLineCounts(r.t, tree)
	var missing, dup []string
	for _, l := range r.written {
		switch counts[l] {
		case 1:
		case 0:
			missing = append(missing, l[:11])
		default:
			dup = append(dup, l[:11])
		}
	}
	if len(missing) > 0 || len(dup) > 0 || sent != r.bytes || total != r.bytes {
		r.t.Errorf("%d lines written (%d bytes): %d missing %v, %d archived twice or more %v; bytes sent %d, archive holds %d\n%s",
			len(r.written), r.bytes, len(missing), firstFew(missing), len(dup), firstFew(dup), sent, total, listTree(tree))
	}
}

func firstFew(s []string) []string { return s[:min(len(s), 5)] }

func listTree(dir string) string {
	var b strings.Builder
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, "/.syncer/") {
			fi, _ := d.Info()
			rel, _ := filepath.Rel(dir, p)
			fmt.Fprintf(&b, "  %s %d\n", rel, fi.Size())
		}
		return nil
	})
	return b.String()
}

// TestRotationChains: numbered rotation chains of any length, rotated 12
// times with one, two or three rotations between pushes, archive every line
// exactly once and send every byte once, with the rotated names matched
// and with the default include alone. Each style is what logrotate does
// with `rotate 5` and the named option. SYNCER_TEST_LOG=1 prints the
// agent's log of every push.
func TestRotationChains(t *testing.T) {
	styles := []struct {
		name                          string
		copytruncate, compress, delay bool
		olddir                        string
	}{
		{name: "create"},
		{name: "copytruncate", copytruncate: true},
		{name: "compress", compress: true},
		{name: "compress+delaycompress", compress: true, delay: true},
		{name: "copytruncate+compress", copytruncate: true, compress: true},
		{name: "olddir", olddir: "old"},
	}
	includes := map[string][]string{
		"default": nil,
		"matched": {"**/*.log", "**/*.log.[0-9]", "**/*.log.[0-9].gz"},
	}
	// Rotations between pushes: 1, 2, 3, 1, ... (12 in all).
	schedule := []int{1, 1, 2, 1, 3, 1, 2, 1}
	for _, st := range styles {
		for _, incName := range []string{"default", "matched"} {
			t.Run(st.name+"/"+incName, func(t *testing.T) {
				tg := startSyncerServer(t, nil)
				e := newEnv(t, tg)
				e.opts.Include = includes[incName]
				if st.olddir != "" {
					e.opts.OldDirs = []string{st.olddir}
				}
				if os.Getenv("SYNCER_TEST_LOG") != "" {
					e.opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
				}
				r := &rotator{t: t, e: e, keep: 5, copytruncate: st.copytruncate, compress: st.compress, delay: st.delay, olddir: st.olddir}
				r.write(40)
				r.push()
				for _, k := range schedule {
					for range k {
						r.write(25)
						r.rotate()
						r.write(3)
						time.Sleep(2 * time.Millisecond) // distinct mtimes
					}
					r.write(7)
					if os.Getenv("SYNCER_TEST_LOG") != "" {
						fmt.Fprintf(os.Stderr, "--- push after %d rotations (lines up to %d)\n", k, r.n)
					}
					r.push()
				}
				r.push()
				r.check(tg.tree)
			})
		}
	}
}

// TestRotatedLogGrowsAfterPush: a writer that keeps its rotated file open
// (nginx before it reopens on USR1) adds lines to app.log.1 after the push
// that saw the rotation and stored the new app.log. Those lines belong to
// the superseded version of app.log, and reach it, with the rotated name
// matched or not.
func TestRotatedLogGrowsAfterPush(t *testing.T) {
	for _, inc := range [][]string{nil, {"**/*.log", "**/*.log.[0-9]"}} {
		t.Run(fmt.Sprint(len(inc)), func(t *testing.T) {
			tg := startSyncerServer(t, nil)
			e := newEnv(t, tg)
			e.opts.Include = inc
			r := &rotator{t: t, e: e, keep: 5}
			for round := range 6 {
				r.write(30 + round)
				r.push()
				r.write(5)
				r.rotate()
				r.write(4)
				r.push()
				// Late lines into the rotated file.
				f, err := os.OpenFile(r.path("app.log.1"), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					l := fmt.Sprintf("late %d-%d", round, i)
					r.written = append(r.written, l)
					r.bytes += int64(len(l) + 1)
					fmt.Fprintln(f, l)
				}
				f.Close()
				r.push()
			}
			r.check(tg.tree)
			// The late lines went to the version they were written to:
			// one superseded version of app.log ends with each round's.
			vs, _ := filepath.Glob(filepath.Join(tg.tree, "svc/app.log.superseded-*"))
			ends := 0
			for _, v := range vs {
				b, _ := os.ReadFile(v)
				if bytes.Contains(b, []byte("late ")) && bytes.HasSuffix(b, []byte("-2\n")) {
					ends++
				}
			}
			if ends != 6 {
				t.Errorf("%d of %d versions end with their late lines, want 6\n%s", ends, len(vs), listTree(tg.tree))
			}
		})
	}
}

// TestRotationFasterThanPushes: with `rotate 1`, three rotations between
// two pushes delete the log the last push saw and the generation after it.
// What no agent can recover is said, not hidden: the push counts the log in
// files_unrecoverable, and what is still on the node is archived exactly
// once.
func TestRotationFasterThanPushes(t *testing.T) {
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	var logs bytes.Buffer
	e.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r := &rotator{t: t, e: e, keep: 1}
	r.write(20)
	first := e.push()
	r.write(10) // lost: app.log is rotated to .1, then deleted
	r.rotate()
	r.write(10) // lost: the generation after it, deleted the same way
	r.rotate()
	r.write(10)
	r.rotate()
	r.write(5)
	s := e.push()
	if s.FilesUnrecoverable != 1 || s.FilesFailed != 0 {
		t.Fatalf("push: unrecoverable %d (want 1), failed %d", s.FilesUnrecoverable, s.FilesFailed)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "svc/app.log") {
		t.Errorf("no warning naming the log:\n%s", logs.String())
	}
	counts, _ := archivedLineCounts(t, tg.tree)
	var missing, dup int
	for i, l := range r.written {
		switch {
		case counts[l] > 1:
			dup++
		case counts[l] == 0 && (i < 20 || i >= 40):
			missing++
		}
	}
	var lost int64
	for _, l := range r.written[20:40] {
		lost += int64(len(l) + 1)
	}
	if missing != 0 || dup != 0 || s.BytesSent+first.BytesSent != r.bytes-lost {
		t.Errorf("%d lines missing that were on the node, %d archived twice; sent %d of %d bytes written\n%s",
			missing, dup, s.BytesSent+first.BytesSent, r.bytes, listTree(tg.tree))
	}
}

// TestCopytruncateAfterEmptyPush: a push that finds app.log empty (just
// truncated by copytruncate, the writer not yet back) records nothing that
// tells its next content apart. When the log is truncated again before the
// next push, the lines written in between exist only in the copy: they
// must still be archived, as a version of app.log, with the rotated name
// matched or not.
func TestCopytruncateAfterEmptyPush(t *testing.T) {
	for _, inc := range [][]string{nil, {"**/*.log", "**/*.log.[0-9]"}} {
		t.Run(fmt.Sprint(len(inc)), func(t *testing.T) {
			tg := startSyncerServer(t, nil)
			e := newEnv(t, tg)
			e.opts.Include = inc
			r := &rotator{t: t, e: e, keep: 5, copytruncate: true}
			for range 4 {
				r.write(5)
				r.push()
				r.rotate()
				r.push() // app.log is empty here
				r.write(7)
				r.rotate()
				r.write(2)
				r.push()
			}
			r.check(tg.tree)
		})
	}
}
