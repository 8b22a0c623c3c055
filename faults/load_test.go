package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// procStatus reads a kB field (VmRSS, VmHWM) of /proc/PID/status in bytes.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return -1
}

func procFDs(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}

// TestLoad runs many agents in watch mode against one historian: files
// are created up front and appended to every second for the duration.
// Then the appends stop, every agent catches up, and every file is
// byte-identical on the historian; the historian's descriptors return to
// where they were before the agents started. Full: 50 agents, 10,000
// files, 60 s with FAULTS_FULL=1; by default 10 agents, 500 files, 20 s. Throughput and peak
// RSS are reported.
func TestLoad(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the historian's memory and descriptors (Linux)")
	}
	agents, perAgent, dur := 50, 200, 60*time.Second
	if !full() {
		agents, perAgent, dur = 10, 50, 20*time.Second
	}
	base := t.TempDir()
	names := make([]string, agents)
	for i := range names {
		names[i] = fmt.Sprintf("load%02d", i)
	}
	h := newHistorian(t, base, names...)
	// Every agent of the test connects from 127.0.0.1: lift the cap on
	// connections per address that a real cluster's agents never share.
	h.extra = []string{"--max-conns-per-ip", "0"}
	h.start()
	pid := h.cmd.Process.Pid
	fdsBefore := procFDs(pid)
	rng := nil2()
	var initial int64
	sizes := map[string]int64{} // archive path -> initial size
	for _, name := range names {
		for j := range perAgent {
			n := 500 + rng.IntN(4000)
			initial += int64(n)
			rel := fmt.Sprintf("d%d/%03d.log", j%4, j)
			writeLogFile(t, filepath.Join(base, "logs-"+name, rel), n, rng)
			sizes[filepath.Join(h.root, name, rel)] = int64(n)
		}
	}
	start := time.Now()
	ws := make([]*watcher, agents)
	for i, name := range names {
		ws[i] = startWatch(t, h.passwords[name], time.Second,
			append(agentArgs(name, h.ftp, filepath.Join(base, "logs-"+name), filepath.Join(base, "state-"+name)), "--parallel", "2")...)
	}
	// Appends: every second, a tenth of each agent's files get a line.
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var mu sync.Mutex
	var appended int64
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func(seed uint64, dir string) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 9))
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				for range max(perAgent/10, 1) {
					j := r.IntN(perAgent)
					line := logBytes(80+r.IntN(200), r)
					appendFile(t, filepath.Join(dir, fmt.Sprintf("d%d/%03d.log", j%4, j)), line)
					mu.Lock()
					appended += int64(len(line))
					mu.Unlock()
				}
			}
		}(uint64(i), filepath.Join(base, "logs-"+name))
	}
	// The first pass: every initial file archived at least to its size.
	var firstPass time.Duration
	go func() {
		for ctx.Err() == nil {
			done := true
			for p, n := range sizes {
				if fi, err := os.Stat(p); err != nil || fi.Size() < n {
					done = false
					break
				}
			}
			if done {
				mu.Lock()
				firstPass = time.Since(start)
				mu.Unlock()
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	var rssMid atomic.Int64 // written by the sampler, read at the end
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(dur / 2):
			rssMid.Store(procStatus(pid, "VmRSS"))
		}
	}()
	wg.Wait()
	// Catch up.
	files, ok := catchUp(t, base, h.root, names, 5*time.Minute)
	elapsed := time.Since(start)
	var lost int64
	if !ok {
		for _, name := range names {
			_, l := compareTree(t, filepath.Join(base, "logs-"+name), filepath.Join(h.root, name))
			lost += l
		}
	}
	errorsLogged := 0
	for i, w := range ws {
		if w.exited() {
			t.Errorf("%s: watch exited\n%s", names[i], w.stderr)
		}
		errorsLogged += strings.Count(w.stderr.String(), "level=ERROR") + strings.Count(w.stderr.String(), "level=WARN")
	}
	rssEnd, peak := procStatus(pid, "VmRSS"), procStatus(pid, "VmHWM")
	fdsLoaded := procFDs(pid)
	for _, w := range ws {
		w.stop(t)
	}
	// Connections close as the agents go; the index may hold a few files.
	var fdsAfter int
	waitFor(30*time.Second, func() bool { fdsAfter = procFDs(pid); return fdsAfter <= fdsBefore+10 })
	if fdsAfter > fdsBefore+10 {
		t.Errorf("historian descriptors: %d before the agents, %d with them, %d after they stopped: a leak", fdsBefore, fdsLoaded, fdsAfter)
	}
	if errorsLogged > 0 {
		t.Errorf("the agents logged %d warnings or errors under load", errorsLogged)
	}
	mu.Lock()
	fp := firstPass
	mu.Unlock()
	if fp == 0 {
		t.Errorf("the first pass did not complete within %s", dur)
		fp = dur
	}
	report(t, fmt.Sprintf("Load: %d agents in watch mode (1 s interval), %d files, appends every second for %s", agents, files, dur),
		fmt.Sprintf("no errors; first pass (%.1f MiB, %d files) archived in %.1f s (%.0f files/s, %.2f MiB/s, 2 shared cores, -race); %.2f MiB of appends, all caught up %.0f s after start; historian RSS %d MiB at half time, %d MiB at the end, peak %d MiB; descriptors %d before, %d under load, %d after (`TestLoad`)",
			float64(initial)/(1<<20), len(sizes), fp.Seconds(), float64(len(sizes))/fp.Seconds(), float64(initial)/(1<<20)/fp.Seconds(),
			float64(appended)/(1<<20), elapsed.Seconds(), rssMid.Load()>>20, rssEnd>>20, peak>>20, fdsBefore, fdsLoaded, fdsAfter), lost)
	h.stop()
}
