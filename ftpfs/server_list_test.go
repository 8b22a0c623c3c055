package ftpfs_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bigDir makes a directory of n empty files in the archive.
func (e *srvEnv) bigDir(p string, n int) {
	e.t.Helper()
	dir := e.file(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for i := range n {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("app-%06d.log", i)), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			e.t.Fatal(err)
		}
		_ = f.Close()
	}
}

// heapPeak samples the heap in use every 5 ms until stop is closed and
// returns the highest value seen.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// TestServerListBoundedMemory: 8 listings (LIST, NLST, MLSD) of a directory
// of 100,000 files at once, each client pausing after its first bytes so
// that all are in flight together. Every listing is complete, and the
// server's heap grows by a bounded amount. Before the fix every listing
// held the whole directory (about 40 MB of FileInfo for 100,000 entries)
// from before its first byte to its end: the heap grew by 338 MiB; now by
// 5-7 MiB (the log line says; the bound leaves room for GC pacing).
func TestServerListBoundedMemory(t *testing.T) {
	const entries, clients = 100_000, 8
	const bound = 48 << 20
	e := srvStart(t, nil)
	start := time.Now()
	e.bigDir("/node1/big", entries)
	t.Logf("made %d files in %v", entries, time.Since(start).Round(time.Millisecond))
	raws := make([]*srvRaw, clients)
	for i := range raws {
		raws[i] = e.rawLogin(srvAgent)
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	peakc := heapPeak(stop)
	start = time.Now()

	verbs := []string{"LIST", "NLST", "MLSD"}
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i, r := range raws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			verb := verbs[i%len(verbs)]
			dc := r.epsv()
			if code, msg := r.cmd("%s /node1/big", verb); code != 150 {
				t.Errorf("%s: %d %s", verb, code, msg)
				bad.Add(1)
				return
			}
			br := bufio.NewReaderSize(dc, 4096)
			lines := 0
			if _, err := br.Peek(1); err != nil {
				t.Errorf("%s: %v", verb, err)
			}
			// All listings in flight at once, none read to its end.
			time.Sleep(500 * time.Millisecond)
			for {
				_, err := br.ReadSlice('\n')
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Errorf("%s: after %d lines: %v", verb, lines, err)
					break
				}
				lines++
			}
			if code, msg := r.reply(); code != 226 {
				t.Errorf("%s ended with %d %s", verb, code, msg)
			}
			if lines != entries {
				t.Errorf("%s: %d lines, want %d", verb, lines, entries)
			}
		}()
	}
	wg.Wait()
	t.Logf("listed in %v", time.Since(start).Round(time.Millisecond))
	close(stop)
	peak := <-peakc
	growth := int64(peak) - int64(base.HeapInuse)
	t.Logf("%d listings of %d entries at once: heap in use %.1f MiB before, peak %.1f MiB (+%.1f MiB)",
		clients, entries, float64(base.HeapInuse)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20))
	if growth > bound {
		t.Errorf("the heap grew by %.1f MiB during the listings, want at most %d MiB", float64(growth)/(1<<20), bound>>20)
	}
}
