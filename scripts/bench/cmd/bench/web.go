//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// grepPattern is rare enough (about one line in 1,600) that the search
// never stops at the API's match limit: both sides read every byte.
const grepPattern = `status=500 took=199[0-9]ms`

// webScenarios: /raw download against curl file://, a directory listing
// through the JSON API against reading the directory, and content search
// through the API against grep -r, all on one `syncer serve` whose index
// was built from the archive on disk at start.
func (b *bench) webScenarios(ctx context.Context) []*Scenario {
	sz := b.sz
	a := &Scenario{ID: "7a", Title: fmt.Sprintf("web: download a %s log", fmtBytes(sz.WebBytes))}
	l := &Scenario{ID: "7b", Title: fmt.Sprintf("web: list a directory of %d files", sz.WebList)}
	g := &Scenario{ID: "7c", Title: fmt.Sprintf("web: content search over %d logs", sz.WebGrepFiles)}
	all := []*Scenario{a, l, g}
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
	root := filepath.Join(b.work, "web-root")
	rawDir := filepath.Join(root, "rawnode")
	if err := b.genTree(ctx, rawDir, 1, strconv.FormatInt(sz.WebBytes, 10)+"B"); err != nil {
		return fail("generate: %v", err)
	}
	var rawRel string
	_ = filepath.WalkDir(rawDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rawRel, _ = filepath.Rel(root, p)
		}
		return nil
	})
	listDir := filepath.Join(root, "listnode", "big")
	if err := os.MkdirAll(listDir, 0o755); err != nil {
		return fail("%v", err)
	}
	for i := 0; i < sz.WebList; i++ {
		if err := os.WriteFile(filepath.Join(listDir, fmt.Sprintf("part-%05d.log", i)), []byte("x\n"), 0o644); err != nil {
			return fail("%v", err)
		}
	}
	grepDir := filepath.Join(root, "grepnode")
	if err := b.genTree(ctx, grepDir, sz.WebGrepFiles, sz.WebGrepSize); err != nil {
		return fail("generate: %v", err)
	}
	defer os.RemoveAll(root)

	state := filepath.Join(b.work, "web-state")
	ftpPort, err := freePort()
	if err != nil {
		return fail("%v", err)
	}
	httpPort, err := freePort()
	if err != nil {
		return fail("%v", err)
	}
	srv, err := startServer("syncer serve", filepath.Join(b.work, "web-serve.log"), nil, b.syncer, "serve",
		"--root", root, "--state", state, "--ftp", fmt.Sprintf("127.0.0.1:%d", ftpPort), "--http", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--http-no-login") // the login's cost is not what this measures
	if err != nil {
		return fail("%v", err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	defer func() {
		rss := srv.stop()
		for _, s := range all {
			for _, r := range s.Rows {
				if r.Syncer {
					r.RSSKiB, r.RSSWhat = rss, "serve, all of 7"
				}
			}
		}
	}()
	if err := waitHTTP(ctx, srv, base+"/healthz"); err != nil {
		return fail("%v", err)
	}
	hc := &http.Client{Timeout: 2 * time.Minute}
	listURL := base + "/api/v1/files/listnode/big?limit=" + strconv.Itoa(sz.WebList)
	// The index is built from the disk at start: wait until it has it all.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		n, err := countItems(hc, listURL, "entries")
		if err == nil && n == sz.WebList {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !srv.alive() {
			return fail("the index did not list %d files (last: %d, %v): %s", sz.WebList, n, err, srv.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	searchURL := base + "/api/v1/search?" + url.Values{"name": {"*.log"}, "agent": {"grepnode"}, "limit": {"10000"}}.Encode()
	for {
		n, err := countItems(hc, searchURL, "results")
		if err == nil && n == sz.WebGrepFiles {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !srv.alive() {
			return fail("the index did not find %d files of the search tree (last: %d, %v): %s", sz.WebGrepFiles, n, err, srv.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// 7a: /raw against file://, both with curl, page cache warm.
	rawFile := filepath.Join(root, rawRel)
	_ = catFile(rawFile)
	a.Setup = "curl -sf -o /dev/null; the file is a gen-logs log, page cache warm; every download's size is checked"
	rawRow, fileRow := a.row("curl /raw/… (syncer serve)", true, "s"), a.row("curl file:// (the disk)", false, "s")
	rawRow.PayloadBytes, fileRow.PayloadBytes = sz.WebBytes, sz.WebBytes
	dl := func(u string) (float64, error) {
		res, err := run(ctx, cmdSpec{Name: "curl", Args: []string{"-sf", "-o", "/dev/null", "-w", "%{size_download}", u}, Timeout: b.sz.ScenarioTimeout})
		if err != nil {
			return 0, err
		}
		if got := strings.TrimSpace(string(res.Stdout)); got != strconv.FormatInt(sz.WebBytes, 10) {
			return 0, fmt.Errorf("%s: got %s bytes, want %d", u, got, sz.WebBytes)
		}
		return res.Seconds, nil
	}
	rawURL := base + "/raw/" + (&url.URL{Path: filepath.ToSlash(rawRel)}).EscapedPath()
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0) && a.Error == ""; round++ {
		pair := []struct {
			r *Row
			u string
		}{{rawRow, rawURL}, {fileRow, "file://" + rawFile}}
		for i := range pair {
			p := pair[(i+round)%2]
			s, err := dl(p.u)
			if err != nil {
				a.failf("%v", err)
				break
			}
			p.r.Samples = append(p.r.Samples, s)
		}
	}

	// 7b: one listing per request, keep-alive client in this process,
	// against reading the directory and stat-ing every entry (ls -l).
	l.Setup = fmt.Sprintf("GET /api/v1/files/listnode/big?limit=%d from a keep-alive client, %d per round; floor: readdir + lstat of every entry", sz.WebList, sz.ListPerRound)
	apiRow, dirRow := l.row("GET /api/v1/files (syncer serve)", true, "ms"), l.row("readdir + lstat (ls -l floor)", false, "ms")
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0) && l.Error == ""; round++ {
		for k := 0; k < sz.ListPerRound; k++ {
			t0 := time.Now()
			n, err := countItems(hc, listURL, "entries")
			d := time.Since(t0)
			if err != nil || n != sz.WebList {
				l.failf("listing: %d entries, %v", n, err)
				break
			}
			apiRow.Samples = append(apiRow.Samples, float64(d.Microseconds())/1000)
			t0 = time.Now()
			n, err = readDirStat(listDir)
			d = time.Since(t0)
			if err != nil || n != sz.WebList {
				l.failf("readdir: %d entries, %v", n, err)
				break
			}
			dirRow.Samples = append(dirRow.Samples, float64(d.Microseconds())/1000)
		}
	}

	// 7c: content search, the API against grep -r; both must find the same
	// number of lines.
	g.Setup = fmt.Sprintf("GET /api/v1/grep?q=%s&agent=grepnode (NDJSON, curl) against grep -rn on the archive directory; gen-logs -size %s; match counts compared", grepPattern, sz.WebGrepSize)
	apiG, grepRow := g.row("GET /api/v1/grep (syncer serve)", true, "s"), g.row("grep -rn (the disk)", false, "s")
	var grepBytes int64
	_ = filepath.WalkDir(grepDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				grepBytes += fi.Size()
			}
		}
		return nil
	})
	apiG.PayloadBytes, grepRow.PayloadBytes = grepBytes, grepBytes
	_ = catTree(grepDir)
	gURL := base + "/api/v1/grep?" + url.Values{"q": {grepPattern}, "agent": {"grepnode"}, "max": {"10000"}, "timeout": {"60s"}}.Encode()
	apiOut, grepOut := filepath.Join(b.work, "api-grep.out"), filepath.Join(b.work, "grep.out")
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0) && g.Error == ""; round++ {
		for i := 0; i < 2; i++ {
			if (i+round)%2 == 0 {
				res, err := run(ctx, cmdSpec{Name: "curl", Args: []string{"-sf", gURL}, OutFile: apiOut, Timeout: 2 * time.Minute})
				if err != nil {
					g.failf("api grep: %v", err)
					break
				}
				apiG.add(res.Seconds, 0)
			} else {
				res, err := run(ctx, cmdSpec{Name: "grep", Args: []string{"-rn", grepPattern, grepDir}, OutFile: grepOut, Timeout: 2 * time.Minute})
				if err != nil {
					g.failf("grep -r: %v", err)
					break
				}
				grepRow.add(res.Seconds, res.RSSKiB)
			}
		}
		if g.Error != "" {
			break
		}
		done, matches, err := readGrepOut(apiOut)
		switch {
		case err != nil:
			g.failf("api grep output: %v", err)
		case done.Reason != "" || done.Files != sz.WebGrepFiles:
			g.failf("api grep ended early: reason %q, %d of %d files", done.Reason, done.Files, sz.WebGrepFiles)
		case matches != countLines(grepOut) || done.Matches != matches:
			g.failf("api grep found %d lines (done says %d), grep -r %d", matches, done.Matches, countLines(grepOut))
		case matches == 0:
			g.failf("no line matched %q: the comparison means nothing", grepPattern)
		}
		if round == 0 && g.Error == "" {
			g.Notes = append(g.Notes, fmt.Sprintf("%d matching lines in %s", matches, fmtBytes(grepBytes)))
		}
	}
	return all
}

// countItems fetches the JSON document at u and returns the length of its
// array field (entries of a listing, results of a search).
func countItems(hc *http.Client, u, field string) (int, error) {
	resp, err := hc.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("%s: %s", u, resp.Status)
	}
	var doc map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return 0, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(doc[field], &items); err != nil {
		return 0, fmt.Errorf("%s: field %s: %w", u, field, err)
	}
	return len(items), nil
}

func readDirStat(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if _, err := os.Lstat(filepath.Join(dir, e.Name())); err != nil {
			return 0, err
		}
	}
	return len(ents), nil
}

type grepDone struct {
	Done    bool   `json:"done"`
	Matches int    `json:"matches"`
	Files   int    `json:"files"`
	Reason  string `json:"reason"`
}

// readGrepOut counts the match lines of an /api/v1/grep answer and returns
// its closing line.
func readGrepOut(path string) (grepDone, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return grepDone{}, 0, err
	}
	defer f.Close()
	var done grepDone
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var d grepDone
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return done, n, fmt.Errorf("line %d: %w", n+1, err)
		}
		if d.Done {
			done = d
		} else {
			n++
		}
	}
	if !done.Done {
		return done, n, fmt.Errorf("no closing line after %d matches", n)
	}
	return done, n, sc.Err()
}

// catFile reads a file once (warms the page cache).
func catFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

func catTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			return catFile(p)
		}
		return err
	})
}
