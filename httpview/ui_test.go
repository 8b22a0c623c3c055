package httpview

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// uiTree writes a small archive for agent n1 straight into the root and
// reconciles the index: the viewer reads what is on disk, so these tests
// do not need the FTP path (browser_test.go pushes with the real agent).
func uiTree(t *testing.T, h *hist) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"app/server.log":           logLines(1, 300),
		"app/<script>alert(1).log": []byte("x\n"),
		"app/evil.log":             []byte("ok\n<script>alert('line')</script>\n<img src=x onerror=alert(2)>\n"),
		"app/crlf.log":             []byte("one\r\ntwo\r\nthree"),
		"app/bin.dat":              append([]byte("BIN\x00\x01\x02"), bytes.Repeat([]byte{0xff}, 100)...),
		"app/old.log.gz":           gzipped(t, logLines(2, 5000)),
		"app/lat\xe9n1.log":        []byte("not utf-8 name\n"),
		"deep/a/b/c.log":           []byte("deep\n"),
	}
	for rel, b := range files {
		writeFile(t, filepath.Join(h.root, "n1", filepath.FromSlash(rel)), b)
	}
	writeFile(t, filepath.Join(h.root, "n1", ".syncer", "agent.json"), []byte(`{"id":"n1","host":"node-one","interval":"10s"}`))
	h.reconcile()
	return files
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// inlineHandler finds event-handler attributes (onclick=...) in HTML.
var inlineHandler = regexp.MustCompile(`(?i)<[a-z][^>]*\son[a-z]+\s*=`)

func TestUIPagesRenderEscapedWithHeaders(t *testing.T) {
	h := newHist(t, false)
	uiTree(t, h)
	tests := []struct {
		path string
		want []string
	}{
		{"/", []string{"Overview", "127.0.0.1:2121", h.root, "verified"}},
		{"/agents", []string{"n1", "node-one", "never seen", "ghost", "sort=last_seen"}},
		{"/agents?sort=files&order=desc", []string{"n1", "▼"}},
		{"/agent/n1", []string{"app/", "deep/", "tar.gz", "zip"}},
		{"/agent/n1/app", []string{"server.log", "&lt;script&gt;alert(1).log", "lat\uFFFDn1.log", "lat%E9n1.log", "/view/n1/app/%3Cscript%3Ealert%281%29.log"}},
		{"/view/n1/app/server.log", []string{"server.log", "data-path=\"n1/app/server.log\"", "Live tail"}},
		{"/view/n1/app/bin.dat", []string{"binary file", "download=1"}},
		{"/view/n1/app/old.log.gz", []string{`data-gz="true"`}},
		{"/search?name=*.log", []string{"By file name", `value="*.log"`}},
		{"/search?q=ERROR&agent=n1", []string{"By content", `value="ERROR"`, `value="n1" checked`}},
		{"/connections", []string{"FTP connections"}},
	}
	for _, tt := range tests {
		resp, body := h.get("", tt.path)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d %.300s", tt.path, resp.StatusCode, body)
			continue
		}
		s := string(body)
		for _, w := range tt.want {
			if !strings.Contains(s, w) {
				t.Errorf("GET %s: no %q in the page", tt.path, w)
			}
		}
		if strings.Contains(s, "<script>alert") || strings.Contains(s, "<img src=x") {
			t.Errorf("GET %s: archive text reached the page as HTML", tt.path)
		}
		if m := inlineHandler.FindString(s); m != "" {
			t.Errorf("GET %s: inline event handler %q", tt.path, m)
		}
		for _, sc := range regexp.MustCompile(`<script[^>]*>`).FindAllString(s, -1) {
			if !strings.Contains(sc, `src="/static/`) {
				t.Errorf("GET %s: inline script %q", tt.path, sc)
			}
		}
		hd := resp.Header
		if csp := hd.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: CSP %q", tt.path, csp)
		}
		if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") == "" {
			t.Errorf("GET %s: headers %v", tt.path, hd)
		}
		if ct := hd.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", tt.path, ct)
		}
	}
	// The assets are embedded and typed.
	for name, ct := range map[string]string{"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml"} {
		resp, body := h.get("", "/static/"+name)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct || len(body) < 100 {
			t.Errorf("GET /static/%s: %d %q %d bytes", name, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	// A file page redirects to the view; a directory view to the listing.
	for from, to := range map[string]string{"/agent/n1/app/server.log": "/view/n1/app/server.log", "/view/n1/app": "/agent/n1/app", "/agent/": "/agents"} {
		req, _ := http.NewRequest("GET", h.http.URL+from, nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != to {
			t.Errorf("GET %s: %d Location %q, want %q", from, resp.StatusCode, resp.Header.Get("Location"), to)
		}
	}
	for _, p := range []string{"/agent/n1/nope", "/view/n1/app/nope.log", "/agent/nobody"} {
		if resp, body := h.get("", p); resp.StatusCode != 404 || !strings.Contains(string(body), "<html") {
			t.Errorf("GET %s: %d, want an HTML 404", p, resp.StatusCode)
		}
	}
}

func TestUIDirectoryPaging(t *testing.T) {
	h := newHist(t, false)
	const n = PageSize*2 + 17
	for i := 0; i < n; i++ {
		writeFile(t, filepath.Join(h.root, "n1", "many", fmt.Sprintf("f%05d.log", i)), []byte("x\n"))
	}
	h.reconcile()
	seen := 0
	next := "/agent/n1/many"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		resp, body := h.get("", next)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", next, resp.StatusCode)
		}
		s := string(body)
		rows := strings.Count(s, `<tr><td><a href="/view/n1/many/f`)
		if rows > PageSize {
			t.Fatalf("GET %s: %d rows, more than a page", next, rows)
		}
		if !strings.Contains(s, fmt.Sprintf("f%05d.log", seen)) {
			t.Fatalf("GET %s: page does not start at f%05d.log", next, seen)
		}
		seen += rows
		next = ""
		if m := regexp.MustCompile(`rel="next" href="([^"]+)"`).FindStringSubmatch(s); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if seen != n {
		t.Errorf("pages showed %d entries, want %d", seen, n)
	}
}

// lines fetches /api/v1/lines.
func (h *hist) lines(path, query string) LinesJSON {
	h.t.Helper()
	var out LinesJSON
	h.getJSON("", "/api/v1/lines/"+path+"?"+query, &out)
	return out
}

func TestUILinesWindows(t *testing.T) {
	h := newHist(t, false)
	// Lines of varied length, enough for several marks of the line index.
	var b bytes.Buffer
	var starts []int64
	for i := 1; b.Len() < 3*markStep+12345; i++ {
		starts = append(starts, int64(b.Len()))
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("x", i%97))
	}
	data := b.Bytes()
	writeFile(t, filepath.Join(h.root, "n1", "big.log"), data)
	writeFile(t, filepath.Join(h.root, "n1", "big.log.gz"), gzipped(t, data))
	writeFile(t, filepath.Join(h.root, "n1", "long.log"), append(bytes.Repeat([]byte("L"), 100000), "\nshort\n"...))
	h.reconcile()
	lineNo := func(off int64) int64 { // 1-based number of the line starting at off
		for i, s := range starts {
			if s == off {
				return int64(i + 1)
			}
		}
		t.Fatalf("offset %d is not a line start", off)
		return 0
	}
	check := func(name, path, q string, l LinesJSON) {
		t.Helper()
		if l.Size != int64(len(data)) {
			t.Errorf("%s %s: size %d, want %d", path, q, l.Size, len(data))
		}
		if len(l.Lines) == 0 || len(l.Lines) != len(l.Offsets) {
			t.Fatalf("%s %s: %d lines, %d offsets", path, q, len(l.Lines), len(l.Offsets))
		}
		if l.Offsets[0] != l.Start {
			t.Errorf("%s %s: first offset %d, start %d", path, q, l.Offsets[0], l.Start)
		}
		want := string(data[l.Start:l.End])
		if got := strings.Join(l.Lines, "\n") + "\n"; got != want {
			t.Errorf("%s %s: lines are not the bytes [%d,%d)", path, q, l.Start, l.End)
		}
		for i, off := range l.Offsets {
			if off < int64(len(data)) && (off > 0 && data[off-1] != '\n') {
				t.Errorf("%s %s: offset %d of line %d is not a line start", path, q, off, i)
			}
		}
		if l.FirstLine != lineNo(l.Start) {
			t.Errorf("%s %s (%s): first_line %d, want %d", path, q, name, l.FirstLine, lineNo(l.Start))
		}
	}
	mid := int64(len(data) / 2)
	for _, path := range []string{"n1/big.log", "n1/big.log.gz"} {
		tests := []struct {
			name, q string
			start   int64 // -1: do not check
		}{
			{"start", "offset=0", 0},
			{"mid, not at a line start", fmt.Sprintf("offset=%d", mid), -1},
			{"at a line start", fmt.Sprintf("offset=%d", starts[5000]), starts[5000]},
			{"before", fmt.Sprintf("before=%d&bytes=4096", starts[7000]), -1},
			{"line", "line=12345", starts[12344]},
			{"line 1", "line=1", 0},
			{"end", "end=1&bytes=1000", -1},
		}
		for _, tt := range tests {
			l := h.lines(path, tt.q)
			check(tt.name, path, tt.q, l)
			if tt.start >= 0 && l.Start != tt.start {
				t.Errorf("%s %s: start %d, want %d", path, tt.q, l.Start, tt.start)
			}
			if strings.HasPrefix(tt.q, "before=") && l.End != starts[7000] {
				t.Errorf("%s %s: end %d, want %d", path, tt.q, l.End, starts[7000])
			}
			if strings.HasPrefix(tt.q, "end=") && l.End != int64(len(data)) {
				t.Errorf("%s %s: end %d, want the size", path, tt.q, l.End)
			}
			if l.Gz != strings.HasSuffix(path, ".gz") {
				t.Errorf("%s: gz %v", path, l.Gz)
			}
		}
	}
	// A line longer than the window is cut, not lost: the next window goes on.
	l := h.lines("n1/long.log", "offset=0&bytes=4096")
	if !l.Cut || len(l.Lines) != 1 || l.End != 4096 {
		t.Errorf("long line: cut %v, %d lines, end %d", l.Cut, len(l.Lines), l.End)
	}
	// CRLF and a last line without newline.
	writeFile(t, filepath.Join(h.root, "n1", "crlf.log"), []byte("one\r\ntwo\r\nthree"))
	h.reconcile()
	if l := h.lines("n1/crlf.log", "offset=0"); strings.Join(l.Lines, "|") != "one|two|three" || l.End != 15 {
		t.Errorf("crlf: %q end %d", l.Lines, l.End)
	}
}

// find asks the find API as the viewer does: again from where a search
// cut by its time budget stopped (more), up to 20 times.
func (h *hist) find(path, query string, from int64, dir string) FindJSON {
	h.t.Helper()
	var f FindJSON
	for try := 0; try < 20; try++ {
		f = FindJSON{}
		h.getJSON("", fmt.Sprintf("/api/v1/find/%s?%s&from=%d&dir=%s", path, query, from, dir), &f)
		if f.Found || !f.More {
			return f
		}
		from = f.Scanned
	}
	h.t.Fatalf("find %s %s from %d: still searching after 20 budgets: %+v", path, dir, from, f)
	return f
}

func TestUIFindInFile(t *testing.T) {
	h := newHist(t, false)
	var b bytes.Buffer
	var hits []int64
	for i := 1; b.Len() < 3*(1<<20); i++ {
		if i%5003 == 0 {
			hits = append(hits, int64(b.Len()))
			fmt.Fprintf(&b, "%d NEEDLE found here\n", i)
			continue
		}
		fmt.Fprintf(&b, "%d haystack %s\n", i, strings.Repeat("h", i%50))
	}
	data := b.Bytes()
	writeFile(t, filepath.Join(h.root, "n1", "f.log"), data)
	writeFile(t, filepath.Join(h.root, "n1", "f.log.gz"), gzipped(t, data))
	h.reconcile()
	if len(hits) < 5 {
		t.Fatalf("fixture has %d hits", len(hits))
	}
	for _, path := range []string{"n1/f.log", "n1/f.log.gz"} {
		// Forward through every hit, case-insensitive literal by default.
		from := int64(0)
		for i, want := range hits {
			f := h.find(path, "q=needle", from, "next")
			if !f.Found || f.Offset != want {
				t.Fatalf("%s next #%d from %d: %+v, want offset %d", path, i, from, f, want)
			}
			from = f.End
		}
		f := h.find(path, "q=needle", from, "next")
		if f.Found || f.More {
			t.Errorf("%s: a match after the last: %+v", path, f)
		}
		// Backward from the end through every hit.
		from = int64(len(data))
		for i := len(hits) - 1; i >= 0; i-- {
			f = h.find(path, "q=needle", from, "prev")
			if !f.Found || f.Offset != hits[i] {
				t.Fatalf("%s prev #%d from %d: %+v, want %d", path, i, from, f, hits[i])
			}
			from = f.Offset
		}
		f = h.find(path, "q=needle", from, "prev")
		if f.Found || f.More {
			t.Errorf("%s: a match before the first: %+v", path, f)
		}
		// Case and regular expressions.
		h.getJSON("", "/api/v1/find/"+path+"?q=needle&case=1&dir=next", &f)
		if f.Found {
			t.Errorf("%s: case=1 matched another case", path)
		}
		h.getJSON("", "/api/v1/find/"+path+"?q=%5E%5Cd%2B+NEEDLE&regex=1&dir=next", &f)
		if !f.Found || f.Offset != hits[0] {
			t.Errorf("%s: regex: %+v", path, f)
		}
		// A literal search does not treat the query as a pattern.
		h.getJSON("", "/api/v1/find/"+path+"?q=N.EDLE&dir=next", &f)
		if f.Found {
			t.Errorf("%s: literal search matched as a pattern", path)
		}
	}
	if resp, _ := h.get("", "/api/v1/find/n1/f.log?q=%28&regex=1"); resp.StatusCode != 400 {
		t.Errorf("bad regexp: %d", resp.StatusCode)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name, id, data string
}

func readEvents(t *testing.T, r *bufio.Reader, out chan<- sseEvent) {
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			close(out)
			return
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.name != "" {
				out <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

func TestUITailFollowsAppends(t *testing.T) {
	h := newHist(t, false)
	p := filepath.Join(h.root, "n1", "live.log")
	writeFile(t, p, []byte("first\n"))
	h.reconcile()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.http.URL+"/api/v1/tail/n1/live.log?offset=6", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent, 16)
	go readEvents(t, bufio.NewReader(resp.Body), events)
	next := func() sseEvent {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return ev
		case <-ctx.Done():
			t.Fatal("no event in time")
		}
		return sseEvent{}
	}
	appendTo := func(s string) {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	// A half-written line waits for its newline.
	appendTo("second\nthi")
	ev := next()
	var tl TailLines
	if err := json.Unmarshal([]byte(ev.data), &tl); err != nil || ev.name != "lines" {
		t.Fatalf("event %+v: %v", ev, err)
	}
	if strings.Join(tl.Lines, "|") != "second" || tl.Start != 6 || tl.End != 13 || ev.id != "13" {
		t.Fatalf("first event: %+v id %s", tl, ev.id)
	}
	appendTo("rd <script>x</script>\nfourth\n")
	ev = next()
	tl = TailLines{}
	if err := json.Unmarshal([]byte(ev.data), &tl); err != nil {
		t.Fatal(err)
	}
	if strings.Join(tl.Lines, "|") != "third <script>x</script>|fourth" || tl.Start != 13 || tl.Offsets[1] != 13+int64(len("third <script>x</script>\n")) {
		t.Fatalf("second event: %+v", tl)
	}
	// A rewritten file (shorter than what was followed) resets the view.
	if err := os.WriteFile(p, []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ev = next(); ev.name != "reset" {
		t.Fatalf("after a rewrite: %+v", ev)
	}
	// Last-Event-ID resumes where a dropped stream was.
	cancel()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	req, _ = http.NewRequestWithContext(ctx2, "GET", h.http.URL+"/api/v1/tail/n1/live.log?offset=0", nil)
	req.Header.Set("Last-Event-ID", "2")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	events2 := make(chan sseEvent, 4)
	go readEvents(t, bufio.NewReader(resp2.Body), events2)
	select {
	case ev := <-events2:
		if err := json.Unmarshal([]byte(ev.data), &tl); err != nil || tl.Start != 2 || strings.Join(tl.Lines, "|") != "w" {
			t.Errorf("resumed event %+v: %+v %v", ev, tl, err)
		}
	case <-ctx2.Done():
		t.Error("no event after resuming")
	}
	if resp, _ := h.get("", "/api/v1/tail/n1/nope.log"); resp.StatusCode != 404 {
		t.Errorf("tail of a missing file: %d", resp.StatusCode)
	}
}

func TestUIDownloadDirectory(t *testing.T) {
	h := newHist(t, false)
	files := uiTree(t, h)
	for _, format := range []string{"tar.gz", "zip"} {
		resp, body := h.get("", "/download/n1/app?format="+format)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", format, resp.StatusCode, body)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") || !strings.Contains(cd, "app."+format) {
			t.Errorf("%s: Content-Disposition %q", format, cd)
		}
		got := map[string][]byte{}
		if format == "zip" {
			zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range zr.File {
				rc, err := f.Open()
				if err != nil {
					t.Fatal(err)
				}
				got[f.Name], _ = io.ReadAll(rc)
				rc.Close()
			}
		} else {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(zr)
			for {
				hdr, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got[hdr.Name], _ = io.ReadAll(tr)
			}
		}
		want := 0
		for rel, b := range files {
			if !strings.HasPrefix(rel, "app/") {
				continue
			}
			want++
			if g, ok := got[rel]; !ok || !bytes.Equal(g, b) {
				t.Errorf("%s: %q: %d bytes, in archive %v", format, rel, len(g), ok)
			}
		}
		if len(got) != want {
			t.Errorf("%s: %d entries, want %d: %q", format, len(got), want, keys(got))
		}
	}
	// The agent's whole tree leaves out its metadata.
	resp, body := h.get("", "/download/n1?format=zip")
	if resp.StatusCode != 200 {
		t.Fatalf("agent zip: %d", resp.StatusCode)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != len(files) {
		t.Errorf("agent zip: %d files, want %d", len(zr.File), len(files))
	}
	for _, f := range zr.File {
		if strings.Contains(f.Name, ".syncer") {
			t.Errorf("agent zip holds %s", f.Name)
		}
	}
	// A file goes to /raw as an attachment.
	req, _ := http.NewRequest("GET", h.http.URL+"/download/n1/app/server.log", nil)
	r, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/raw/n1/app/server.log?download=1" {
		t.Errorf("file download: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestUIPathsCannotEscape(t *testing.T) {
	h := newHist(t, false)
	uiTree(t, h)
	outside := t.TempDir()
	secret := "TOP-SECRET-OUTSIDE-THE-ARCHIVE"
	writeFile(t, filepath.Join(outside, "secret.log"), []byte(secret+"\n"))
	if err := os.Symlink(outside, filepath.Join(h.root, "n1", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.log"), filepath.Join(h.root, "n1", "app", "secret.log")); err != nil {
		t.Fatal(err)
	}
	h.reconcile()
	rel, _ := filepath.Rel(h.root, outside)
	paths := []string{
		"/n1/../../" + rel + "/secret.log",
		"/n1/%2e%2e/%2e%2e/" + rel + "/secret.log",
		"/n1%2f..%2f..%2f" + strings.ReplaceAll(rel, "/", "%2f") + "%2fsecret.log",
		"/n1/app/%00server.log",
		"/n1/%252e%252e/etc/passwd",
		"/n1/link/secret.log",
		"/n1/app/secret.log",
		"/n1/link",
		"/..",
		"/n1/.syncer/agent.json",
		"/n1/.syncer",
	}
	for _, prefix := range []string{"/view", "/agent", "/download", "/api/v1/lines", "/api/v1/tail", "/api/v1/find"} {
		for _, p := range paths {
			target := prefix + p
			if prefix == "/api/v1/find" {
				target += "?q=SECRET"
			}
			code, body := h.rawGet(target)
			if code == 200 || code >= 500 {
				t.Errorf("GET %s: status %d", target, code)
			}
			if strings.Contains(body, secret) || strings.Contains(body, "root:") || strings.Contains(body, "node-one") {
				t.Errorf("GET %s leaked: %.200q", target, body)
			}
		}
	}
}

func TestUIAuthRulesApplyToPages(t *testing.T) {
	h := newHist(t, true)
	uiTree(t, h)
	writeFile(t, filepath.Join(h.root, "n2", "x.log"), []byte("n2 data\n"))
	h.reconcile()
	pages := []string{"/", "/agents", "/agent/n1", "/view/n1/app/server.log", "/search", "/connections",
		"/download/n1/app", "/api/v1/lines/n1/app/server.log", "/api/v1/find/n1/app/server.log?q=x", "/api/v1/tail/n1/app/server.log"}
	for _, p := range pages {
		if resp, _ := h.get("", p); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without credentials: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := h.get("", "/static/app.css"); resp.StatusCode != 200 {
		t.Errorf("static asset behind auth: %d", resp.StatusCode)
	}
	// n2 is confined to its own tree: n1's pages are not found for it.
	for _, p := range pages[2:] {
		if strings.Contains(p, "/search") || strings.Contains(p, "/connections") {
			continue
		}
		if resp, body := h.get("n2", p); resp.StatusCode != 404 || strings.Contains(string(body), "server.log") {
			t.Errorf("GET %s as n2: %d", p, resp.StatusCode)
		}
	}
	if _, body := h.get("n2", "/agents"); strings.Contains(string(body), `href="/agent/n1"`) {
		t.Error("n2 sees n1 in the agents list")
	}
	if resp, body := h.get("n2", "/view/n2/x.log"); resp.StatusCode != 200 || !strings.Contains(string(body), "x.log") {
		t.Errorf("n2 on its own file: %d", resp.StatusCode)
	}
	for _, p := range pages {
		if strings.Contains(p, "/tail/") {
			continue
		}
		if resp, _ := h.get("admin", p); resp.StatusCode != 200 {
			t.Errorf("GET %s as admin: %d", p, resp.StatusCode)
		}
	}
}

// TestUIAgentPageShowsPushIssues: an agent whose last push could not
// archive the last lines of a rotated log (or had failed files) says so on
// its page; a clean push shows no notice.
func TestUIAgentPageShowsPushIssues(t *testing.T) {
	h := newHist(t, false)
	writeFile(t, filepath.Join(h.root, "n1", "app", "a.log"), []byte("a\n"))
	writeFile(t, filepath.Join(h.root, "n2", "app", "a.log"), []byte("a\n"))
	writeFile(t, filepath.Join(h.root, "n1", ".syncer", "agent.json"),
		[]byte(`{"id":"n1","host":"node-one","last_push":{"files_unrecoverable":2,"bytes_unrecoverable":4096,"files_failed":1}}`))
	writeFile(t, filepath.Join(h.root, "n2", ".syncer", "agent.json"),
		[]byte(`{"id":"n2","host":"node-two","last_push":{"files_unrecoverable":0,"files_failed":0}}`))
	h.reconcile()
	_, body := h.get("", "/agent/n1")
	for _, w := range []string{`class="notice"`, "<b>2</b> rotated log(s) left the node before their last lines were archived", "4.0 KiB known lost", "<b>1</b> file(s) failed"} {
		if !strings.Contains(string(body), w) {
			t.Errorf("agent page of n1: no %q", w)
		}
	}
	if _, body := h.get("", "/agent/n2"); strings.Contains(string(body), `class="notice"`) {
		t.Errorf("agent page of n2 shows a notice after a clean push")
	}
}

// TestFindPrevInGzCutByBudget: a backward search in a .gz file that its
// time budget cuts says it is not done (more), never "no earlier match".
func TestFindPrevInGzCutByBudget(t *testing.T) {
	data := []byte(strings.Repeat("haystack line\n", 50000) + "NEEDLE\n" + strings.Repeat("haystack line\n", 50000))
	p := filepath.Join(t.TempDir(), "f.log.gz")
	writeFile(t, p, gzipped(t, data))
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	ct := &content{f: f, fi: fi, gz: true, key: "n1/f.log.gz"}
	re := regexp.MustCompile("NEEDLE")
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	res, _ := findPrevSequential(ctx, ct, re, int64(len(data)))
	if res.Found || !res.More {
		t.Errorf("search cut by its budget: %+v, want not found and more", res)
	}
	res, err = findPrevSequential(context.Background(), ct, re, int64(len(data)))
	if err != nil || !res.Found || res.Offset != int64(50000*len("haystack line\n")) {
		t.Errorf("search with time: %+v, %v", res, err)
	}
}
