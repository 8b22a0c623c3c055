//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// historian is one `syncer serve` on loopback.
type historian struct {
	srv        *server
	root       string
	state      string
	ftp, http  int
	pw         string
	rcloneEnv  []string // RCLONE_* settings shared by every rclone run
	rcloneConf string
}

// startHistorian starts `syncer serve` with one account per name in
// accounts (all with permissions perm and the same random password).
func (b *bench) startHistorian(ctx context.Context, name string, accounts []string, perm string) (*historian, error) {
	h := &historian{root: filepath.Join(b.work, name+"-root"), state: filepath.Join(b.work, name+"-state")}
	var rb [12]byte
	_, _ = rand.Read(rb[:])
	h.pw = hex.EncodeToString(rb[:])
	for _, d := range []string{h.root, h.state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	for _, a := range accounts {
		args := []string{"user", "add", a, "--password-stdin", "--state", h.state}
		if perm != "" {
			args = append(args, "--perm", perm)
		}
		if _, err := run(ctx, cmdSpec{Name: b.syncer, Args: args, Stdin: h.pw + "\n", Timeout: time.Minute}); err != nil {
			return nil, fmt.Errorf("add account %s: %w", a, err)
		}
	}
	var err error
	if h.ftp, err = freePort(); err != nil {
		return nil, err
	}
	if h.http, err = freePort(); err != nil {
		return nil, err
	}
	h.srv, err = startServer("syncer serve", filepath.Join(b.work, name+"-serve.log"), nil, b.syncer, "serve",
		"--root", h.root, "--state", h.state, "--ftp", fmt.Sprintf("127.0.0.1:%d", h.ftp),
		"--http", fmt.Sprintf("127.0.0.1:%d", h.http), "--http-no-login") // /metrics read without a login
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, h.srv, fmt.Sprintf("http://127.0.0.1:%d/healthz", h.http)); err != nil {
		h.srv.stop()
		return nil, err
	}
	if err := waitFTP(ctx, h.srv, h.ftp); err != nil {
		h.srv.stop()
		return nil, err
	}
	if b.peers["rclone"] == "" {
		// rclone reads the password obscured, from the environment: it never
		// appears in its arguments.
		obs, err := run(ctx, cmdSpec{Name: "rclone", Args: []string{"obscure", "-"}, Stdin: h.pw + "\n", Timeout: time.Minute})
		if err != nil {
			return nil, fmt.Errorf("rclone obscure: %w", err)
		}
		h.rcloneConf = filepath.Join(b.work, name+"-rclone.conf")
		if err := os.WriteFile(h.rcloneConf, nil, 0o600); err != nil {
			return nil, err
		}
		h.rcloneEnv = []string{"RCLONE_CONFIG=" + h.rcloneConf, "RCLONE_FTP_HOST=127.0.0.1",
			"RCLONE_FTP_PORT=" + strconv.Itoa(h.ftp), "RCLONE_FTP_PASS=" + strings.TrimSpace(string(obs.Stdout))}
	}
	return h, nil
}

// received is syncer_received_bytes_total of agent (log bytes the server
// took in over FTP data connections), once it has settled: the counter is
// fed by upload events that may trail the client's exit by a moment.
func (h *historian) received(ctx context.Context, agent string) (int64, error) {
	prev := int64(-1)
	for i := 0; i < 50 && ctx.Err() == nil; i++ {
		v, err := h.metric(agent)
		if err != nil {
			return 0, err
		}
		if v == prev {
			return v, nil
		}
		prev = v
		time.Sleep(150 * time.Millisecond)
	}
	return prev, nil
}

func (h *historian) metric(agent string) (int64, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", h.http))
	if err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	want := `syncer_received_bytes_total{agent="` + agent + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, want) {
			f, err := strconv.ParseFloat(strings.TrimPrefix(l, want), 64)
			if err != nil {
				return 0, fmt.Errorf("metric %q: %w", l, err)
			}
			return int64(f), nil
		}
	}
	return 0, sc.Err()
}

// client is one contender that copies a local tree to the historian.
type client struct {
	key    string // part of the account name
	label  string
	peer   string // the peer it needs ("" for syncer itself)
	syncer bool
	sub    string // where the copy lands below the account's directory
	// push copies src to /acct/sub on h, as an agent run would.
	push func(ctx context.Context, h *historian, acct, src string, timeout time.Duration) (runResult, error)
}

// dest is the copy's directory on the historian's disk.
func (c *client) dest(h *historian, acct string) string {
	return filepath.Join(h.root, acct, c.sub)
}

// pushSummary is the part of `syncer push --json` the bench checks.
type pushSummary struct {
	FilesScanned   int64 `json:"files_scanned"`
	FilesUnchanged int64 `json:"files_unchanged"`
	FilesFailed    int64 `json:"files_failed"`
	BytesSent      int64 `json:"bytes_sent"`
}

// lastPush is the summary of the latest syncer push per account.
var lastPush = map[string]pushSummary{}

func (b *bench) syncerClient() *client {
	return &client{key: "syncer", label: "syncer push --parallel 4", syncer: true,
		push: func(ctx context.Context, h *historian, acct, src string, timeout time.Duration) (runResult, error) {
			res, err := run(ctx, cmdSpec{Name: b.syncer, Timeout: timeout, Env: []string{"SYNCER_PASSWORD=" + h.pw},
				Args: []string{"push", "--server", fmt.Sprintf("ftp://127.0.0.1:%d", h.ftp), "--user", acct,
					"--agent-id", acct, "--dir", src, "--state", filepath.Join(b.work, "agent-state", acct),
					"--parallel", "4", "--json"}})
			if err != nil {
				return res, err
			}
			var s pushSummary
			if err := json.Unmarshal(res.Stdout, &s); err != nil {
				return res, fmt.Errorf("syncer push --json: %w: %.200q", err, res.Stdout)
			}
			if s.FilesFailed != 0 {
				return res, fmt.Errorf("syncer push: %d files failed: %.300s", s.FilesFailed, res.Stdout)
			}
			lastPush[acct] = s
			return res, nil
		}}
}

func (b *bench) rcloneClient() *client {
	// Into a directory below the account's: rclone checks that its target
	// exists by listing the parent, and an agent may not list "/".
	return &client{key: "rclone", label: "rclone copy --transfers 4", peer: "rclone", sub: "tree",
		push: func(ctx context.Context, h *historian, acct, src string, timeout time.Duration) (runResult, error) {
			env := append([]string{"RCLONE_FTP_USER=" + acct}, h.rcloneEnv...)
			return run(ctx, cmdSpec{Name: "rclone", Timeout: timeout, Env: env,
				Args: []string{"copy", "--transfers", "4", src, ":ftp:/" + acct + "/tree"}})
		}}
}

// lftpClient runs `mirror -R -P 4` with extra mirror options. --no-perms:
// the archive keeps no Unix modes, and an operator would not ask for them.
func (b *bench) lftpClient(key, label string, opts ...string) *client {
	return &client{key: key, label: label, peer: "lftp",
		push: func(ctx context.Context, h *historian, acct, src string, timeout time.Duration) (runResult, error) {
			return b.lftpMirror(ctx, h.ftp, acct, h.pw, src, "/"+acct, timeout, opts...)
		}}
}

// lftpMirror runs `lftp mirror -R -P 4 --no-perms OPTS src dst` against
// port as user; the password goes through LFTP_PASSWORD.
func (b *bench) lftpMirror(ctx context.Context, port int, user, pw, src, dst string, timeout time.Duration, opts ...string) (runResult, error) {
	script := b.scratch("lftp") + ".lftp"
	var sb strings.Builder
	sb.WriteString("set cmd:fail-exit yes\nset net:max-retries 2\nset net:timeout 60\nset net:reconnect-interval-base 2\n")
	sb.WriteString("set ftp:ssl-allow no\nset xfer:clobber yes\n")
	fmt.Fprintf(&sb, "open --env-password -u %s ftp://127.0.0.1:%d\n", user, port)
	fmt.Fprintf(&sb, "mirror -R -P 4 --no-perms %s %s %s\nquit\n", strings.Join(opts, " "), src, dst)
	if err := os.WriteFile(script, []byte(sb.String()), 0o600); err != nil {
		return runResult{}, err
	}
	return run(ctx, cmdSpec{Name: "lftp", Args: []string{"-f", script}, Env: []string{"LFTP_PASSWORD=" + pw}, Timeout: timeout})
}

// ftplibClient is the stand-in for the original Python agent.
func (b *bench) ftplibClient() *client {
	return &client{key: "ftplib", label: "ftplib agent (stand-in for the original: whole files, 1 connection)", peer: "pyftpdlib",
		push: func(ctx context.Context, h *historian, acct, src string, timeout time.Duration) (runResult, error) {
			script := filepath.Join(b.work, "ftplib_push.py")
			if err := os.WriteFile(script, []byte(ftplibPush), 0o644); err != nil {
				return runResult{}, err
			}
			return run(ctx, cmdSpec{Name: pyBin, Timeout: timeout, Env: []string{"FTP_PASSWORD=" + h.pw},
				Args: []string{script, "127.0.0.1", strconv.Itoa(h.ftp), acct, src, "/" + acct,
					filepath.Join(b.work, "ftplib-state-"+acct+".json")}})
		}}
}

func acctName(id, key string, round int) string { return fmt.Sprintf("s%s-%s-%d", id, key, round) }

// agentSuite runs scenarios 1-4 (the ones in ids) against one historian.
func (b *bench) agentSuite(ctx context.Context, ids []string) []*Scenario {
	sz := b.sz
	s1 := &Scenario{ID: "1", Title: fmt.Sprintf("initial push, %s in %d files", fmtBytes(int64(sz.BigFiles*sz.BigSize)), sz.BigFiles)}
	s2 := &Scenario{ID: "2", Title: fmt.Sprintf("initial push, %d files of 4 KiB", sz.SmallFiles)}
	s3 := &Scenario{ID: "3", Title: fmt.Sprintf("incremental: 1 KiB appended to 10%% of %d files", sz.AppendFiles)}
	s4 := &Scenario{ID: "4", Title: fmt.Sprintf("unchanged tree of %d files", sz.UnchangedFiles)}
	byID := map[string]*Scenario{"1": s1, "2": s2, "3": s3, "4": s4}
	var out []*Scenario
	for _, id := range ids {
		out = append(out, byID[id])
	}

	initial := []*client{b.syncerClient(), b.rcloneClient(), b.lftpClient("lftp", "lftp mirror -R -P 4"), b.ftplibClient()}
	incr := []*client{b.syncerClient(), b.rcloneClient(),
		b.lftpClient("lftpc", "lftp mirror -R -P 4 --continue", "--continue"),
		b.lftpClient("lftpci", "lftp mirror -R -P 4 --continue --ignore-time", "--continue", "--ignore-time"),
		b.ftplibClient()}
	var accounts []string
	for _, id := range ids {
		switch id {
		case "1", "2":
			for r := 0; r < sz.Rounds; r++ {
				for _, c := range initial {
					accounts = append(accounts, acctName(id, c.key, r))
				}
			}
		case "3":
			for _, c := range incr {
				accounts = append(accounts, acctName(id, c.key, 0))
			}
		case "4":
			accounts = append(accounts, acctName(id, "syncer", 0), acctName(id, "rclone", 0))
		}
	}
	b.log.Info("starting the historian", "accounts", len(accounts))
	// T: rclone and lftp set each file's mtime after the upload; the
	// peers get what they ask for.
	h, err := b.startHistorian(ctx, "hist", accounts, "elramwT")
	if err != nil {
		for _, s := range out {
			s.failf("historian: %v", err)
		}
		return out
	}
	defer func() {
		rss := h.srv.stop()
		out[len(out)-1].Notes = append(out[len(out)-1].Notes,
			fmt.Sprintf("peak RSS of the historian (syncer serve) over scenarios %s: %.0f MiB", strings.Join(ids, ", "), float64(rss)/1024))
	}()

	bigTree := filepath.Join(b.work, "tree-big")
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		b.log.Info("scenario", "id", id)
		switch id {
		case "1":
			if err := b.genTree(ctx, bigTree, sz.BigFiles, strconv.Itoa(sz.BigSize)+"B"); err != nil {
				s1.failf("generate: %v", err)
				break
			}
			s1.Setup = fmt.Sprintf("gen-logs -seed 1 -files %d -size %d; each run into a fresh account; every copy compared byte for byte", sz.BigFiles, sz.BigSize)
			b.initialPush(ctx, h, s1, bigTree, int64(sz.BigFiles*sz.BigSize), 0, initial)
		case "2":
			tree := filepath.Join(b.work, "tree-small")
			if err := b.genTree(ctx, tree, sz.SmallFiles, "4KiB"); err != nil {
				s2.failf("generate: %v", err)
				break
			}
			s2.Setup = fmt.Sprintf("gen-logs -seed 1 -files %d -size 4KiB", sz.SmallFiles)
			// The ftplib stand-in sends one file at a time on one
			// connection: 20,000 files cost minutes per run and say
			// nothing scenario 1 does not.
			s2.Notes = append(s2.Notes, "the ftplib stand-in is left out here (one file at a time on one connection: minutes per run); see 1 and 3")
			b.initialPush(ctx, h, s2, tree, int64(sz.SmallFiles*4096), sz.SmallFiles, initial[:3])
			os.RemoveAll(tree)
		case "3":
			if _, err := os.Stat(bigTree); err != nil || sz.AppendFiles != sz.BigFiles {
				os.RemoveAll(bigTree)
				if err := b.genTree(ctx, bigTree, sz.AppendFiles, strconv.Itoa(sz.BigSize)+"B"); err != nil {
					s3.failf("generate: %v", err)
					break
				}
			}
			b.incremental(ctx, h, s3, bigTree, incr)
		case "4":
			b.unchanged(ctx, h, s4)
		}
		b.log.Info("scenario done", "id", id, "took", time.Since(t0).Round(time.Second))
	}
	return out
}

// contenders makes one row per client and returns the usable ones.
func (b *bench) contenders(sc *Scenario, cl []*client, payload int64, files int) ([]*client, map[*client]*Row) {
	rows := map[*client]*Row{}
	var active []*client
	for _, c := range cl {
		r := sc.row(c.label, c.syncer, "s")
		r.PayloadBytes, r.PayloadFiles = payload, files
		if c.peer != "" && !b.has(c.peer, r) {
			continue
		}
		rows[c] = r
		active = append(active, c)
	}
	return active, rows
}

// initialPush: every contender copies src into a fresh account, Rounds
// times, the order rotating every round; every copy is compared with src.
func (b *bench) initialPush(ctx context.Context, h *historian, sc *Scenario, src string, payload int64, files int, cl []*client) {
	active, rows := b.contenders(sc, cl, payload, files)
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0); round++ {
		for i := range active {
			c := active[(i+round)%len(active)]
			acct := acctName(sc.ID, c.key, round)
			syncDisks()
			res, err := c.push(ctx, h, acct, src, b.sz.ScenarioTimeout)
			if err != nil {
				sc.failf("%s: %v", c.label, err)
				return
			}
			if err := verifyTree(src, c.dest(h, acct)); err != nil {
				sc.failf("%s: copy differs: %v", c.label, err)
				return
			}
			rows[c].add(res.Seconds, res.RSSKiB)
			b.log.Info("run", "scenario", sc.ID, "round", round, "contender", c.key, "s", fmt.Sprintf("%.2f", res.Seconds))
			os.RemoveAll(c.dest(h, acct))
			os.RemoveAll(filepath.Join(b.work, "agent-state", acct))
		}
	}
}

// incremental: each contender archives src once (untimed), then every
// round 1 KiB is appended to 10% of the files and every contender brings
// its copy up to date; time and the log bytes the server received.
func (b *bench) incremental(ctx context.Context, h *historian, sc *Scenario, src string, cl []*client) {
	active, rows := b.contenders(sc, cl, 0, 0)
	for _, c := range active {
		acct := acctName(sc.ID, c.key, 0)
		if _, err := c.push(ctx, h, acct, src, b.sz.ScenarioTimeout); err != nil {
			sc.failf("%s: first copy: %v", c.label, err)
			return
		}
		if err := verifyTree(src, c.dest(h, acct)); err != nil {
			sc.failf("%s: first copy differs: %v", c.label, err)
			return
		}
	}
	var appended []int64
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0); round++ {
		res, err := run(ctx, cmdSpec{Name: b.gen, Args: []string{"-out", src, "-append", "10%", "-append-size", "1KiB",
			"-seed", strconv.Itoa(round + 2)}})
		if err != nil {
			sc.failf("append: %v", err)
			return
		}
		var n int64
		var files int
		if _, err := fmt.Sscanf(string(res.Stdout), "appended %d bytes to %d files", &n, &files); err != nil {
			sc.failf("append output %q: %v", res.Stdout, err)
			return
		}
		appended = append(appended, n)
		for i := range active {
			c := active[(i+round)%len(active)]
			acct := acctName(sc.ID, c.key, 0)
			before, err := h.received(ctx, acct)
			if err != nil {
				sc.failf("%v", err)
				return
			}
			syncDisks()
			res, err := c.push(ctx, h, acct, src, b.sz.ScenarioTimeout)
			if err != nil {
				sc.failf("%s: %v", c.label, err)
				return
			}
			after, err := h.received(ctx, acct)
			if err != nil {
				sc.failf("%v", err)
				return
			}
			if err := verifyTree(src, c.dest(h, acct)); err != nil {
				sc.failf("%s: copy differs after the append: %v", c.label, err)
				return
			}
			r := rows[c]
			r.add(res.Seconds, res.RSSKiB)
			r.WireBytes = append(r.WireBytes, after-before)
			if c.syncer {
				s := lastPush[acct]
				if s.BytesSent != n {
					sc.failf("syncer push sent %d log bytes for %d appended", s.BytesSent, n)
					return
				}
				if extra := after - before - s.BytesSent; extra != 0 && round == 0 {
					sc.Notes = append(sc.Notes, fmt.Sprintf("syncer's bytes include its agent description under .syncer/ (%s per push); its log bytes sent equal the bytes appended (bytes_sent %d)", fmtBytes(extra), s.BytesSent))
				}
			}
			b.log.Info("run", "scenario", sc.ID, "round", round, "contender", c.key, "s", fmt.Sprintf("%.2f", res.Seconds), "bytes", after-before)
		}
	}
	sc.Setup = fmt.Sprintf("gen-logs -append 10%% -append-size 1KiB: %s appended per round (median); \"rate / bytes sent\" is the log bytes the server received (syncer_received_bytes_total)", fmtBytes(medianInt(appended)))
}

// unchanged: a tree already archived is pushed again; find -printf is the
// floor (one stat per file, no network).
func (b *bench) unchanged(ctx context.Context, h *historian, sc *Scenario) {
	n := b.sz.UnchangedFiles
	tree := filepath.Join(b.work, "tree-unchanged")
	defer os.RemoveAll(tree)
	if err := b.genTree(ctx, tree, n, "1KiB"); err != nil {
		sc.failf("generate: %v", err)
		return
	}
	sc.Setup = fmt.Sprintf("gen-logs -seed 1 -files %d -size 1KiB, archived once (untimed) by syncer push, and for rclone copied into the archive with cp -a (same sizes and mtimes, so rclone has nothing to send); floor: find DIR -type f -printf '%%s %%T@\\n'", n)
	findRow := sc.row("find -printf (stat floor)", false, "s")
	sy, rc := b.syncerClient(), b.rcloneClient()
	active, rows := b.contenders(sc, []*client{sy, rc}, 0, 0)
	for _, c := range active {
		acct := acctName(sc.ID, c.key, 0)
		if c.syncer {
			if _, err := c.push(ctx, h, acct, tree, b.sz.UnchangedSetupTimeout); err != nil {
				sc.failf("%s: first copy: %v", c.label, err)
				return
			}
		} else {
			// rclone compares size and mtime with the server's listing,
			// which comes from the disk: a copy with the same mtimes is
			// what its own first run leaves, in seconds instead of minutes.
			if err := os.MkdirAll(c.dest(h, acct), 0o755); err != nil {
				sc.failf("%v", err)
				return
			}
			if _, err := run(ctx, cmdSpec{Name: "cp", Args: []string{"-a", tree + "/.", c.dest(h, acct)}, Timeout: b.sz.UnchangedSetupTimeout}); err != nil {
				sc.failf("seed rclone's copy: %v", err)
				return
			}
		}
		if err := verifyTree(tree, c.dest(h, acct)); err != nil {
			sc.failf("%s: first copy differs: %v", c.label, err)
			return
		}
	}
	outFile := filepath.Join(b.work, "find.out")
	findRun := func() (runResult, error) {
		return run(ctx, cmdSpec{Name: "find", Args: []string{tree, "-type", "f", "-printf", `%s %T@\n`}, OutFile: outFile, Timeout: b.sz.ScenarioTimeout})
	}
	type contender struct {
		name string
		fn   func() (runResult, error)
		row  *Row
		c    *client
	}
	all := []contender{{name: "find", fn: findRun, row: findRow}}
	for _, c := range active {
		c := c
		all = append(all, contender{name: c.key, row: rows[c], c: c, fn: func() (runResult, error) {
			return c.push(ctx, h, acctName(sc.ID, c.key, 0), tree, b.sz.ScenarioTimeout)
		}})
	}
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0); round++ {
		for i := range all {
			k := all[(i+round)%len(all)]
			var before int64
			if k.c != nil {
				var err error
				if before, err = h.received(ctx, acctName(sc.ID, k.c.key, 0)); err != nil {
					sc.failf("%v", err)
					return
				}
			}
			res, err := k.fn()
			if err != nil {
				sc.failf("%s: %v", k.name, err)
				return
			}
			if k.c != nil {
				after, err := h.received(ctx, acctName(sc.ID, k.c.key, 0))
				if err != nil {
					sc.failf("%v", err)
					return
				}
				k.row.WireBytes = append(k.row.WireBytes, after-before)
				if k.c.syncer {
					s := lastPush[acctName(sc.ID, k.c.key, 0)]
					// The server receives the push's heartbeat, the agent
					// description (about 600 bytes), and no log byte.
					if s.BytesSent != 0 || after-before > maxHeartbeat || s.FilesUnchanged != int64(n) {
						sc.failf("syncer push of an unchanged tree: %d of %d files unchanged, bytes_sent %d, server received %d (more than a heartbeat)",
							s.FilesUnchanged, n, s.BytesSent, after-before)
						return
					}
				}
			} else if lines := countLines(outFile); lines != n {
				sc.failf("find printed %d lines for %d files", lines, n)
				return
			}
			k.row.add(res.Seconds, res.RSSKiB)
			b.log.Info("run", "scenario", sc.ID, "round", round, "contender", k.name, "s", fmt.Sprintf("%.2f", res.Seconds))
		}
	}
}

// maxHeartbeat bounds what an unchanged push may upload: its agent
// description (.syncer/agent.json), rewritten by every push.
const maxHeartbeat = 4 << 10

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	return bytes.Count(b, []byte{'\n'})
}

// verifyTree checks that every regular file under src exists under dst
// with the same bytes (dst may hold more, such as the agent's .syncer/).
func verifyTree(src, dst string) error {
	bufA, bufB := make([]byte, 1<<20), make([]byte, 1<<20)
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		n++
		return sameFile(p, filepath.Join(dst, rel), bufA, bufB)
	})
	if err == nil && n == 0 {
		err = errors.New("source tree is empty")
	}
	return err
}

func sameFile(a, b string, bufA, bufB []byte) error {
	fa, err := os.Open(a)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return fmt.Errorf("missing in the archive: %w", err)
	}
	defer fb.Close()
	var off int64
	for {
		na, ea := io.ReadFull(fa, bufA)
		nb, eb := io.ReadFull(fb, bufB)
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return fmt.Errorf("%s: archived copy differs from the source after byte %d", b, off)
		}
		off += int64(na)
		aEOF := errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF)
		bEOF := errors.Is(eb, io.EOF) || errors.Is(eb, io.ErrUnexpectedEOF)
		switch {
		case aEOF && bEOF:
			return nil
		case ea != nil && !aEOF:
			return ea
		case eb != nil && !bEOF:
			return eb
		case aEOF != bEOF:
			return fmt.Errorf("%s: size differs from the source", b)
		}
	}
}
