//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/syncer-dev/syncer/internal/rotsim"
)

// Scenario 8: every line exactly once through rotation. Numbered lines are
// appended to app.log, which the real logrotate rotates 20+ times on a
// fixed schedule (internal/rotsim's workload and tally); syncer pushes at fixed points (some with two or three
// rotations between them) and rsyslog (imfile to a central rsyslog over
// TCP) follows the file all along. What came out is counted line by line:
// lines missing and duplicated, bytes sent and archived over bytes written.
// The numbers are reported, never judged: the scenario fails only when the
// harness breaks (a server or client that cannot run, a broken tally).

// rotConfig is one logrotate configuration of scenario 8: a style of
// internal/rotsim (logrotate -f on a private config and state file).
type rotConfig struct {
	id, style string
	what      string // for the title: the style's directives, in words
	truncate  bool   // copytruncate: imfile reopens on truncation
}

var rotConfigs = []rotConfig{
	{id: "8a", style: "create", what: "create"},
	{id: "8b", style: "copytruncate", what: "copytruncate", truncate: true},
	{id: "8c", style: "compress", what: "create, compress without delaycompress"},
}

// rotIncludes are syncer's two include settings for style s: the live log
// alone (the default), and with the style's rotated names matched too.
func rotIncludes(s rotsim.Style) []rotInclude {
	return []rotInclude{
		{key: "log", globs: []string{"**/*.log"}},
		{key: "rot", globs: append([]string{"**/*.log"}, s.Includes...)},
	}
}

// rotInclude is one include setting of syncer.
type rotInclude struct {
	key   string
	globs []string
}

func (inc rotInclude) label() string {
	s := "syncer push"
	for _, g := range inc.globs {
		s += " --include '" + g + "'"
	}
	return s
}

// rotStep is one step of the fixed schedule: write lines to app.log, then
// rotate it, then push (rsyslog: pause as long as syncer's push took).
type rotStep struct {
	write  int
	rotate bool
	push   bool
}

// rotGaps are the rotations between two pushes, in turn.
var rotGaps = []int{1, 3, 2}

// rotSchedule is the schedule of a run with rotations rotations and
// writes of lines lines: a push before the first rotation, pushes after
// one, three or two rotations in turn (each after a few lines in the new
// file), and a last push after a last write.
func rotSchedule(rotations, lines int) []rotStep {
	steps := []rotStep{{write: lines, push: true}}
	gap, since := 0, 0
	for i := 1; i <= rotations; i++ {
		steps = append(steps, rotStep{write: lines, rotate: true})
		since++
		if since == rotGaps[gap%len(rotGaps)] && i < rotations {
			steps = append(steps, rotStep{write: max(lines/2, 1), push: true})
			gap, since = gap+1, 0
		}
	}
	return append(steps, rotStep{write: lines, push: true})
}

// play runs steps on w; push is called at every push point with its index.
func play(ctx context.Context, w *rotsim.Workload, steps []rotStep, push func(k int) error) (rotations, pushes int, err error) {
	for _, st := range steps {
		if ctx.Err() != nil {
			return rotations, pushes, ctx.Err()
		}
		if st.write > 0 {
			if err := w.Write(st.write); err != nil {
				return rotations, pushes, err
			}
		}
		if st.rotate {
			if err := w.Rotate(); err != nil {
				return rotations, pushes, err
			}
			rotations++
		}
		if st.push {
			if err := push(pushes); err != nil {
				return rotations, pushes, err
			}
			pushes++
		}
	}
	return rotations, pushes, nil
}

// rotationScenarios runs scenario 8: one sub-scenario per logrotate
// configuration, each with syncer under both include settings and rsyslog.
func (b *bench) rotationScenarios(ctx context.Context) []*Scenario {
	sz := b.sz
	steps := rotSchedule(sz.RotRotations, sz.RotLines)
	var lines, pushes int
	for _, st := range steps {
		lines += st.write
		if st.push {
			pushes++
		}
	}
	var out []*Scenario
	styles := map[*Scenario]rotsim.Style{}
	for _, cfg := range rotConfigs {
		st, ok := rotsim.Lookup(cfg.style)
		if !ok {
			panic("rotsim has no style " + cfg.style)
		}
		sc := &Scenario{ID: cfg.id, Kind: "lines",
			Title: fmt.Sprintf("logrotate %s, rotate %d: %d rotations, %d pushes", cfg.what, st.Keep, sz.RotRotations, pushes)}
		sc.Setup = fmt.Sprintf("rotsim style %q: %s -f -s STATE CONF, CONF: rotate %d, missingok, %s; %d numbered lines appended to app.log in %d writes; pushes after %v rotations in turn",
			st.Name, rotsim.Logrotate, st.Keep, strings.ReplaceAll(st.Directives, "\n", ", "), lines, len(steps), rotGaps)
		if err := st.Check(); err != nil {
			sc.Skipped = err.Error()
		}
		styles[sc] = st
		out = append(out, sc)
	}
	if why := b.peers["logrotate"]; why != "" {
		for _, sc := range out {
			sc.Skipped = "logrotate " + why
		}
		return out
	}
	rounds := sz.Rounds
	if sz.RotRounds > 0 {
		rounds = min(rounds, sz.RotRounds)
	}
	type rowSet struct {
		incs    []rotInclude
		syncer  []*Row // by incs
		rsyslog *Row
		useRsys bool
	}
	rows := map[*Scenario]*rowSet{}
	var accounts []string
	for i, cfg := range rotConfigs {
		sc := out[i]
		rs := &rowSet{incs: rotIncludes(styles[sc])}
		for _, inc := range rs.incs {
			rs.syncer = append(rs.syncer, sc.row(inc.label(), true, ""))
			for r := 0; r < rounds; r++ {
				accounts = append(accounts, rotAcct(cfg, inc, r))
			}
		}
		rs.rsyslog = sc.row("rsyslog imfile → omfwd TCP → imtcp", false, "")
		rs.useRsys = b.has("rsyslog", rs.rsyslog)
		rows[sc] = rs
	}
	h, err := b.startHistorian(ctx, "rot", accounts, "")
	if err != nil {
		for _, sc := range out {
			sc.failf("historian: %v", err)
		}
		return out
	}
	defer h.srv.stop()

	var allPauses []time.Duration
	for round, t0 := 0, time.Now(); round < rounds && b.more(ctx, round, t0); round++ {
		for i, cfg := range rotConfigs {
			sc, rs := out[i], rows[out[i]]
			if sc.Error != "" || sc.Skipped != "" || ctx.Err() != nil {
				continue
			}
			var pushTimes [][]time.Duration
			for j, inc := range rs.incs {
				t, times, err := b.rotSyncerRun(ctx, h, styles[sc], inc, rotAcct(cfg, inc, round), steps)
				if err != nil {
					sc.failf("%s: %v", inc.label(), err)
					break
				}
				rs.syncer[j].Tallies = append(rs.syncer[j].Tallies, t)
				pushTimes = append(pushTimes, times)
				b.log.Info("run", "scenario", cfg.id, "round", round, "contender", "syncer-"+inc.key,
					"missing", t.Missing, "duplicated", t.Duplicated, "failed_pushes", t.FailedPushes)
			}
			if sc.Error != "" || !rs.useRsys {
				continue
			}
			pauses := meanPerPush(pushTimes, pushes)
			allPauses = append(allPauses, pauses...)
			t, err := b.rotRsyslogRun(ctx, styles[sc], cfg.truncate, steps, pauses)
			if err != nil {
				sc.failf("rsyslog: %v", err)
				continue
			}
			rs.rsyslog.Tallies = append(rs.rsyslog.Tallies, t)
			b.log.Info("run", "scenario", cfg.id, "round", round, "contender", "rsyslog",
				"missing", t.Missing, "duplicated", t.Duplicated)
		}
	}

	first := out[0]
	first.Notes = append(first.Notes,
		"syncer: a fresh agent per run, `syncer push --json` at every push point (default --parallel 4); bytes sent: the sum of bytes_sent; archive: every file under <root>/<agent>/ outside .syncer/ (superseded versions included, .gz decompressed for the lines)",
		"rsyslog: two private rsyslogd -n (own config, work directory and pid file; no imuxsock, imklog or /dev/log) on loopback; sender: imfile on app.log (inotify mode, one File, no wildcard, freshStartTail off, reopenOnTruncate on for copytruncate only) → omfwd TCP, RFC 5424 (RSYSLOG_SyslogProtocol23Format), action queue LinkedList with resumeRetryCount -1; receiver: imtcp → omfile with template %msg%\\n; bytes sent: TCP bytes towards the receiver (an RFC 5424 header per line), counted by a proxy between the two",
		fmt.Sprintf("writes and rotations follow each other with no pause (a rotation comes a few ms after its write, as long as logrotate takes to start); rsyslog runs the same schedule all along, pausing at each push point as long as syncer's pushes took there (median %s); counted once the received file has stopped growing (or after %s without growth, at most %s)",
			medianDur(allPauses), sz.RotIdle, sz.RotCatchUp),
		"lines missing: distinct written lines found nowhere (in syncer's archive or the receiver's file); duplicated: distinct written lines found more than once (internal/rotsim's Tally)")
	for _, sc := range out {
		rs := rows[sc]
		for _, r := range append(append([]*Row(nil), rs.syncer...), rs.rsyslog) {
			if n := sumTally(r.Tallies, func(t LineTally) int { return t.FailedPushes }); n > 0 {
				sc.Notes = append(sc.Notes, fmt.Sprintf("%s: %d pushes exited 1 (some files failed), over %d runs", r.Contender, n, len(r.Tallies)))
			}
			if n := sumTally(r.Tallies, func(t LineTally) int { return t.Stray }); n > 0 {
				sc.Notes = append(sc.Notes, fmt.Sprintf("%s: %d delivered lines were never written (torn or merged), over %d runs", r.Contender, n, len(r.Tallies)))
			}
			for k, t := range r.Tallies {
				if t.MissingWhere != "" && !r.Syncer {
					sc.Notes = append(sc.Notes, fmt.Sprintf("%s, run %d of %d: %d missing: %s", r.Contender, k+1, len(r.Tallies), t.Missing, t.MissingWhere))
				}
			}
			if n := sumTally(r.Tallies, func(t LineTally) int { return t.BrokenGzip }); n > 0 {
				sc.Notes = append(sc.Notes, fmt.Sprintf("%s: %d archived .gz files did not decompress to the end, over %d runs", r.Contender, n, len(r.Tallies)))
			}
		}
		if styles[sc].Compressed {
			sc.Notes = append(sc.Notes, "archive bytes are the bytes stored: a .gz a contender archived counts compressed (below 1.00 for a complete archive)")
		}
	}
	return out
}

func rotAcct(cfg rotConfig, inc rotInclude, round int) string {
	return fmt.Sprintf("s%s-%s-%d", cfg.id, inc.key, round)
}

// newRotRun makes a run's log directory under dir with an empty app.log
// (as the application creates it when it starts) and its Workload.
func newRotRun(dir string, st rotsim.Style) (*rotsim.Workload, error) {
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	w, err := rotsim.New(logs, st, rotsim.Options{})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(w.Path(), nil, 0o644); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// fill copies a Tally's count and the workload's totals into t.
func (t *LineTally) fill(w *rotsim.Workload, c rotsim.Count) {
	t.Lines, t.BytesWritten, t.Rotations = c.Written, w.BytesWritten(), w.Rotations()
	t.Missing, t.Duplicated, t.Stray, t.BrokenGzip, t.ArchiveBytes = c.Missing, c.Duplicated, c.Extra, len(c.Broken), c.Bytes
}

// rotSyncerRun plays the schedule with a syncer push at every push point
// and counts the lines in the agent's archive. It returns each push's
// wall time.
func (b *bench) rotSyncerRun(ctx context.Context, h *historian, st rotsim.Style, inc rotInclude, acct string, steps []rotStep) (LineTally, []time.Duration, error) {
	dir := b.scratch("rot-" + acct)
	defer os.RemoveAll(dir)
	w, err := newRotRun(dir, st)
	if err != nil {
		return LineTally{}, nil, err
	}
	defer w.Close()
	var t LineTally
	var times []time.Duration
	args := []string{"push", "--server", fmt.Sprintf("ftp://127.0.0.1:%d", h.ftp), "--user", acct,
		"--agent-id", acct, "--dir", filepath.Dir(w.Path()), "--state", filepath.Join(dir, "agent-state"), "--json"}
	for _, g := range inc.globs {
		args = append(args, "--include", g)
	}
	push := func(int) error {
		res, err := run(ctx, cmdSpec{Name: b.syncer, Args: args, Env: []string{"SYNCER_PASSWORD=" + h.pw}, Timeout: b.sz.ScenarioTimeout})
		times = append(times, time.Duration(res.Seconds*float64(time.Second)))
		var ee *exec.ExitError
		partial := err != nil && errors.As(err, &ee) && ee.ExitCode() == 1 // some files failed: measured, not a break
		if err != nil && !partial {
			return err
		}
		var s pushSummary
		if jerr := json.Unmarshal(res.Stdout, &s); jerr != nil {
			return fmt.Errorf("syncer push --json: %w: %.200q", jerr, res.Stdout)
		}
		t.BytesSent += s.BytesSent
		if partial {
			t.FailedPushes++
		}
		return nil
	}
	if _, t.Pushes, err = play(ctx, w, steps, push); err != nil {
		return t, times, err
	}
	archive := filepath.Join(h.root, acct)
	c, err := rotsim.Tally(w.Lines(), archive)
	if err != nil {
		return t, times, err
	}
	os.RemoveAll(archive)
	t.fill(w, c)
	return t, times, nil
}

// rotRsyslogRun plays the schedule while the rsyslog pair follows app.log,
// pausing at push point k for pauses[k], and counts the lines the receiver
// wrote once it has caught up.
func (b *bench) rotRsyslogRun(ctx context.Context, st rotsim.Style, truncate bool, steps []rotStep, pauses []time.Duration) (LineTally, error) {
	dir := b.scratch("rot-rsyslog-" + st.Name)
	defer os.RemoveAll(dir)
	w, err := newRotRun(dir, st)
	if err != nil {
		return LineTally{}, err
	}
	defer w.Close()
	p, err := startRsyslog(ctx, filepath.Join(dir, "rsyslog"), w.Path(), truncate)
	if err != nil {
		return LineTally{}, err
	}
	defer p.stop()
	var t LineTally
	pause := func(k int) error {
		d := 250 * time.Millisecond // no syncer timing to copy
		if k < len(pauses) && pauses[k] > 0 {
			d = pauses[k]
		}
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if _, _, err = play(ctx, w, steps, pause); err != nil {
		return t, err
	}
	if _, err := p.catchUp(ctx, len(w.Lines()), 500*time.Millisecond, b.sz.RotIdle, b.sz.RotCatchUp); err != nil {
		return t, err
	}
	p.stop()
	c, err := rotsim.Tally(w.Lines(), filepath.Dir(p.received))
	if err != nil {
		return t, err
	}
	t.fill(w, c)
	t.BytesSent = p.proxy.bytesSent()
	if c.Missing > 0 {
		got, err := rotsim.LinesOnDisk(filepath.Dir(p.received))
		if err != nil {
			return t, err
		}
		t.MissingWhere = lossWhere(steps, w.Lines(), got)
	}
	return t, nil
}

// lossWhere says where in the schedule the written lines missing from got
// were written: "lines 5205-5500 (the last 296 of write 7, just before
// rotation 5)", one range after another. Lines are numbered from 1.
func lossWhere(steps []rotStep, written, got []string) string {
	have := make(map[string]bool, len(got))
	for _, l := range got {
		have[l] = true
	}
	// The schedule's writes, as ranges of line indexes.
	type write struct{ first, last, n, rotation int }
	var writes []write
	next, rotations := 0, 0
	for _, st := range steps {
		if st.write > 0 {
			wr := write{first: next, last: next + st.write - 1, n: len(writes) + 1}
			if st.rotate {
				wr.rotation = rotations + 1
			}
			writes = append(writes, wr)
			next += st.write
		}
		if st.rotate {
			rotations++
		}
	}
	var parts []string
	for _, wr := range writes {
		for i := wr.first; i <= wr.last && i < len(written); i++ {
			if have[written[i]] {
				continue
			}
			j := i
			for j+1 <= wr.last && j+1 < len(written) && !have[written[j+1]] {
				j++
			}
			what := "all"
			switch {
			case i == wr.first && j == wr.last:
			case j == wr.last:
				what = fmt.Sprintf("the last %d", j-i+1)
			case i == wr.first:
				what = fmt.Sprintf("the first %d", j-i+1)
			default:
				what = fmt.Sprintf("%d in the middle", j-i+1)
			}
			when := "with no rotation after it"
			if wr.rotation > 0 {
				when = fmt.Sprintf("just before rotation %d", wr.rotation)
			}
			parts = append(parts, fmt.Sprintf("lines %d-%d (%s of write %d, %s)", i+1, j+1, what, wr.n, when))
			i = j
		}
	}
	return strings.Join(parts, "; ")
}

// meanPerPush is, for each of n push points, the mean of the runs' times.
func meanPerPush(runs [][]time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for k := range out {
		var sum time.Duration
		var m int
		for _, r := range runs {
			if k < len(r) {
				sum += r[k]
				m++
			}
		}
		if m > 0 {
			out[k] = sum / time.Duration(m)
		}
	}
	return out
}

func medianDur(v []time.Duration) string {
	if len(v) == 0 {
		return "-"
	}
	w := append([]time.Duration(nil), v...)
	sort.Slice(w, func(i, j int) bool { return w[i] < w[j] })
	return w[len(w)/2].Round(time.Millisecond).String()
}

func sumTally(ts []LineTally, f func(LineTally) int) int {
	n := 0
	for _, t := range ts {
		n += f(t)
	}
	return n
}
