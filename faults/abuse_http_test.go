package faults

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHTTPAbuse runs against `syncer serve`: traversal in every path and
// query parameter of the API and the pages, huge and absurd Range headers,
// regular-expression bombs in content search, a client that sends its
// headers one byte a second, and one that stays connected idle. Each gets
// a refusal or a bounded answer; nothing outside the archive is served.
func TestHTTPAbuse(t *testing.T) {
	base := t.TempDir()
	// A file outside the archive root, next to it, that must never be served.
	marker := "OUTSIDE-THE-ARCHIVE-" + fmt.Sprint(time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(base, "secret.log"), []byte(marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHistorian(t, base, "node1")
	h.start()
	logs := filepath.Join(base, "logs")
	writeLogFile(t, filepath.Join(logs, "app.log"), 200_000, nil2())
	appendFile(t, filepath.Join(logs, "app.log"), []byte(strings.Repeat("a", 5000)+"\n"))
	// A long name for the glob bombs below to chew on.
	writeLogFile(t, filepath.Join(logs, strings.Repeat("a", 200)+".log"), 1000, nil2())
	if r := push(t, h.passwords["node1"], agentArgs("node1", h.ftp, logs, filepath.Join(base, "agent"))...); r.code != 0 {
		t.Fatalf("push: %d %s", r.code, r.stderr)
	}
	checkIndex(t, h, "node1", logs)
	get := func(path string, hdr ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+h.http+path, nil)
		if err != nil {
			return 400, err.Error() // the client refuses to build it: not a path to test
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		return resp.StatusCode, string(b)
	}
	// Traversal, raw and encoded, in every place a path or name goes.
	evil := []string{"..", "../secret.log", "..%2fsecret.log", "%2e%2e/secret.log", "%2e%2e%2fsecret.log",
		"..%5csecret.log", "node1/../../secret.log", "node1/%2e%2e/%2e%2e/secret.log", "node1/..%00/x", "%252e%252e/secret.log"}
	prefixes := []string{"/raw/", "/api/v1/files/", "/view/", "/agent/", "/download/", "/api/v1/lines/", "/api/v1/find/"}
	n := 0
	for _, p := range prefixes {
		for _, e := range evil {
			code, body := get(p + e)
			n++
			if strings.Contains(body, marker) {
				t.Errorf("GET %s%s served the file outside the archive (%d)", p, e, code)
			}
			if code == 200 && (p == "/raw/" || p == "/download/") {
				t.Errorf("GET %s%s: 200", p, e)
			}
		}
	}
	for _, q := range []string{
		"/api/v1/search?name=../*&agent=..", "/api/v1/search?name=**&agent=../", "/api/v1/search?name=%2e%2e/**",
		"/api/v1/grep?q=OUTSIDE&agent=..", "/api/v1/grep?q=OUTSIDE&path=../*", "/api/v1/grep?q=OUTSIDE&path=**/../*",
		"/api/v1/grep?q=OUTSIDE&agent=node1/..", "/search?name=../*&q=OUTSIDE", "/api/v1/files?agent=..",
	} {
		_, body := get(q)
		n++
		if strings.Contains(body, marker) {
			t.Errorf("GET %s served the file outside the archive", q)
		}
	}
	// Ranges: many, overlapping, huge, malformed. Never more bytes than a
	// few times the file, never a server error.
	size := int64(205_001)
	for _, rg := range []string{
		"bytes=" + strings.TrimSuffix(strings.Repeat("0-1,", 5000), ","),
		"bytes=0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-",
		"bytes=99999999999999999999-", "bytes=-99999999999999999999", "bytes=9223372036854775807-",
		"bytes=5-1", "bytes=abc", "bytes=" + strings.Repeat("9", 10000) + "-",
	} {
		code, body := get("/raw/node1/app.log", "Range", rg)
		n++
		if code >= 500 {
			t.Errorf("Range %.40s: %d", rg, code)
		}
		if int64(len(body)) > 3*size {
			t.Errorf("Range %.40s: %d bytes for a file of %d (amplification)", rg, len(body), size)
		}
	}
	// Regular-expression bombs: Go's regexp is linear, and searches are
	// bounded by a timeout; a pattern too large to compile is refused.
	for _, q := range []string{"(a*)*b", "(a|a)*b", "(.*){1,1000}x", "x{1000}{1000}", strings.Repeat("(", 3000) + "a" + strings.Repeat(")", 3000), "((a+)+)+$"} {
		start := time.Now()
		code, _ := get("/api/v1/grep?q=" + urlQuery(q) + "&timeout=5s")
		n++
		if code >= 500 {
			t.Errorf("grep %.40q: %d", q, code)
		}
		if d := time.Since(start); d > 45*time.Second {
			t.Errorf("grep %.40q answered after %s: not bounded", q, d)
		}
	}
	// Glob bombs in the name and path filters: the glob library's engine
	// backtracks: each of these ran for more than 15 s against the
	// 204-byte name without an answer; searches match in linear time.
	for _, g := range []string{"*a*a*a*a*c*.log", "**/*a*a*a*a*c*.log", strings.Repeat("{a*,a}", 10) + "c*.log"} {
		for _, q := range []string{"/api/v1/search?name=" + urlQuery(g), "/api/v1/grep?q=x&timeout=5s&path=" + urlQuery(g)} {
			start := time.Now()
			code, _ := get(q)
			n++
			if code >= 500 {
				t.Errorf("%.60s: %d", q, code)
			}
			if d := time.Since(start); d > 45*time.Second {
				t.Errorf("%.60s answered after %s: not bounded", q, d)
			}
		}
	}
	// A client that sends its headers one byte a second is cut by the
	// header timeout, well before it finishes.
	c, err := net.Dial("tcp", h.http)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	cut := false
	for i := 0; i < 60 && !cut; i++ {
		time.Sleep(time.Second)
		if _, err := c.Write([]byte("a")); err != nil {
			cut = true
		}
	}
	if !cut {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			cut = true
		}
	}
	if !cut {
		t.Error("a client sending one header byte a second was not cut within 60 s")
	}
	report(t, fmt.Sprintf("HTTP: traversal (raw, %%2e%%2e, %%2f, %%5c, double-encoded, NUL) in every path and query parameter (%d requests); 5,000 ranges, overlapping and 20-digit ranges; regex bombs ((a*)*b, x{1000}{1000}, 3,000 nested groups); glob bombs in name and path filters (*a*a*a*a*c*.log, ten {a*,a} groups, on a 204-byte name); one header byte a second", n),
		"nothing outside the archive served; ranges answered without amplification or 5xx; every search answered within its 5 s timeout or refused; the slow client cut by the header timeout (`TestHTTPAbuse`)", 0)
	h.stop()
}

// TestHTTPIdleClient: a client that made a request and then keeps the
// connection open without a word is disconnected; otherwise idle clients
// hold the historian's descriptors for ever.
func TestHTTPIdleClient(t *testing.T) {
	if !full() {
		t.Skip("waits for the idle timeout (over a minute); make faults (FAULTS_FULL=1) runs it")
	}
	base := t.TempDir()
	h := newHistorian(t, base)
	h.start()
	c, err := net.Dial("tcp", h.http)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Minute))
	start := time.Now()
	_, err = r.ReadByte()
	if err != io.EOF {
		t.Fatalf("an idle keep-alive connection was not closed by the server within 3 minutes: %v", err)
	}
	report(t, "HTTP: a keep-alive client that stays connected and silent",
		fmt.Sprintf("disconnected by the server after %.0f s (`TestHTTPIdleClient`)", time.Since(start).Seconds()), 0)
	h.stop()
}
