//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Scenario 9 (issue 17): the log viewer's timeline and content search over
// an archive of many agents' logs spanning a day, against the tools a
// shell user has: lnav, grep + sort, ripgrep.
//
// The archive: TLFiles files of about TLFileBytes each, under 20 agents
// (5 with -quick); four in five span the measured day (one line every few
// seconds, in UTC with a Z), one in five an earlier day (rotated history:
// the index's time spans let the viewer skip them). Every 4,000th line
// of a 2 MiB file (proportionally fewer in larger ones; every 50th with
// -quick) carries tlPattern.

// tlDay is the day the archive spans.
var tlDay = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

// tlPattern is the content search's needle.
const tlPattern = "code=E4711"

// tlGen writes the archive and returns its bytes.
func tlGen(root string, files int, fileBytes int64) (int64, error) {
	// A larger archive (TL_GIB) keeps the matches per file, not per line,
	// so that 9b's answer stays under the API's MaxGrepMatches.
	agents, period := 20, max(4000, 4000*fileBytes/(2<<20))
	if files < 100 {
		agents, period = 5, 50
	}
	levels := []string{"INFO ", "INFO ", "INFO ", "DEBUG", "INFO ", "WARN "}
	var total int64
	for i := 0; i < files; i++ {
		day := tlDay
		if i%5 == 4 {
			day = tlDay.AddDate(0, 0, -1-i%3)
		}
		p := filepath.Join(root, fmt.Sprintf("node%02d", i%agents), "app", fmt.Sprintf("svc-%04d.log", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		f, err := os.Create(p)
		if err != nil {
			return 0, err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		rng := rand.New(rand.NewPCG(uint64(i), 17))
		lines := fileBytes / 110
		step := 24 * time.Hour / time.Duration(lines)
		var n int64
		for k := int64(0); k < lines; k++ {
			t := day.Add(time.Duration(k)*step + time.Duration(rng.IntN(int(step/time.Millisecond)))*time.Millisecond)
			lvl := levels[rng.IntN(len(levels))]
			if k%500 == 7 {
				lvl = "ERROR"
			}
			extra := ""
			if (int64(i)*7+k)%period == 0 {
				extra = " " + tlPattern
			}
			m, _ := fmt.Fprintf(w, "%s %s [svc-%04d] request id=%d path=/v1/items/%d status=200 took=%dms%s\n",
				t.Format("2006-01-02T15:04:05.000Z"), lvl, i, k, rng.IntN(10000), rng.IntN(900), extra)
			n += int64(m)
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return 0, err
		}
		if err := f.Close(); err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func (b *bench) timelineScenarios(ctx context.Context) []*Scenario {
	sz := b.sz
	tl := &Scenario{ID: "9a", Title: fmt.Sprintf("viewer: timeline, first 100 lines of a 5-minute window, %d files spanning a day", sz.TLFiles)}
	gr := &Scenario{ID: "9b", Title: fmt.Sprintf("viewer: content search over %d files", sz.TLFiles)}
	gt := &Scenario{ID: "9c", Title: "viewer: content search within one hour of the day"}
	all := []*Scenario{tl, gr, gt}
	fail := func(format string, args ...any) []*Scenario {
		for _, s := range all {
			s.failf(format, args...)
		}
		return all
	}
	if b.peers["curl"] != "" {
		for _, s := range all {
			s.Skipped = "curl " + b.peers["curl"]
		}
		return all
	}
	root := filepath.Join(b.work, "tl-root")
	total, err := tlGen(root, sz.TLFiles, sz.TLFileBytes)
	if err != nil {
		return fail("generate: %v", err)
	}
	defer os.RemoveAll(root)
	state := filepath.Join(b.work, "tl-state")
	ftpPort, err := freePort()
	if err != nil {
		return fail("%v", err)
	}
	httpPort, err := freePort()
	if err != nil {
		return fail("%v", err)
	}
	// lnav reads the archive where a shell user would: on syncer's FUSE
	// view (serve --mount), which needs root and /dev/fuse; elsewhere on
	// the archive directory.
	args := []string{"serve", "--root", root, "--state", state, "--ftp", fmt.Sprintf("127.0.0.1:%d", ftpPort), "--http", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--http-no-login"}
	lnavDir, lnavWhere := root, "the disk"
	if _, err := os.Stat("/dev/fuse"); err == nil && os.Geteuid() == 0 {
		lnavDir, lnavWhere = filepath.Join(b.work, "tl-mnt"), "the FUSE mount"
		if err := os.MkdirAll(lnavDir, 0o755); err != nil {
			return fail("%v", err)
		}
		args = append(args, "--mount", lnavDir)
	}
	srv, err := startServer("syncer serve", filepath.Join(b.work, "tl-serve.log"), nil, b.syncer, args...)
	if err != nil {
		return fail("%v", err)
	}
	defer srv.stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	if err := waitHTTP(ctx, srv, base+"/healthz"); err != nil {
		return fail("%v", err)
	}
	// The index (and its time spans) is built from the disk at start.
	deadline := time.Now().Add(30 * time.Minute)
	for {
		res, err := run(ctx, cmdSpec{Name: "curl", Args: []string{"-sf", base + "/healthz"}})
		if err == nil && string(res.Stdout) == "ok" {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !srv.alive() {
			return fail("the index did not catch up with the archive: %s", srv.logTail())
		}
		time.Sleep(500 * time.Millisecond)
	}
	for lnavDir != root {
		if _, err := os.Stat(filepath.Join(lnavDir, "node00", "app")); err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !srv.alive() {
			return fail("the FUSE view did not appear at %s: %s", lnavDir, srv.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = catTree(root)
	hasLnav := exec.Command("lnav", "-V").Run() == nil
	hasRg := exec.Command("rg", "--version").Run() == nil

	// 9a. The window 14:00-14:05 of the day.
	since, until := tlDay.Add(14*time.Hour), tlDay.Add(14*time.Hour+5*time.Minute)
	tl.Setup = fmt.Sprintf("%d files, %s, 4 in 5 spanning %s; the first 100 lines of [14:00, 14:05) in time order; page cache warm", sz.TLFiles, fmtBytes(total), tlDay.Format("2006-01-02"))
	tlURL := base + "/api/v1/timeline?" + url.Values{"since": {since.Format(time.RFC3339)}, "until": {until.Format(time.RFC3339)}, "max": {"100"}}.Encode()
	apiRow := tl.row("GET /api/v1/timeline (syncer serve)", true, "ms")
	grepRow := tl.row("grep -rh + sort | head (the disk)", false, "ms")
	var lnavRow *Row
	if hasLnav {
		lnavRow = tl.row("lnav -n, SQL over all_logs ("+lnavWhere+")", false, "ms")
	} else {
		tl.Notes = append(tl.Notes, "lnav not installed (Debian package lnav): its row is left out")
	}
	prefix := "^" + since.Format("2006-01-02T15:0") + "[0-4]"
	grepCmd := fmt.Sprintf("LC_ALL=C grep -rh '%s' %s | LC_ALL=C sort | head -n 100", prefix, root)
	lnavHome := filepath.Join(b.work, "lnav-home")
	_ = os.MkdirAll(lnavHome, 0o755)
	lnavSQL := fmt.Sprintf(";SELECT log_time, log_path, log_raw_text FROM all_logs WHERE log_time >= '%s' AND log_time < '%s' ORDER BY log_time LIMIT 100",
		since.Format("2006-01-02 15:04:05"), until.Format("2006-01-02 15:04:05"))
	lnavCmd := fmt.Sprintf("ulimit -n 16384; exec lnav -n -c %q -c ':write-csv-to -' %s/*/app/*.log", lnavSQL, lnavDir)
	out := filepath.Join(b.work, "tl.out")
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0) && tl.Error == ""; round++ {
		res, err := run(ctx, cmdSpec{Name: "curl", Args: []string{"-sf", tlURL}, OutFile: out})
		if err != nil {
			tl.failf("timeline: %v", err)
			break
		}
		apiRow.add(res.Seconds*1000, 0)
		body, _ := os.ReadFile(out)
		if n := bytes.Count(body, []byte("\n")); n != 101 {
			tl.failf("timeline: %d lines, want 100 and the trailer: %.300s", n-1, body)
			break
		}
		if round == 0 {
			last := body[bytes.LastIndexByte(body[:len(body)-1], '\n')+1:]
			tl.Notes = append(tl.Notes, "syncer's trailer: "+strings.TrimSpace(string(last)))
		}
		res, err = run(ctx, cmdSpec{Name: "sh", Args: []string{"-c", grepCmd}})
		if err != nil {
			tl.failf("grep + sort: %v", err)
			break
		}
		if n := bytes.Count(res.Stdout, []byte("\n")); n != 100 {
			tl.failf("grep + sort: %d lines, want 100", n)
			break
		}
		grepRow.add(res.Seconds*1000, res.RSSKiB)
		if lnavRow != nil {
			res, err = run(ctx, cmdSpec{Name: "sh", Args: []string{"-c", lnavCmd}, Env: []string{"HOME=" + lnavHome}, Timeout: 20 * time.Minute})
			if err != nil {
				tl.Notes = append(tl.Notes, "lnav failed: "+oneLine(err.Error()))
				lnavRow.Skipped = "failed"
				lnavRow = nil
			} else if n := bytes.Count(res.Stdout, []byte("\n")); n != 101 {
				tl.Notes = append(tl.Notes, fmt.Sprintf("lnav printed %d rows, want 100 and a header: %.200s", n-1, res.Stdout))
				lnavRow.Skipped = "wrong answer"
				lnavRow = nil
			} else {
				lnavRow.add(res.Seconds*1000, res.RSSKiB)
			}
		}
	}

	// 9b. Content search over every file: the API against ripgrep.
	gr.Setup = fmt.Sprintf("GET /api/v1/grep?q=%s (NDJSON, curl) against rg -n and grep -rn on the archive directory; %s; match counts compared", tlPattern, fmtBytes(total))
	gURL := base + "/api/v1/grep?" + url.Values{"q": {tlPattern}, "max": {"100000"}, "timeout": {"60s"}}.Encode()
	apiG := gr.row("GET /api/v1/grep (syncer serve)", true, "s")
	apiG.PayloadBytes = total
	var rgRow *Row
	if hasRg {
		rgRow = gr.row("rg -n (the disk)", false, "s")
		rgRow.PayloadBytes = total
	} else {
		gr.Notes = append(gr.Notes, "rg not installed (Debian package ripgrep): its row is left out")
	}
	grepR := gr.row("grep -rn (the disk)", false, "s")
	grepR.PayloadBytes = total
	apiOut, peerOut := filepath.Join(b.work, "tl-api.out"), filepath.Join(b.work, "tl-peer.out")
	want := -1
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0) && gr.Error == ""; round++ {
		res, err := run(ctx, cmdSpec{Name: "curl", Args: []string{"-sf", gURL}, OutFile: apiOut, Timeout: 2 * time.Minute})
		if err != nil {
			gr.failf("api grep: %v", err)
			break
		}
		apiG.add(res.Seconds, 0)
		done, matches, err := readGrepOut(apiOut)
		if err != nil || done.Reason != "" {
			gr.failf("api grep: %v %+v", err, done)
			break
		}
		res, err = run(ctx, cmdSpec{Name: "grep", Args: []string{"-rn", tlPattern, root}, OutFile: peerOut, Timeout: 2 * time.Minute})
		if err != nil {
			gr.failf("grep -rn: %v", err)
			break
		}
		grepR.add(res.Seconds, res.RSSKiB)
		want = countLines(peerOut)
		if rgRow != nil {
			res, err = run(ctx, cmdSpec{Name: "rg", Args: []string{"-n", "--no-heading", tlPattern, root}, OutFile: peerOut, Timeout: 2 * time.Minute})
			if err != nil {
				gr.failf("rg: %v", err)
				break
			}
			rgRow.add(res.Seconds, res.RSSKiB)
			if n := countLines(peerOut); n != want {
				gr.failf("rg found %d lines, grep %d", n, want)
			}
		}
		if matches != want || want == 0 {
			gr.failf("api grep found %d lines, grep -rn %d", matches, want)
		}
	}
	if want > 0 {
		gr.Notes = append(gr.Notes, fmt.Sprintf("%d matching lines", want))
	}

	// 9c. The same search within 14:00-15:00: the API skips the files of
	// other days unopened and enters the others by binary search; rg has
	// no notion of time and reads everything (its time is 9b's).
	hs, hu := tlDay.Add(14*time.Hour), tlDay.Add(15*time.Hour)
	gt.Setup = fmt.Sprintf("GET /api/v1/grep?q=%s&since=%s&until=%s against rg -n over the whole archive (rg cannot limit by time); matches compared with rg's lines of that hour", tlPattern, hs.Format(time.RFC3339), hu.Format(time.RFC3339))
	rURL := base + "/api/v1/grep?" + url.Values{"q": {tlPattern}, "since": {hs.Format(time.RFC3339)}, "until": {hu.Format(time.RFC3339)}, "max": {"100000"}, "timeout": {"60s"}}.Encode()
	apiT := gt.row("GET /api/v1/grep with since/until (syncer serve)", true, "s")
	var rgT *Row
	peer, peerArgs := "grep", []string{"-rn", tlPattern, root}
	if hasRg {
		rgT = gt.row("rg -n, whole archive (the disk)", false, "s")
		peer, peerArgs = "rg", []string{"-n", "--no-heading", tlPattern, root}
	} else {
		rgT = gt.row("grep -rn, whole archive (the disk)", false, "s")
	}
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0) && gt.Error == ""; round++ {
		res, err := run(ctx, cmdSpec{Name: "curl", Args: []string{"-sf", rURL}, OutFile: apiOut, Timeout: 2 * time.Minute})
		if err != nil {
			gt.failf("api grep: %v", err)
			break
		}
		apiT.add(res.Seconds, 0)
		done, matches, err := readGrepOut(apiOut)
		if err != nil || done.Reason != "" {
			gt.failf("api grep: %v %+v", err, done)
			break
		}
		res, err = run(ctx, cmdSpec{Name: peer, Args: peerArgs, OutFile: peerOut, Timeout: 2 * time.Minute})
		if err != nil {
			gt.failf("%s: %v", peer, err)
			break
		}
		rgT.add(res.Seconds, res.RSSKiB)
		body, _ := os.ReadFile(peerOut)
		inHour := bytes.Count(body, []byte(":"+hs.Format("2006-01-02T15")))
		if matches != inHour || inHour == 0 {
			gt.failf("api grep found %d lines in the hour, %s %d", matches, peer, inHour)
		}
		if round == 0 {
			gt.Notes = append(gt.Notes, fmt.Sprintf("%d matching lines in the hour; the API read %d of %d files", matches, done.Files, sz.TLFiles))
		}
	}
	return all
}
