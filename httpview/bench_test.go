package httpview

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// benchServer indexes root and serves the API over loopback.
func benchServer(b *testing.B, root string) *httptest.Server {
	b.Helper()
	ts := httptest.NewServer(rawServer(b, root).Handler())
	b.Cleanup(ts.Close)
	return ts
}

// BenchmarkListDir10k lists a directory of 10,000 files through the API
// (one page of 10,000 entries, JSON) and reports the median latency.
//
//	go test -run '^$' -bench ListDir10k ./httpview/
func BenchmarkListDir10k(b *testing.B) {
	root := b.TempDir()
	dir := filepath.Join(root, "node1", "big")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("part-%05d.log", i)), []byte("x\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ts := benchServer(b, root)
	url := ts.URL + "/api/v1/files/node1/big?limit=10000"
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != 200 || n < 10000*100 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
}

// writeFullLog writes root/node1/big.log, 256 MiB of log lines (no holes), and
// returns its size.
func writeFullLog(b *testing.B, root string) int64 {
	b.Helper()
	p := filepath.Join(root, "node1", "big.log")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.Fatal(err)
	}
	chunk := logLines(1, 20000)
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var size int64
	for size < 256<<20 {
		n, err := f.Write(chunk)
		if err != nil {
			b.Fatal(err)
		}
		size += int64(n)
	}
	return size
}

// BenchmarkRaw downloads a 256 MiB file from /raw over loopback.
//
//	go test -run '^$' -bench Raw ./httpview/
func BenchmarkRaw(b *testing.B) {
	root := b.TempDir()
	size := writeFullLog(b, root)
	ts := benchServer(b, root)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Get(ts.URL + "/raw/node1/big.log")
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != size {
			b.Fatalf("got %d bytes of %d", n, size)
		}
	}
}
