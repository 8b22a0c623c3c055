package tier

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// niceOf is the nice value in a /proc stat file.
func niceOf(t *testing.T, stat string) int {
	t.Helper()
	b, err := os.ReadFile(stat)
	if err != nil {
		return -100 // a thread gone meanwhile
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.Atoi(f[16])
	if err != nil {
		t.Fatalf("%s: %v", stat, err)
	}
	return n
}

// threadsAt counts the process's threads at nice n.
func threadsAt(t *testing.T, n int) int {
	t.Helper()
	tasks, _ := filepath.Glob("/proc/self/task/*/stat")
	c := 0
	for _, s := range tasks {
		if niceOf(t, s) == n {
			c++
		}
	}
	return c
}

// TestSealLoopRunsNiced: the sealing loop (Run) runs on one thread of its
// own, sealNice lower in priority than the process (so that compressing
// segments yields the CPU to ingest), seals there, and the thread gets the
// process's priority back when the loop ends: no other goroutine ever runs
// at the lower one.
func TestSealLoopRunsNiced(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Every = 20 * time.Millisecond; c.SealSize = 256 << 10 })
	base := niceOf(t, "/proc/self/stat")
	low := min(base+sealNice, 19)
	if low == base {
		t.Skipf("the test process runs at nice %d already", base)
	}
	if n := threadsAt(t, low); n != 0 {
		t.Fatalf("%d threads at nice %d before the loop starts", n, low)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.tier.Run(ctx) }()
	data := logs("niced", 20000)
	e.write("node1/app/n.log", data, false)
	// At nice 19 on a busy machine the loop seals slowly: that is the point.
	deadline := time.Now().Add(2 * time.Minute)
	for len(e.objects("seg/")) < len(data)/(256<<10) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the loop sealed %d segments in 2 min, want %d", len(e.objects("seg/")), len(data)/(256<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := threadsAt(t, low); n != 1 {
		t.Errorf("%d threads at nice %d while the loop runs, want 1 (the loop's)", n, low)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for threadsAt(t, low) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a thread is still at nice %d after the loop", low)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := e.read("node1/app/n.log")
	if err != nil || string(got) != string(data) {
		t.Fatalf("read back %d bytes (err %v), want %d identical", len(got), err, len(data))
	}
}
