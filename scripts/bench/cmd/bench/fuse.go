//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// fuseScenario runs scripts/bench/fuse.sh (owned by the FUSE work; it
// builds the archive, mounts it with `syncer mount` and times the same
// commands on both) once per round with ROUNDS=1, so that each round gives
// one alternating pair and the driver sees min and max. The mount's peak
// RSS is read from /proc (VmHWM) while fuse.sh runs.
func (b *bench) fuseScenario(ctx context.Context) []*Scenario {
	sz := b.sz
	sc := &Scenario{ID: "6", Title: "FUSE: syncer mount against the archive directory (page cache warm)"}
	if os.Geteuid() != 0 {
		sc.Skipped = "needs root and /dev/fuse (run make bench as root)"
		return []*Scenario{sc}
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		sc.Skipped = "no /dev/fuse on this machine"
		return []*Scenario{sc}
	}
	script := filepath.Join(b.repo, "scripts/bench/fuse.sh")
	sc.Setup = fmt.Sprintf("SIZE_MIB=%d SMALL_FILES=%d FIND_FILES=%d ROUNDS=1 bash scripts/bench/fuse.sh, run %d times; each row's archive-dir twin is the floor",
		sz.FuseMiB, sz.FuseSmall, sz.FuseFind, sz.Rounds)
	rows := map[string][2]*Row{} // test -> archive dir, mount
	var order []string
	var rss int64
	for round, t0 := 0, time.Now(); b.more(ctx, round, t0); round++ {
		out, peak, err := b.runFuseScript(ctx, script)
		rss = max(rss, peak)
		if err != nil {
			sc.failf("fuse.sh: %v", err)
			break
		}
		n := 0
		for _, l := range strings.Split(out, "\n") {
			name, arch, mnt, ok := parseFuseRow(l)
			if !ok {
				continue // the header, or not a table row
			}
			r, ok := rows[name]
			if !ok {
				r = [2]*Row{{Contender: "archive dir", Unit: "s"}, {Contender: "syncer mount", Unit: "s", Syncer: true}}
				rows[name] = r
				order = append(order, name)
			}
			r[0].Samples = append(r[0].Samples, arch)
			r[1].Samples = append(r[1].Samples, mnt)
			n++
		}
		if n == 0 {
			if strings.Contains(out, "skipped") {
				sc.Skipped = strings.TrimSpace(out)
				return []*Scenario{sc}
			}
			sc.failf("fuse.sh printed no result rows: %s", oneLine(out))
			break
		}
		b.log.Info("run", "scenario", "6", "round", round, "rows", n)
	}
	// One scenario per command, so that each ratio is mount over its floor.
	var out []*Scenario
	for i, name := range order {
		s := &Scenario{ID: fmt.Sprintf("6%c", 'a'+i), Title: "FUSE: " + name}
		r := rows[name]
		r[1].RSSKiB, r[1].RSSWhat = rss, "mount"
		s.Rows = []*Row{r[1], r[0]}
		out = append(out, s)
	}
	if len(out) == 0 || sc.Error != "" {
		out = append(out, sc)
	} else {
		out[0].Setup = sc.Setup
		out[0].Notes = []string{"÷ syncer for the archive-dir row is archive time over mount time (below 1: the mount is slower than the disk)"}
	}
	return out
}

// parseFuseRow reads "| NAME | ARCHIVE_S | MOUNT_S | ..." (NAME may hold
// a '|' of its own, as in "find | wc -l"): the first two numeric cells
// after the name.
func parseFuseRow(l string) (name string, arch, mnt float64, ok bool) {
	if !strings.HasPrefix(l, "|") {
		return "", 0, 0, false
	}
	cells := strings.Split(strings.Trim(l, " |"), "|")
	for i := 1; i+1 < len(cells); i++ {
		a, err1 := strconv.ParseFloat(strings.TrimSpace(cells[i]), 64)
		m, err2 := strconv.ParseFloat(strings.TrimSpace(cells[i+1]), 64)
		if err1 == nil && err2 == nil {
			return strings.TrimSpace(strings.Join(cells[:i], "|")), a, m, true
		}
	}
	return "", 0, 0, false
}

// runFuseScript runs fuse.sh in its own process group and returns what it
// printed and the largest VmHWM seen of its `syncer mount` process.
func (b *bench) runFuseScript(ctx context.Context, script string) (string, int64, error) {
	sz := b.sz
	ctx, cancel := context.WithTimeout(ctx, sz.ScenarioTimeout)
	defer cancel()
	cmd := exec.Command("bash", script)
	cmd.Dir = b.repo
	cmd.Env = append(os.Environ(), "SYNCER_BIN="+b.syncer, "BENCH_DIR="+b.work, "ROUNDS=1", "QUICK=",
		"SIZE_MIB="+strconv.Itoa(sz.FuseMiB), "SMALL_FILES="+strconv.Itoa(sz.FuseSmall), "FIND_FILES="+strconv.Itoa(sz.FuseFind))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out tailBuffer
	out.max = 64 << 10
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return out.String(), peak, err
		case <-tick.C:
			peak = max(peak, mountHWM(cmd.Process.Pid))
		case <-ctx.Done():
			// SIGTERM first: fuse.sh's trap unmounts and removes its tree.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
			return out.String(), peak, ctx.Err()
		}
	}
}

// mountHWM is the VmHWM (KiB) of the `syncer mount` process below root.
func mountHWM(root int) int64 {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(st)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	var best int64
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		queue = append(queue, children[p]...)
		cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		if err != nil {
			continue
		}
		args := strings.Split(string(cl), "\x00")
		if len(args) < 2 || filepath.Base(args[0]) != "syncer" || args[1] != "mount" {
			continue
		}
		best = max(best, statusKiB(p, "VmHWM:"))
	}
	return best
}

func statusKiB(pid int, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, key) {
			n, _ := strconv.ParseInt(strings.Fields(strings.TrimPrefix(l, key))[0], 10, 64)
			return n
		}
	}
	return 0
}
