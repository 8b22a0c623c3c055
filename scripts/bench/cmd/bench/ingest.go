//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"
)

// ftpTarget is one server of scenario 5.
type ftpTarget struct {
	label   string
	peer    string
	syncer  bool
	port    int
	user    string
	pw      string
	base    string // the client's upload directory, relative to its login directory
	dir     string // that directory on disk
	srv     *server
	netrc   string
	start   func(ctx context.Context, t *ftpTarget) error
	cleanup func()
}

// ingestScenarios: the same client uploads the same data to syncer serve,
// vsftpd and pyftpdlib. 5a: curl -T of one large log; 5b: lftp mirror -R
// -P 4 of many 4 KiB logs. Each server is started fresh per scenario so
// its peak RSS belongs to that scenario.
func (b *bench) ingestScenarios(ctx context.Context) []*Scenario {
	sz := b.sz
	a := &Scenario{ID: "5a", Title: fmt.Sprintf("server ingest: curl -T of one %s log", fmtBytes(sz.IngestBytes))}
	bb := &Scenario{ID: "5b", Title: fmt.Sprintf("server ingest: lftp mirror -R -P 4 of %d files of 4 KiB", sz.IngestFiles)}
	c := &Scenario{ID: "5c", Title: fmt.Sprintf("server ingest: syncer push --parallel 4 of %d files of 4 KiB", sz.IngestFiles)}
	big := filepath.Join(b.work, "ingest-big")
	if err := b.genTree(ctx, big, 1, strconv.FormatInt(sz.IngestBytes, 10)+"B"); err != nil {
		a.failf("generate: %v", err)
		return []*Scenario{a, bb, c}
	}
	defer os.RemoveAll(big)
	var bigFile string
	_ = filepath.WalkDir(big, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			bigFile = p
		}
		return nil
	})
	a.Setup = "curl -sS --netrc-file F -T FILE ftp://127.0.0.1:PORT/[up/]rN.log (a gen-logs log); vsftpd: anonymous upload, run as root, no seccomp sandbox; pyftpdlib: default FTPServer (async, one process), logging at WARNING"
	b.ingest(ctx, a, func(ctx context.Context, t *ftpTarget, round int) (runResult, string, error) {
		name := fmt.Sprintf("r%d.log", round)
		res, err := run(ctx, cmdSpec{Name: "curl", Timeout: sz.ScenarioTimeout, Args: []string{"-sS", "--netrc-file", t.netrc,
			"-T", bigFile, fmt.Sprintf("ftp://127.0.0.1:%d/%s", t.port, path.Join(t.base, name))}})
		return res, name, err
	}, func(t *ftpTarget, name string) error {
		defer os.Remove(filepath.Join(t.dir, name))
		return sameFile(bigFile, filepath.Join(t.dir, name), make([]byte, 1<<20), make([]byte, 1<<20))
	}, sz.IngestBytes, 0)

	small := filepath.Join(b.work, "ingest-small")
	if err := b.genTree(ctx, small, sz.IngestFiles, "4KiB"); err != nil {
		bb.failf("generate: %v", err)
		return []*Scenario{a, bb, c}
	}
	defer os.RemoveAll(small)
	bb.Setup = "lftp -f SCRIPT: mirror -R -P 4 --no-perms DIR [up/]rN (password from LFTP_PASSWORD), into a new directory each run"
	b.ingest(ctx, bb, func(ctx context.Context, t *ftpTarget, round int) (runResult, string, error) {
		name := fmt.Sprintf("r%d", round)
		res, err := b.lftpMirror(ctx, t.port, t.user, t.pw, small, path.Join(t.base, name), sz.ScenarioTimeout)
		return res, name, err
	}, func(t *ftpTarget, name string) error {
		defer os.RemoveAll(filepath.Join(t.dir, name))
		return verifyTree(small, filepath.Join(t.dir, name))
	}, int64(sz.IngestFiles)*4096, sz.IngestFiles)

	// The same client against every server: syncer push speaks plain FTP
	// to a third-party server (--remote-root), each run a new agent with
	// a new manifest, so it sends every file.
	c.Setup = "syncer push --parallel 4 --remote-root DIR --agent-id rN --dir DIR --state NEW (password from SYNCER_PASSWORD); syncer serve: account bench, DIR /bench; pyftpdlib: DIR /; vsftpd: the upload directory's real path (vsftpd run as the launching user does not chroot)"
	b.ingest(ctx, c, func(ctx context.Context, t *ftpTarget, round int) (runResult, string, error) {
		name := fmt.Sprintf("r%d", round)
		remote := "/" + t.base
		switch t.peer {
		case "": // syncer serve, this build's or the one before
			remote = "/" + t.user
		case "vsftpd":
			// run_as_launching_user turns vsftpd's chroot off: the
			// anonymous login starts in anon_root, but "/" is the
			// machine's root, so an absolute remote root is the real path.
			remote = t.dir
		}
		res, err := run(ctx, cmdSpec{Name: b.syncer, Timeout: sz.ScenarioTimeout, Env: []string{"SYNCER_PASSWORD=" + t.pw},
			Args: []string{"push", "--server", fmt.Sprintf("ftp://127.0.0.1:%d", t.port), "--user", t.user,
				"--remote-root", remote, "--agent-id", name, "--dir", small,
				"--state", filepath.Join(b.work, "ingest-push-state", t.label, name), "--parallel", "4"}})
		return res, name, err
	}, func(t *ftpTarget, name string) error {
		defer os.RemoveAll(filepath.Join(t.dir, name))
		return verifyTree(small, filepath.Join(t.dir, name))
	}, int64(sz.IngestFiles)*4096, sz.IngestFiles)
	return []*Scenario{a, bb, c}
}

// ingest runs upload against every server, Rounds times, rotating the
// order; check compares what the server stored with the source.
func (b *bench) ingest(ctx context.Context, sc *Scenario,
	upload func(context.Context, *ftpTarget, int) (runResult, string, error),
	check func(*ftpTarget, string) error, payload int64, files int) {
	client := "curl"
	switch sc.ID {
	case "5b":
		client = "lftp"
	case "5c":
		client = "" // syncer itself
	}
	targets := b.ftpTargets(sc.ID)
	rows := map[*ftpTarget]*Row{}
	var active []*ftpTarget
	for _, t := range targets {
		r := sc.row(t.label, t.syncer, "s")
		r.PayloadBytes, r.PayloadFiles = payload, files
		r.RSSWhat = "server"
		if (t.peer != "" && !b.has(t.peer, r)) || (client != "" && !b.has(client, r)) {
			continue
		}
		if err := t.start(ctx, t); err != nil {
			sc.failf("%s: %v", t.label, err)
			continue
		}
		rows[t] = r
		active = append(active, t)
	}
	defer func() {
		for _, t := range active {
			rows[t].RSSKiB = t.srv.stop()
			if t.cleanup != nil {
				t.cleanup()
			}
		}
	}()
	if sc.Error != "" {
		return
	}
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0); round++ {
		for i := range active {
			t := active[(i+round)%len(active)]
			syncDisks()
			res, name, err := upload(ctx, t, round)
			if err != nil {
				sc.failf("%s: %v", t.label, err)
				return
			}
			if err := check(t, name); err != nil {
				sc.failf("%s: stored copy differs: %v", t.label, err)
				return
			}
			rows[t].Samples = append(rows[t].Samples, res.Seconds)
			b.log.Info("run", "scenario", sc.ID, "round", round, "server", t.label, "s", fmt.Sprintf("%.2f", res.Seconds))
		}
	}
}

// ftpTargets describes syncer serve, vsftpd and pyftpdlib, each with its
// own root under the work directory.
func (b *bench) ftpTargets(id string) []*ftpTarget {
	dir := filepath.Join(b.work, "ingest-"+id)
	pw := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	netrc := func(t *ftpTarget) error {
		t.netrc = filepath.Join(dir, fmt.Sprintf("%d.netrc", t.port))
		return os.WriteFile(t.netrc, []byte(fmt.Sprintf("machine 127.0.0.1 login %s password %s\n", t.user, t.pw)), 0o600)
	}
	sy := &ftpTarget{label: "syncer serve", syncer: true, user: "bench", pw: pw, base: "", // logs in at /bench/
		start: func(ctx context.Context, t *ftpTarget) error {
			h, err := b.startHistorian(ctx, "ingest-"+id+"-syncer", []string{"bench"}, "")
			if err != nil {
				return err
			}
			t.srv, t.port, t.pw, t.dir = h.srv, h.ftp, h.pw, filepath.Join(h.root, "bench")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			return netrc(t)
		}}
	vs := &ftpTarget{label: "vsftpd", peer: "vsftpd", user: "anonymous", pw: "bench@", base: "up",
		start: func(ctx context.Context, t *ftpTarget) error {
			root := filepath.Join(dir, "vsftpd-root")
			t.dir = filepath.Join(root, "up")
			if err := os.MkdirAll(t.dir, 0o755); err != nil {
				return err
			}
			// vsftpd refuses a chroot it can write to; only up/ is writable.
			if err := os.Chmod(root, 0o555); err != nil {
				return err
			}
			if err := os.Chmod(t.dir, 0o777); err != nil {
				return err
			}
			t.cleanup = func() { _ = os.Chmod(root, 0o755) }
			port, err := freePort()
			if err != nil {
				return err
			}
			t.port = port
			user := os.Getenv("USER")
			if user == "" {
				user = "root"
			}
			conf := filepath.Join(dir, "vsftpd.conf")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf(`listen=YES
listen_address=127.0.0.1
listen_port=%d
background=NO
run_as_launching_user=YES
ftp_username=%s
anonymous_enable=YES
no_anon_password=YES
anon_root=%s
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
write_enable=YES
local_enable=NO
seccomp_sandbox=NO
xferlog_enable=NO
max_clients=200
max_per_ip=200
`, port, user, root)), 0o644); err != nil {
				return err
			}
			bin := "vsftpd"
			if _, err := os.Stat("/usr/sbin/vsftpd"); err == nil {
				bin = "/usr/sbin/vsftpd"
			}
			if t.srv, err = startServer("vsftpd", filepath.Join(dir, "vsftpd.log"), nil, bin, conf); err != nil {
				return err
			}
			if err := waitFTP(ctx, t.srv, port); err != nil {
				return err
			}
			return netrc(t)
		}}
	py := &ftpTarget{label: "pyftpdlib (the original server)", peer: "pyftpdlib", user: "bench", pw: pw, base: "",
		start: func(ctx context.Context, t *ftpTarget) error {
			t.dir = filepath.Join(dir, "pyftpd-root")
			if err := os.MkdirAll(t.dir, 0o755); err != nil {
				return err
			}
			script := filepath.Join(dir, "pyftpd_serve.py")
			if err := os.WriteFile(script, []byte(pyftpdServe), 0o644); err != nil {
				return err
			}
			port, err := freePort()
			if err != nil {
				return err
			}
			t.port = port
			if t.srv, err = startServer("pyftpdlib", filepath.Join(dir, "pyftpd.log"), []string{"FTP_PASSWORD=" + t.pw},
				pyBin, script, strconv.Itoa(port), t.user, t.dir); err != nil {
				return err
			}
			if err := waitFTP(ctx, t.srv, port); err != nil {
				return err
			}
			return netrc(t)
		}}
	targets := []*ftpTarget{sy, vs, py}
	if b.serveBefore != "" {
		before := *sy
		before.label, before.syncer = "syncer serve, before ("+filepath.Base(b.serveBefore)+")", false
		before.start = func(ctx context.Context, t *ftpTarget) error {
			// Sequential: nothing else runs b.syncer meanwhile.
			now := b.syncer
			b.syncer = b.serveBefore
			defer func() { b.syncer = now }()
			h, err := b.startHistorian(ctx, "ingest-"+id+"-syncer-before", []string{"bench"}, "")
			if err != nil {
				return err
			}
			t.srv, t.port, t.pw, t.dir = h.srv, h.ftp, h.pw, filepath.Join(h.root, "bench")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			return netrc(t)
		}
		targets = append(targets, &before)
	}
	return targets
}
