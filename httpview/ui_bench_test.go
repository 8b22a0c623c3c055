package httpview

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeBigLog makes a log of size bytes: real lines in its first and last
// 256 KiB and a hole between (a sparse file, so the benchmark needs no
// 2 GiB of disk). The viewer reads a window at a time, so what lies in
// the middle does not change what the first paint costs.
func writeBigLog(b *testing.B, p string, size int64) {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	chunk := demoLog(7, 4000)
	if int64(len(chunk)) > size/2 {
		chunk = chunk[:size/2]
	}
	if _, err := f.Write(chunk); err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	if _, err := f.WriteAt(chunk, size-int64(len(chunk))); err != nil {
		b.Fatal(err)
	}
}

func httpGet(b *testing.B, url string) []byte {
	b.Helper()
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return body
}

// BenchmarkFileViewFirstPaint opens the file view of a 2 KiB and of a
// 2 GiB log: "http" is what the page fetches before its first lines show
// (the HTML page, then the first window of lines); "browser" is the time
// from navigation to the first line on screen in headless Chromium;
// "end" is the jump to the end, numbered (the line count of the whole
// file is made by the first one, logged, and remembered).
//
//	go test -run '^$' -bench FileViewFirstPaint -benchtime 20x ./httpview/
func BenchmarkFileViewFirstPaint(b *testing.B) {
	root := b.TempDir()
	sizes := []struct {
		name string
		size int64
	}{{"2KiB", 2 << 10}, {"1MiB", 1 << 20}, {"2GiB", 2 << 30}}
	for _, s := range sizes {
		writeBigLog(b, filepath.Join(root, "node1", "app", s.name+".log"), s.size)
	}
	ts := benchServer(b, root)
	for _, s := range sizes {
		page := "/view/node1/app/" + s.name + ".log"
		lines := "/api/v1/lines/node1/app/" + s.name + ".log"
		// The first jump to the end counts the file's lines (once).
		t0 := time.Now()
		var l LinesJSON
		if err := json.Unmarshal(httpGet(b, ts.URL+lines+"?end=1&bytes=65536"), &l); err != nil || l.End != s.size {
			b.Fatalf("end: %v, end %d", err, l.End)
		}
		b.Logf("%s: first jump to the end %v, first line number there %d", s.name, time.Since(t0), l.FirstLine)
		b.Run("http/"+s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				httpGet(b, ts.URL+page)
				var l LinesJSON
				if err := json.Unmarshal(httpGet(b, ts.URL+lines+"?offset=0&bytes=65536"), &l); err != nil || len(l.Lines) == 0 || l.Size != s.size {
					b.Fatalf("lines: %v, %d lines, size %d", err, len(l.Lines), l.Size)
				}
			}
		})
		b.Run("end/"+s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var l LinesJSON
				if err := json.Unmarshal(httpGet(b, ts.URL+lines+"?end=1&bytes=65536"), &l); err != nil || l.End != s.size || l.FirstLine == 0 {
					b.Fatalf("end: %v, end %d, first line %d", err, l.End, l.FirstLine)
				}
			}
		})
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		b.Logf("no browser figures: %v", err)
		return
	}
	br := newBrowser(b, ts.URL)
	for _, s := range sizes {
		page := "/view/node1/app/" + s.name + ".log"
		b.Run("browser/"+s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				br.open(page, `document.querySelectorAll('#lines .ln').length > 0`)
			}
		})
	}
}

// BenchmarkContentSearchVsGrep searches 1 GiB in 1,000 files of logs
// through /api/v1/grep (read to its end) and with `grep -rn` over the same
// tree, page cache warm for both; grep-ratio is grep's time over ours
// (1 means as fast as grep). The pattern matches one line per file.
//
//	go test -run '^$' -bench ContentSearchVsGrep -benchtime 3x ./httpview/
func BenchmarkContentSearchVsGrep(b *testing.B) {
	if _, err := exec.LookPath("grep"); err != nil {
		b.Skip("needs grep")
	}
	root := b.TempDir()
	const files, fileSize = 1000, 1 << 20
	var variants [][]byte
	for v := 0; v < 8; v++ {
		d := demoLog(int64(100+v), 15000)
		variants = append(variants, d[:bytes.LastIndexByte(d[:fileSize-100], '\n')+1])
	}
	for i := 0; i < files; i++ {
		d := append([]byte(nil), variants[i%len(variants)]...)
		mid := bytes.IndexByte(d[len(d)/2:], '\n') + len(d)/2 + 1
		line := []byte(fmt.Sprintf("2026-11-24T08:30:00.000Z FATAL api  disk full on /var/lib/app%d\n", i))
		d = append(d[:mid:mid], append(line, d[mid:]...)...)
		p := filepath.Join(root, "node"+fmt.Sprint(i%10), "app", fmt.Sprintf("part-%04d.log", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, d, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ts := benchServer(b, root)
	const pattern = `FATAL .*disk full`
	grepR := func() time.Duration {
		t0 := time.Now()
		out, err := exec.Command("grep", "-rn", "-E", pattern, root).Output()
		if err != nil {
			b.Fatalf("grep: %v", err)
		}
		if n := bytes.Count(out, []byte("\n")); n != files {
			b.Fatalf("grep found %d lines, want %d", n, files)
		}
		return time.Since(t0)
	}
	ours := func() time.Duration {
		t0 := time.Now()
		body := httpGet(b, ts.URL+"/api/v1/grep?max=10000&timeout=60s&q="+strings.ReplaceAll(pattern, " ", "+"))
		if n := bytes.Count(body, []byte("\n")); n != files+1 || !bytes.Contains(body, []byte(`"done":true`)) || bytes.Contains(body, []byte(`"reason"`)) {
			b.Fatalf("api grep: %d lines, tail %q", n, body[max(0, len(body)-200):])
		}
		return time.Since(t0)
	}
	grepR() // warm the page cache
	ours()
	b.ResetTimer()
	var tOurs, tGrep time.Duration
	for i := 0; i < b.N; i++ {
		tOurs += ours()
		b.StopTimer()
		tGrep += grepR()
		b.StartTimer()
	}
	b.ReportMetric(float64(tGrep.Microseconds())/float64(b.N)/1000, "grep-ms")
	b.ReportMetric(float64(tGrep)/float64(tOurs), "grep-ratio")
	b.ReportMetric(float64(files*fileSize)/(1<<20)/(float64(tOurs)/float64(b.N)/1e9), "MiB/s")
}
