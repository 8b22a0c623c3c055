package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestHistorianKill9 kills `syncer serve` with SIGKILL while three agents
// in watch mode upload (growing logs and many small files), restarts it on
// the same root and state after a pause, several times. The agents are not
// touched: they recover by themselves, and once the writers stop every file
// is archived byte-identical and the index shows it verified.
func TestHistorianKill9(t *testing.T) {
	kills, agents, smallFiles := 4, 3, 300
	if !full() {
		kills, agents, smallFiles = 2, 2, 100
	}
	base := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	names := make([]string, agents)
	for i := range names {
		names[i] = fmt.Sprintf("node%d", i+1)
	}
	h := newHistorian(t, base, names...)
	h.extra = []string{"--max-upload-rate", "4MiB"}
	h.start()

	ctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	var writers sync.WaitGroup
	var ws []*watcher
	for i, name := range names {
		logs := filepath.Join(base, "logs-"+name)
		writeLogFile(t, filepath.Join(logs, "big.log"), 6<<20, rng)
		for j := range smallFiles {
			writeLogFile(t, filepath.Join(logs, fmt.Sprintf("s/%03d.log", j)), 100+rng.IntN(20000), rng)
		}
		// A writer appends to the growing log every 50 ms until stopped.
		writers.Add(1)
		go func(seed uint64) {
			defer writers.Done()
			r := rand.New(rand.NewPCG(seed, 1))
			for ctx.Err() == nil {
				appendFile(t, filepath.Join(logs, "app.log"), logBytes(200+r.IntN(4000), r))
				time.Sleep(50 * time.Millisecond)
			}
		}(uint64(i))
		ws = append(ws, startWatch(t, h.passwords[name], 500*time.Millisecond,
			agentArgs(name, h.ftp, logs, filepath.Join(base, "state-"+name))...))
	}
	for i := range kills {
		time.Sleep(time.Duration(700+rng.IntN(1500)) * time.Millisecond)
		h.kill9()
		time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		h.start()
		t.Logf("historian killed and restarted (%d)", i+1)
	}
	stopWriters()
	writers.Wait()
	// Now the agents catch up by themselves.
	files, caughtUp := catchUp(t, base, h.root, names, 3*time.Minute)
	var lost int64
	for i, name := range names {
		if ws[i].exited() {
			t.Errorf("%s: watch exited by itself\n%s", name, ws[i].stderr)
		}
		if !caughtUp {
			_, l := compareTree(t, filepath.Join(base, "logs-"+name), filepath.Join(h.root, name))
			lost += l
		}
	}
	for i, name := range names {
		ws[i].stop(t)
		checkIndex(t, h, name, filepath.Join(base, "logs-"+name))
	}
	report(t, fmt.Sprintf("kill -9 of `syncer serve` %d times during uploads, %d agents in watch mode", kills, agents),
		fmt.Sprintf("agents retried with backoff and caught up by themselves; %d files identical by SHA-256, index verified (`TestHistorianKill9`)", files), lost)
	h.stop()
}
