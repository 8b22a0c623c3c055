package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/rotsim"
)

// rotationSchedule is how many rotations come between one push and the
// next (issue 12: at least 20 rotations, some pushes with two or three
// rotations between them, one push with none). The bounded suite runs it
// once (23 rotations, 18 pushes), FAULTS_FULL three times.
var rotationSchedule = []int{1, 1, 2, 1, 3, 0, 1, 2, 1, 1, 3, 1, 2, 1, 1, 2}

// includeModes are the two ways an operator matches a rotating log: with
// the rotated names matched as well (the style's patterns), and with the
// default '**/*.log' alone. Both must archive every line once.
var includeModes = []string{"matched", "default"}

// TestLogrotate drives each style of real rotating software (rotsim: the
// real logrotate with create, copytruncate, compress with and without
// delaycompress, dateext, olddir, maxsize; Python's RotatingFileHandler and
// TimedRotatingFileHandler; nginx's access log rotated by logrotate, with
// create and SIGUSR1 and with copytruncate)
// through rotationSchedule, writing numbered lines between rotations and
// pushes, under both include modes. Issue 12's promise, checked for each:
//
//   - every line written is archived exactly once, across the archived log
//     and its versions; no line is stored twice anywhere in the archive
//     (lines inside an archived .gz counted too, decompressed);
//   - the bytes_sent of all pushes add up to the bytes written;
//   - the archived live log is byte-identical to the node's.
//
// Writes and rotations take turns here, so no writer loses a line and the
// lines written are the reference. The olddir style passes --olddir.
func TestLogrotate(t *testing.T) {
	rounds := 1
	if full() {
		rounds = 3
	}
	for _, style := range rotsim.Styles() {
		for _, mode := range includeModes {
			t.Run(style.Name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				runRotationCase(t, style, mode, rounds)
			})
		}
	}
}

// rotationCase is one style under one include mode: a workload, its own
// server and agent state.
type rotationCase struct {
	t          *testing.T
	style      rotsim.Style
	mode       string
	w          *rotsim.Workload
	root, logs string
	pw         string
	args       []string
	pushes     int
	failed     int   // pushes that did not exit 0
	sent       int64 // bytes_sent over all pushes
	// unrecoverable: files_unrecoverable over all pushes (none may be
	// said lost while every line is on the node).
	unrecoverable int64
	load          bool // the writer runs on during rotations and pushes
}

func newRotationCase(t *testing.T, style rotsim.Style, mode string) *rotationCase {
	t.Helper()
	if err := style.Check(); err != nil {
		t.Skipf("%v (CI installs logrotate, nginx-light and python3)", err)
	}
	c := &rotationCase{t: t, style: style, mode: mode, root: t.TempDir(), logs: t.TempDir()}
	var addr string
	addr, c.pw = inProcessServer(t, c.root)
	c.args = append(agentArgs("node1", addr, c.logs, t.TempDir()), rotationFlags(style, mode)...)
	w, err := rotsim.New(c.logs, style, rotsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	c.w = w
	return c
}

// rotationFlags are the agent's flags for style under an include mode.
func rotationFlags(style rotsim.Style, mode string) []string {
	var f []string
	if mode == "matched" {
		f = append(f, "--include", "**/*.log")
		for _, p := range style.Includes {
			f = append(f, "--include", p)
		}
	}
	if style.OldDir != "" {
		f = append(f, "--olddir", style.OldDir)
	}
	return f
}

func runRotationCase(t *testing.T, style rotsim.Style, mode string, rounds int) {
	c := newRotationCase(t, style, mode)
	step := 0
	write := func() {
		step++
		c.must(c.w.Write(3 + step*7%17))
	}
	write()
	c.push()
	for range rounds {
		for _, k := range rotationSchedule {
			for range k {
				write()
				c.must(c.w.Rotate())
			}
			write()
			c.push()
		}
	}
	write()
	c.push()
	if c.w.Rotations() < 20 {
		t.Errorf("only %d rotations", c.w.Rotations())
	}
	c.check(fmt.Sprintf("TestLogrotate/%s/%s", style.Name, mode), "", -1)
}

func (c *rotationCase) must(err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

// push runs one push and adds up its bytes_sent. A failed push is an
// error of the test, but the case goes on to count what was archived.
func (c *rotationCase) push() {
	c.t.Helper()
	r := push(c.t, c.pw, c.args...)
	c.pushes++
	c.keepLog(r)
	var s summary
	if err := json.Unmarshal([]byte(r.stdout), &s); err == nil {
		c.sent += s.BytesSent
		c.unrecoverable += s.FilesUnrecoverable
	}
	if r.code != 0 {
		c.failed++
		if c.failed == 1 {
			c.t.Errorf("push %d (after %d rotations): exit %d %s %s", c.pushes, c.w.Rotations(), r.code, r.stdout, r.stderr)
		}
	}
}

// keepLog appends what push r printed to $FAULTS_ROTATION_LOGS/<test>.log
// when that directory is set: the agent's own account of every push, for
// a case that failed under load and does not fail alone.
func (c *rotationCase) keepLog(r run) {
	d := os.Getenv("FAULTS_ROTATION_LOGS")
	if d == "" {
		return
	}
	f, err := os.OpenFile(filepath.Join(d, strings.ReplaceAll(c.t.Name(), "/", "_")+".log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Errorf("rotation log: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== push %d after %d rotations, exit %d\n%s\n%s\n", c.pushes, c.w.Rotations(), r.code, r.stdout, r.stderr)
}

// check tallies the archive against lines (the workload's when nil) and
// reports the case; note says where the reference lines came from, written
// is their bytes (-1: counted from the lines, a newline each).
func (c *rotationCase) check(test, note string, written int64, lines ...string) {
	t := c.t
	t.Helper()
	if lines == nil {
		lines = c.w.Lines()
	}
	if written < 0 {
		written = 0
		for _, l := range lines {
			written += int64(len(l)) + 1
		}
	}
	archive := filepath.Join(c.root, "node1")
	n, err := rotsim.Tally(lines, archive)
	if err != nil {
		t.Fatal(err)
	}
	if !n.OK() {
		t.Errorf("%v; broken gzip files: %v\nnode:\n%s\narchive:\n%s", n, n.Broken, headLines(treeListing(c.logs), 20), headLines(treeListing(archive), 40))
	}
	if c.unrecoverable != 0 {
		t.Errorf("%d logs reported unrecoverable by the pushes, while every line was on the node", c.unrecoverable)
	}
	if c.sent != written {
		t.Errorf("bytes_sent over %d pushes = %d, want the %d bytes written", c.pushes, c.sent, written)
	}
	local, err := os.ReadFile(c.w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(archive, filepath.Base(c.w.Path()))); err != nil || !bytes.Equal(got, local) {
		t.Errorf("archived %s (%d bytes, %v) differs from the node's (%d bytes)", filepath.Base(c.w.Path()), len(got), err, len(local))
	}
	if c.failed > 0 {
		t.Errorf("%d of %d pushes failed", c.failed, c.pushes)
	}
	matched := "rotated names matched (`" + strings.Join(c.style.Includes, "`, `") + "`)"
	if c.mode == "default" {
		matched = "default `**/*.log` only"
	}
	if c.style.OldDir != "" {
		matched += ", `--olddir " + c.style.OldDir + "`"
	}
	if c.load {
		matched += ", requests continuous"
	}
	report(t, fmt.Sprintf("Log rotation by real software: %s, %d rotations between %d pushes, %s", styleTitle(c.style), c.w.Rotations(), c.pushes, matched),
		fmt.Sprintf("%v%s; bytes_sent/bytes written %d/%d (%.2f); archive bytes/bytes written %.2f; %d pushes failed (`%s`)",
			n, note, c.sent, written, ratio(c.sent, written), ratio(n.Bytes, written), c.failed, test), n.MissingBytes)
}

// styleTitle says in words what a style is.
func styleTitle(s rotsim.Style) string {
	switch s.Writer {
	case rotsim.PythonSize:
		return fmt.Sprintf("Python `RotatingFileHandler` (backupCount %d)", s.Keep)
	case rotsim.PythonTimed:
		return fmt.Sprintf("Python `TimedRotatingFileHandler` (when='S', backupCount %d)", s.Keep)
	case rotsim.NginxAccess:
		if s.Directives == "create" {
			return fmt.Sprintf("nginx access log, logrotate `create`, `rotate %d`, postrotate `kill -USR1`", s.Keep)
		}
		return fmt.Sprintf("nginx access log, logrotate `%s`, `rotate %d`", s.Directives, s.Keep)
	}
	return fmt.Sprintf("logrotate `%s`, `rotate %d`", strings.ReplaceAll(s.Directives, "\n", "`, `"), s.Keep)
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// headLines is the first n lines of s, and how many were left out.
func headLines(s string, n int) string {
	l := strings.SplitAfter(s, "\n")
	if len(l) <= n+1 {
		return s
	}
	return strings.Join(l[:n], "") + fmt.Sprintf("  ... %d more\n", len(l)-1-n)
}

// TestLogrotateNginxUnderLoad: a real long-running writer that keeps its
// log open. nginx answers a client loop in the test (one unique URL per
// request, so each access-log line is unique) while logrotate rotates its
// access log every 150 ms along rotationSchedule and the agent pushes
// 150 ms after the last rotation of each step, under both include modes.
// Two configurations: create with postrotate kill -USR1 (lines land in
// the renamed log until nginx has reopened it), and copytruncate, whose
// copy-then-truncate window loses the lines nginx writes in between. The
// reference is the access log on the node's disk, every generation
// (rotate 100 deletes none); with create it must hold every request the
// client made and nginx answered, with copytruncate the lines logrotate
// lost are reported, not counted against the agent.
func TestLogrotateNginxUnderLoad(t *testing.T) {
	rounds := 1
	if full() {
		rounds = 3
	}
	for _, name := range []string{"nginx", "nginx-copytruncate"} {
		style, _ := rotsim.Lookup(name)
		for _, mode := range includeModes {
			t.Run(name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				runNginxUnderLoad(t, style, mode, rounds)
			})
		}
	}
}

func runNginxUnderLoad(t *testing.T, style rotsim.Style, mode string, rounds int) {
	c := newRotationCase(t, style, mode)
	c.load = true
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := c.w.Write(1); err != nil {
				done <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	const pause = 150 * time.Millisecond
	c.push()
	for range rounds {
		for _, k := range rotationSchedule {
			for range k {
				time.Sleep(pause)
				c.must(c.w.Rotate())
			}
			time.Sleep(pause)
			c.push()
		}
	}
	close(stop)
	c.must(<-done)
	c.push()
	if c.w.Rotations() < 20 {
		t.Errorf("only %d rotations", c.w.Rotations())
	}
	disk, err := rotsim.LinesOnDisk(c.logs)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := rotsim.Tally(c.w.Lines(), c.logs)
	if err != nil {
		t.Fatal(err)
	}
	copytruncate := strings.Contains(style.Directives, "copytruncate")
	// copytruncate may also copy a line nginx was writing in part (torn at
	// the copy's end, its rest truncated away): at most one per rotation,
	// on the node's disk as it is, so the reference bytes are the disk's.
	torn := 0
	if copytruncate {
		torn = c.w.Rotations()
	}
	if onDisk.Duplicated > 0 || onDisk.Extra > torn || (onDisk.Missing > 0 && !copytruncate) {
		t.Errorf("the node's disk against the %d requests answered: %v", onDisk.Written, onDisk)
	}
	note := fmt.Sprintf(" (reference: the access log on the node's disk, which holds %d of the %d requests answered", len(disk), onDisk.Written)
	if copytruncate {
		note += fmt.Sprintf("; logrotate's copytruncate lost %d", onDisk.Missing)
	}
	if onDisk.Extra > 0 {
		note += fmt.Sprintf(", %d torn at a copy", onDisk.Extra)
	}
	c.check(fmt.Sprintf("TestLogrotateNginxUnderLoad/%s/%s", style.Name, mode), note+")", onDisk.Bytes, disk...)
}
