//go:build linux

// Command bench measures syncer against its peers, side by side, on
// loopback: the scenarios of issue 7 (initial pushes, an incremental push,
// an unchanged tree, server ingest, the FUSE view, the web viewer) and of
// issue 12 (8: lines missing and duplicated through 20+ rotations by the
// real logrotate, against rsyslog's imfile forwarding to a central rsyslog
// over TCP). Every
// scenario runs each contender several times, alternating them (the order
// rotates every round), and prints one markdown table of medians, min and
// max, ratios to syncer and peak RSS; the same results go to a JSON file.
//
//	make bench          # the full suite (tens of minutes on 2 cores)
//	make bench-quick    # every scenario at a small size (CI keeps it alive)
//	go run ./scripts/bench/cmd/bench -quick -only 3,5
//
// Every copy is checked byte for byte against its source: a scenario whose
// copy differs, or whose client or server fails, is reported as FAILED and
// makes the command exit 1. A peer that is not installed (and cannot be
// installed with apt-get) is skipped with a note in the table. Timings are
// reported, never judged. Linux only (process groups, /proc, FUSE).
package main

import (
	"bufio"
	"context"
	_ "embed"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/syncer-dev/syncer/internal/rotsim"
)

//go:embed ftplib_push.py
var ftplibPush string

//go:embed pyftpd_serve.py
var pyftpdServe string

// pyBin is Debian's python3, the one with pyftpdlib (a pyenv python3 may
// come first on PATH).
const pyBin = "/usr/bin/python3"

// sizes of one run of the suite.
type sizes struct {
	BigFiles, BigSize  int   // 1: files of BigSize bytes
	SmallFiles         int   // 2: files of 4 KiB
	AppendFiles        int   // 3: files of BigSize bytes, 10% grow by 1 KiB
	UnchangedFiles     int   // 4
	IngestBytes        int64 // 5a: one file
	IngestFiles        int   // 5b: files of 4 KiB
	FuseMiB, FuseSmall int   // 6
	FuseFind           int   // 6
	WebBytes           int64 // 7: /raw file
	WebList            int   // 7: directory entries
	WebGrepFiles       int   // 7: files of the content search tree
	WebGrepSize        string
	// 9: files of the timeline archive and the size of each
	TLFiles     int
	TLFileBytes int64
	// 8: rotations of the schedule and lines per write; at most RotRounds
	// rounds (0: as the others); the rsyslog receiver is counted once
	// nothing has arrived for RotIdle, at most RotCatchUp after the
	// schedule ends.
	RotRotations, RotLines int
	RotRounds              int
	RotIdle, RotCatchUp    time.Duration
	// Every scenario runs at least MinRounds rounds, and more, up to
	// Rounds, while it has taken less than Budget: slow machines stay
	// within tens of minutes, fast ones get five samples.
	Rounds, MinRounds     int
	Budget                time.Duration
	ListPerRound          int
	ScenarioTimeout       time.Duration
	UnchangedSetupTimeout time.Duration
}

var full = sizes{
	BigFiles: 1000, BigSize: 1 << 20, SmallFiles: 20000, AppendFiles: 1000, UnchangedFiles: 100000,
	IngestBytes: 1 << 30, IngestFiles: 2000, FuseMiB: 1024, FuseSmall: 10000, FuseFind: 10000,
	WebBytes: 1 << 30, WebList: 10000, WebGrepFiles: 400, WebGrepSize: "mixed",
	TLFiles: 1000, TLFileBytes: 2 << 20,
	RotRotations: 21, RotLines: 1000, RotIdle: 5 * time.Second, RotCatchUp: time.Minute,
	Rounds: 5, MinRounds: 3, Budget: 150 * time.Second, ListPerRound: 10, ScenarioTimeout: 30 * time.Minute, UnchangedSetupTimeout: 20 * time.Minute,
}

var quick = sizes{
	BigFiles: 24, BigSize: 256 << 10, SmallFiles: 120, AppendFiles: 24, UnchangedFiles: 500,
	IngestBytes: 32 << 20, IngestFiles: 100, FuseMiB: 32, FuseSmall: 300, FuseFind: 1000,
	WebBytes: 32 << 20, WebList: 1000, WebGrepFiles: 40, WebGrepSize: "64KiB",
	TLFiles: 40, TLFileBytes: 128 << 10,
	RotRotations: 9, RotLines: 100, RotRounds: 1, RotIdle: 2 * time.Second, RotCatchUp: 15 * time.Second,
	Rounds: 2, MinRounds: 2, ListPerRound: 5, ScenarioTimeout: 3 * time.Minute, UnchangedSetupTimeout: 2 * time.Minute,
}

// bench is one run of the suite.
type bench struct {
	sz     sizes
	work   string // temp directory, removed at the end unless -keep
	syncer string // absolute path of bin/syncer
	// serveBefore is another syncer binary whose serve scenario 5 also
	// measures, side by side ("before" a change; -serve-before).
	serveBefore string
	gen         string // gen-logs binary
	repo        string
	peers       map[string]string // peer -> "" if usable, else why not
	log         *slog.Logger
	seq         int // names of scratch files
}

func main() {
	os.Exit(mainErr())
}

func mainErr() int {
	quickFlag := flag.Bool("quick", os.Getenv("QUICK") == "1", "small sizes (CI: keeps the harness alive, under two minutes)")
	rounds := flag.Int("rounds", 0, "at most this many runs per contender (0: 5, at least 3 and more while a scenario is under 150 s; 2 with -quick)")
	only := flag.String("only", "", "comma-separated scenario numbers to run (default: all)")
	out := flag.String("out", envOr("BENCH_OUT", "bench-results"), "directory for results.json and results.md")
	syncerBin := flag.String("syncer", envOr("SYNCER_BIN", "bin/syncer"), "the syncer binary to measure")
	serveBefore := flag.String("serve-before", os.Getenv("SERVE_BEFORE"), "scenario 5 also measures `syncer serve` of this binary (e.g. one built from main), in the same rounds")
	keep := flag.Bool("keep", os.Getenv("KEEP") != "", "keep the work directory")
	workBase := flag.String("workdir", envOr("BENCH_DIR", "/var/tmp"), "where the work directory is made (needs a few GiB)")
	install := flag.Bool("install", true, "apt-get install missing peers when running as root")
	tlGiB := flag.Float64("tl-gib", envFloat("TL_GIB"), "scenario 9's archive size in GiB, over its 1,000 files (0: 2 MiB a file, 1.8 GiB of lines; the issue asks for 10)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b := &bench{sz: full, log: log}
	if *quickFlag {
		b.sz = quick
	}
	if *rounds > 0 {
		b.sz.Rounds, b.sz.MinRounds = *rounds, min(b.sz.MinRounds, *rounds)
	}
	if *tlGiB > 0 {
		b.sz.TLFileBytes = int64(*tlGiB * (1 << 30) / float64(b.sz.TLFiles))
	}
	total := 75 * time.Minute
	if *quickFlag {
		total = 10 * time.Minute
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, total)
	defer cancelT()

	var err error
	if b.repo, err = os.Getwd(); err != nil {
		log.Error("getwd", "err", err)
		return 2
	}
	if b.syncer, err = filepath.Abs(*syncerBin); err != nil {
		log.Error("syncer binary", "err", err)
		return 2
	}
	if *serveBefore != "" {
		if b.serveBefore, err = filepath.Abs(*serveBefore); err != nil {
			log.Error("serve-before", "err", err)
			os.Exit(2)
		}
	}
	if _, err := os.Stat(b.syncer); err != nil {
		log.Error("syncer binary missing: run make build first", "path", b.syncer)
		return 2
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Error("results directory", "err", err)
		return 2
	}
	if b.work, err = os.MkdirTemp(*workBase, "syncer-bench-"); err != nil {
		log.Error("work directory", "err", err)
		return 2
	}
	defer func() {
		stopAll()
		unmountUnder(b.work)
		if *keep {
			log.Info("work directory kept", "dir", b.work)
		} else {
			os.RemoveAll(b.work)
		}
	}()

	b.findPeers(ctx, *install)
	b.gen = filepath.Join(b.work, "gen-logs")
	if _, err := run(ctx, cmdSpec{Name: "go", Args: []string{"build", "-o", b.gen, "./scripts/gen-logs"}}); err != nil {
		log.Error("build gen-logs", "err", err)
		return 2
	}

	rep := &Report{
		Date:   time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Quick:  *quickFlag,
		Rounds: b.sz.Rounds, Cores: runtime.NumCPU(), Memory: memTotal(), Kernel: kernel(),
		Command: "make bench",
	}
	if *quickFlag {
		rep.Command = "make bench-quick"
	}
	if *rounds > 0 {
		rep.Command = fmt.Sprintf("ROUNDS=%d %s", *rounds, rep.Command)
	}
	if *tlGiB > 0 {
		rep.Command = fmt.Sprintf("TL_GIB=%g %s", *tlGiB, rep.Command)
	}
	if v, err := run(ctx, cmdSpec{Name: b.syncer, Args: []string{"version"}}); err == nil {
		rep.SyncerVersion = strings.TrimSpace(string(v.Stdout))
	}
	for _, p := range peerOrder {
		if why := b.peers[p]; why != "" {
			rep.Peers = append(rep.Peers, p+": missing ("+why+")")
		} else {
			rep.Peers = append(rep.Peers, p+" "+peerVersion(ctx, p))
		}
	}
	rep.LoadStart = loadAvg()

	want := map[string]bool{}
	for _, id := range strings.Split(*only, ",") {
		if id = strings.TrimSpace(id); id != "" {
			want[id] = true
		}
	}
	type step struct {
		id string
		fn func(context.Context) []*Scenario
	}
	// Scenarios 1-4 share one historian: they run in one call.
	steps := []step{{"5", b.ingestScenarios}, {"6", b.fuseScenario}, {"7", b.webScenarios}, {"8", b.rotationScenarios}, {"9", b.timelineScenarios}}
	agentIDs := []string{}
	for _, id := range []string{"1", "2", "3", "4"} {
		if len(want) == 0 || want[id] {
			agentIDs = append(agentIDs, id)
		}
	}
	if len(agentIDs) > 0 {
		rep.Scenarios = append(rep.Scenarios, b.agentSuite(ctx, agentIDs)...)
	}
	for _, st := range steps {
		if len(want) > 0 && !want[st.id] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		log.Info("scenario", "id", st.id)
		scs := st.fn(ctx)
		rep.Scenarios = append(rep.Scenarios, scs...)
		log.Info("scenario done", "id", st.id, "took", time.Since(t0).Round(time.Second))
	}
	if ctx.Err() != nil {
		rep.Scenarios = append(rep.Scenarios, &Scenario{ID: "-", Title: "run", Error: "interrupted or over the time limit: " + ctx.Err().Error()})
	}
	rep.LoadEnd = loadAvg()
	for _, s := range rep.Scenarios {
		s.finish()
		if s.Error != "" {
			rep.Failed = true
		}
	}
	f, err := os.Create(filepath.Join(*out, "results.md"))
	if err == nil {
		writeMarkdown(f, rep)
		f.Close()
	}
	writeMarkdown(os.Stdout, rep)
	if err := writeJSON(filepath.Join(*out, "results.json"), rep); err != nil {
		log.Error("write results", "err", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "results: %s\n", filepath.Join(*out, "results.json"))
	if rep.Failed {
		fmt.Fprintln(os.Stderr, "bench: FAILED: a scenario broke (see the table)")
		return 1
	}
	return 0
}

// envFloat is the number in the environment variable k, or 0.
func envFloat(k string) float64 {
	f, _ := strconv.ParseFloat(os.Getenv(k), 64)
	return f
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Peers, with the Debian package that brings each.
var peerOrder = []string{"rclone", "lftp", "curl", "vsftpd", "pyftpdlib", "logrotate", "rsyslog"}

var peerPackage = map[string]string{
	"rclone": "rclone", "lftp": "lftp", "curl": "curl", "vsftpd": "vsftpd", "pyftpdlib": "python3-pyftpdlib",
	"logrotate": "logrotate", "rsyslog": "rsyslog",
}

// peerNoInstall are the peers the bench does not apt-get install, and why.
var peerNoInstall = map[string]string{
	"rsyslog": "its package starts the system's syslog daemon",
}

func peerPresent(p string) bool {
	switch p {
	case "pyftpdlib":
		return exec.Command(pyBin, "-c", "import pyftpdlib, ftplib").Run() == nil
	case "rsyslog":
		_, err := os.Stat(rsyslogdBin)
		return err == nil
	case "logrotate":
		_, err := os.Stat(rotsim.Logrotate)
		return err == nil
	}
	_, err := exec.LookPath(p)
	if err != nil && p == "vsftpd" {
		_, err = os.Stat("/usr/sbin/vsftpd")
	}
	return err == nil
}

// findPeers finds the peers, installing the missing ones with apt-get when
// running as root; a peer still missing is skipped with the reason.
func (b *bench) findPeers(ctx context.Context, install bool) {
	b.peers = map[string]string{}
	var missing []string
	for _, p := range peerOrder {
		if !peerPresent(p) && peerNoInstall[p] == "" {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 && install && os.Geteuid() == 0 {
		if _, err := exec.LookPath("apt-get"); err == nil {
			var pkgs []string
			for _, p := range missing {
				pkgs = append(pkgs, peerPackage[p])
			}
			b.log.Info("installing peers", "packages", pkgs)
			env := []string{"DEBIAN_FRONTEND=noninteractive"}
			if _, err := run(ctx, cmdSpec{Name: "apt-get", Args: []string{"update", "-qq"}, Env: env}); err != nil {
				b.log.Warn("apt-get update", "err", err)
			}
			args := append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)
			if _, err := run(ctx, cmdSpec{Name: "apt-get", Args: args, Env: env}); err != nil {
				b.log.Warn("apt-get install", "err", err)
			}
		}
	}
	for _, p := range peerOrder {
		if peerPresent(p) {
			continue
		}
		why := "not installed"
		if reason := peerNoInstall[p]; reason != "" {
			why += "; apt-get install " + peerPackage[p] + " (not installed by the bench: " + reason + ")"
		} else if os.Geteuid() != 0 {
			why += "; run as root to apt-get install " + peerPackage[p]
		} else {
			why += "; apt-get install " + peerPackage[p] + " failed"
		}
		b.peers[p] = why
		b.log.Warn("peer skipped", "peer", p, "why", why)
	}
}

// has reports whether peer p is usable; if not, it marks r skipped.
func (b *bench) has(p string, r *Row) bool {
	if why := b.peers[p]; why != "" {
		r.Skipped = p + " " + why
		return false
	}
	return true
}

// peerVersion is the installed version of peer p, for the record.
func peerVersion(ctx context.Context, p string) string {
	var c cmdSpec
	switch p {
	case "rclone":
		c = cmdSpec{Name: "rclone", Args: []string{"version"}}
	case "lftp":
		c = cmdSpec{Name: "lftp", Args: []string{"--version"}}
	case "curl":
		c = cmdSpec{Name: "curl", Args: []string{"--version"}}
	case "vsftpd":
		c = cmdSpec{Name: "dpkg-query", Args: []string{"-W", "-f=${Version}", "vsftpd"}}
	case "pyftpdlib":
		c = cmdSpec{Name: pyBin, Args: []string{"-c", "import pyftpdlib, sys; print(pyftpdlib.__ver__, 'python', sys.version.split()[0])"}}
	case "logrotate":
		c = cmdSpec{Name: rotsim.Logrotate, Args: []string{"--version"}}
	case "rsyslog":
		c = cmdSpec{Name: rsyslogdBin, Args: []string{"-v"}}
	}
	c.Timeout = 20 * time.Second
	res, err := run(ctx, c)
	if err != nil {
		return "(version unknown)"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), "\n")
	switch p {
	case "lftp": // "LFTP | Version 4.9.2 | Copyright ..."
		if f := strings.Split(line, "|"); len(f) > 1 {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(f[1]), "Version"))
		}
	case "rclone", "curl", "logrotate", "rsyslog": // "rclone v1.60.1-DEV", "curl 7.88.1 (x86_64...) ...", "rsyslogd  8.2302.0 (aka 2023.02) ..."
		if f := strings.Fields(line); len(f) > 1 {
			line = f[1]
		}
	}
	return line
}

// loadAvg is the 1, 5 and 15 minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

func kernel() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "?"
	}
	var s []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// unmountUnder lazily unmounts anything still mounted below dir (a FUSE
// benchmark killed before its own cleanup).
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			_ = exec.Command("umount", "-l", f[1]).Run()
		}
	}
}

// scratch returns a new path under the work directory.
func (b *bench) scratch(name string) string {
	b.seq++
	return filepath.Join(b.work, fmt.Sprintf("%s-%d", name, b.seq))
}

// genTree writes a seeded log tree of files of size each (gen-logs).
func (b *bench) genTree(ctx context.Context, dir string, files int, size string) error {
	_, err := run(ctx, cmdSpec{Name: b.gen, Args: []string{"-out", dir, "-files", fmt.Sprint(files), "-size", size, "-seed", "1"}})
	return err
}

// more reports whether a scenario that started at t0 runs round number
// round (counted from 0).
func (b *bench) more(ctx context.Context, round int, t0 time.Time) bool {
	if ctx.Err() != nil || round >= b.sz.Rounds {
		return false
	}
	return round < b.sz.MinRounds || time.Since(t0) < b.sz.Budget
}

// syncDisks flushes dirty pages so one run's writeback does not land in the
// next run's time.
func syncDisks() { syscall.Sync() }
