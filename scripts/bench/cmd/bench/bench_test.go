//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/rotsim"
)

func TestParseFuseRow(t *testing.T) {
	tests := []struct {
		line       string
		name       string
		arch, mnt  float64
		wantParsed bool
	}{
		{"| grep -c ERROR, one 8 MiB log | 0.080 | 0.072 | 1.11 (1.11-1.11) | >= 0.95 |", "grep -c ERROR, one 8 MiB log", 0.080, 0.072, true},
		{"| find -type f | wc -l, 100 files | 0.014 | 0.011 | 1.27 | - |", "find -type f | wc -l, 100 files", 0.014, 0.011, true},
		{"| scenario | archive dir (s) | mount (s) | ratio | target |", "", 0, 0, false},
		{"| --- | ---: | ---: | ---: | --- |", "", 0, 0, false},
		{"FUSE view vs archive directory: 2 cores", "", 0, 0, false},
	}
	for _, tt := range tests {
		name, arch, mnt, ok := parseFuseRow(tt.line)
		if ok != tt.wantParsed || name != tt.name || arch != tt.arch || mnt != tt.mnt {
			t.Errorf("parseFuseRow(%q) = %q %v %v %v, want %q %v %v %v", tt.line, name, arch, mnt, ok, tt.name, tt.arch, tt.mnt, tt.wantParsed)
		}
	}
}

func TestScenarioFinish(t *testing.T) {
	tests := []struct {
		name               string
		syncer, peer       []float64
		median, min, max   float64 // of the peer
		ratio, syncerRatio float64
	}{
		{"odd", []float64{2, 1, 3}, []float64{9, 4, 5}, 5, 4, 9, 2.5, 1},
		{"even", []float64{1, 3}, []float64{4, 2, 8, 6}, 5, 2, 8, 2.5, 1},
		{"one", []float64{4}, []float64{1}, 1, 1, 1, 0.25, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &Scenario{}
			s, p := sc.row("syncer", true, "s"), sc.row("peer", false, "s")
			s.Samples, p.Samples = tt.syncer, tt.peer
			sc.finish()
			if p.Median != tt.median || p.Min != tt.min || p.Max != tt.max || p.Ratio != tt.ratio || s.Ratio != tt.syncerRatio {
				t.Errorf("peer median %v min %v max %v ratio %v, syncer ratio %v; want %v %v %v %v %v",
					p.Median, p.Min, p.Max, p.Ratio, s.Ratio, tt.median, tt.min, tt.max, tt.ratio, tt.syncerRatio)
			}
		})
	}
}

// writeTree writes files (relative name -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyTree(t *testing.T) {
	big := strings.Repeat("2026-11-24T10:00:00Z INFO request served\n", 60000) // over one compare buffer
	src := map[string]string{"a/x.log": "hello\n", "b/c/y.log": big}
	tests := []struct {
		name    string
		dst     map[string]string
		wantErr string
	}{
		{"identical, extra files allowed", map[string]string{"a/x.log": "hello\n", "b/c/y.log": big, ".syncer/agent.json": "{}"}, ""},
		{"missing file", map[string]string{"a/x.log": "hello\n"}, "missing"},
		{"one byte differs", map[string]string{"a/x.log": "hellO\n", "b/c/y.log": big}, "differs"},
		{"differs after the first buffer", map[string]string{"a/x.log": "hello\n", "b/c/y.log": big[:len(big)-2] + "X\n"}, "differs"},
		{"short", map[string]string{"a/x.log": "hello\n", "b/c/y.log": big[:len(big)-1]}, "differs"},
		{"long", map[string]string{"a/x.log": "hello\n", "b/c/y.log": big + "more\n"}, "differs"},
	}
	s := t.TempDir()
	writeTree(t, s, src)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			writeTree(t, d, tt.dst)
			err := verifyTree(s, d)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("verifyTree: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("verifyTree = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
	if err := verifyTree(t.TempDir(), s); err == nil {
		t.Error("verifyTree of an empty source: no error")
	}
}

func TestReadGrepOut(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		matches int
		files   int
		wantErr bool
	}{
		{"complete", `{"agent":"a","path":"x.log","line":3,"text":"t"}` + "\n" + `{"agent":"a","path":"y.log","line":9,"text":"t"}` + "\n" + `{"done":true,"matches":2,"files":5}` + "\n", 2, 5, false},
		{"no closing line", `{"agent":"a","path":"x.log","line":3,"text":"t"}` + "\n", 1, 0, true},
		{"not json", "oops\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "out")
			if err := os.WriteFile(p, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			done, n, err := readGrepOut(p)
			if (err != nil) != tt.wantErr || n != tt.matches || (!tt.wantErr && done.Files != tt.files) {
				t.Errorf("readGrepOut = %+v, %d, %v; want %d matches, %d files, error %v", done, n, err, tt.matches, tt.files, tt.wantErr)
			}
		})
	}
}

// TestMarkdownEscapesPipes: a scenario title holding '|' stays one cell.
func TestMarkdownEscapesPipes(t *testing.T) {
	var b strings.Builder
	writeMarkdown(&b, &Report{Scenarios: []*Scenario{{ID: "6d", Title: "FUSE: find -type f | wc -l", Skipped: "no /dev/fuse"}}})
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "| 6d |") {
			if cells := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); cells != 9 {
				t.Fatalf("row %q has %d cell borders, want 9", l, cells)
			}
			return
		}
	}
	t.Fatalf("no row for 6d in:\n%s", b.String())
}

func TestRotSchedule(t *testing.T) {
	steps := rotSchedule(21, 10)
	var rotations, pushes, lines, since, maxGap int
	for i, st := range steps {
		lines += st.write
		if st.rotate {
			rotations++
			since++
		}
		if st.push {
			pushes++
			maxGap = max(maxGap, since)
			since = 0
		}
		if st.write == 0 {
			t.Errorf("step %d writes nothing", i)
		}
	}
	if rotations != 21 || !steps[0].push || steps[0].rotate || !steps[len(steps)-1].push {
		t.Errorf("%d rotations, first %+v, last %+v: want 21, a push before the first rotation and after the last write", rotations, steps[0], steps[len(steps)-1])
	}
	if maxGap != 3 || pushes != 12 {
		t.Errorf("%d pushes, at most %d rotations between two: want 12 and 3", pushes, maxGap)
	}
	if lines != 21*10+10*5+2*10 {
		t.Errorf("%d lines written", lines)
	}
}

func TestFmtSpread(t *testing.T) {
	tests := []struct {
		v    []float64
		f    string
		want string
	}{
		{nil, "%.0f", ""},
		{[]float64{3, 3}, "%.0f", "3"},
		{[]float64{5, 1, 2}, "%.0f", "2 (1..5)"},
		{[]float64{1, 3}, "%.0f", "2 (1..3)"},
		{[]float64{1.001, 0.999}, "%.2f", "1.00"},
	}
	for _, tt := range tests {
		if got := fmtSpread(tt.v, tt.f); got != tt.want {
			t.Errorf("fmtSpread(%v, %q) = %q, want %q", tt.v, tt.f, got, tt.want)
		}
	}
}

// TestLinesTable: a lines scenario goes to its own table, one row per
// contender, skipped rows and failures included, every row 9 cell borders.
func TestLinesTable(t *testing.T) {
	sc := &Scenario{ID: "8a", Kind: "lines", Title: "logrotate create"}
	r := sc.row("syncer push --include '**/*.log'", true, "")
	r.Tallies = []LineTally{{Lines: 10, BytesWritten: 1000, Missing: 4, BytesSent: 600, ArchiveBytes: 600}}
	sc.row("rsyslog", false, "").Skipped = "rsyslog not installed"
	failed := &Scenario{ID: "8b", Kind: "lines", Title: "copytruncate", Error: "historian: no | port"}
	var b strings.Builder
	writeMarkdown(&b, &Report{Scenarios: []*Scenario{sc, failed}})
	out := b.String()
	if strings.Contains(out, "| median |") {
		t.Errorf("the table of times is printed with no timed scenario:\n%s", out)
	}
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "| 8") {
			rows = append(rows, l)
			if cells := strings.Count(strings.ReplaceAll(l, `\|`, ""), "|"); cells != 9 {
				t.Errorf("row %q has %d cell borders, want 9", l, cells)
			}
		}
	}
	if len(rows) != 3 || !strings.Contains(rows[0], `| **syncer push --include '\*\*/\*.log'** | 4 | 0 | 0.60 | 0.60 | 1 |`) ||
		!strings.Contains(rows[1], "skipped: rsyslog not installed") || !strings.Contains(rows[2], "FAILED") {
		t.Errorf("rows:\n%s", strings.Join(rows, "\n"))
	}
}

func TestByteProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got <- string(b)
	}()
	p, err := newByteProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port()))
	if err != nil {
		t.Fatal(err)
	}
	msg := strings.Repeat("<134>1 - host app - - - line\n", 1000)
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if s := <-got; s != msg {
		t.Errorf("the target received %d bytes, want %d", len(s), len(msg))
	}
	if n := p.bytesSent(); n != int64(len(msg)) {
		t.Errorf("bytesSent = %d, want %d", n, len(msg))
	}
}

// TestRsyslogConfigs has rsyslogd validate both configurations (-N1).
func TestRsyslogConfigs(t *testing.T) {
	if _, err := os.Stat(rsyslogdBin); err != nil {
		t.Skip("rsyslogd not installed (apt-get install rsyslog)")
	}
	dir := t.TempDir()
	for name, conf := range map[string]string{
		"sender":          rsyslogSenderConf(dir, filepath.Join(dir, "app.log"), 10514, false),
		"sender-truncate": rsyslogSenderConf(dir, filepath.Join(dir, "app.log"), 10514, true),
		"receiver":        rsyslogReceiverConf(dir, filepath.Join(dir, "out.log"), 10514),
	} {
		p := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(rsyslogdBin, "-N1", "-f", p).CombinedOutput()
		if err != nil || strings.Contains(strings.ToLower(string(out)), "error") {
			t.Errorf("rsyslogd -N1 %s: %v\n%s\n%s", name, err, out, conf)
		}
	}
}

// TestRsyslogPair runs the pair of scenario 8 through one rotation: the
// harness starts, follows, forwards and counts. It checks that lines
// arrive, not how many: those are measured numbers.
func TestRsyslogPair(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two rsyslogd")
	}
	for _, bin := range []string{rsyslogdBin, rotsim.Logrotate} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s not installed (apt-get install rsyslog logrotate)", bin)
		}
	}
	ctx := context.Background()
	st, _ := rotsim.Lookup("create")
	w, err := newRotRun(t.TempDir(), st)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	dir := t.TempDir()
	p, err := startRsyslog(ctx, filepath.Join(dir, "rsyslog"), w.Path(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	if err := w.Write(50); err != nil {
		t.Fatal(err)
	}
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(50); err != nil {
		t.Fatal(err)
	}
	n, err := p.catchUp(ctx, len(w.Lines()), 200*time.Millisecond, 5*time.Second, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p.stop()
	c, err := rotsim.Tally(w.Lines(), filepath.Dir(p.received))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("received %d lines: %v, %d bytes sent", n, c, p.proxy.bytesSent())
	if n == 0 || p.proxy.bytesSent() == 0 {
		t.Errorf("nothing arrived: %d lines, %d bytes sent; sender log: %s", n, p.proxy.bytesSent(), p.sender.logTail())
	}
}

func TestLossWhere(t *testing.T) {
	steps := rotSchedule(2, 4) // writes of 4, 4 (rotation 1), 2, 4 (rotation 2), 4
	var written []string
	for i := 0; i < 18; i++ {
		written = append(written, fmt.Sprint("line ", i))
	}
	lost := map[int]bool{6: true, 7: true, 10: true, 11: true, 12: true, 13: true, 15: true}
	var got []string
	for i, l := range written {
		if !lost[i] {
			got = append(got, l)
		}
	}
	want := "lines 7-8 (the last 2 of write 2, just before rotation 1); lines 11-14 (all of write 4, just before rotation 2); lines 16-16 (1 in the middle of write 5, with no rotation after it)"
	if s := lossWhere(steps, written, got); s != want {
		t.Errorf("lossWhere =\n%s\nwant\n%s", s, want)
	}
	if s := lossWhere(steps, written, written); s != "" {
		t.Errorf("lossWhere with nothing lost = %q", s)
	}
}
