package httpview

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// agentTree writes an agent's log directory and returns path -> content.
func agentTree(t *testing.T, dir string, seed int) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"app/server.log":        logLines(seed, 2000),
		"app/2026-11/day01.log": logLines(seed+1, 10),
		"app/2026-11/day02.log": logLines(seed+2, 0),
		"top.log":               logLines(seed+3, 3),
	}
	for i := 0; i < 25; i++ {
		files[fmt.Sprintf("many/f%03d.log", i)] = logLines(seed+10+i, i)
	}
	for rel, data := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(rel)), data)
	}
	writeFile(t, filepath.Join(dir, "notes.txt"), []byte("not a log\n")) // not included
	return files
}

func TestPushedArchiveThroughAPI(t *testing.T) {
	h := newHist(t, false)
	dir1 := t.TempDir()
	files := agentTree(t, dir1, 1)
	if sum := h.push("n1", dir1); sum.FilesNew != int64(len(files)) {
		t.Fatalf("push: %+v", sum)
	}

	// The agent, with what its description says and exact counts.
	var agents struct{ Agents []AgentJSON }
	h.getJSON("", "/api/v1/agents", &agents)
	byID := map[string]AgentJSON{}
	for _, a := range agents.Agents {
		byID[a.ID] = a
	}
	var total int64
	for _, d := range files {
		total += int64(len(d))
	}
	host, _ := os.Hostname()
	n1 := byID["n1"]
	if n1.Status != "active" || n1.Host != host || n1.Files != int64(len(files)) || n1.Bytes != total ||
		n1.Verified != int64(len(files)) || n1.Account != "n1" || n1.Interval != "1m0s" || len(n1.LastPush) == 0 {
		t.Errorf("agent n1 = %+v (want %d files, %d bytes, all verified)", n1, len(files), total)
	}
	if g := byID["ghost"]; g.Status != "never seen" {
		t.Errorf("ghost = %+v, want never seen", g)
	}

	// Every file: exact size, the SHA-256 of the source, verified.
	for rel, data := range files {
		var f FileJSON
		h.getJSON("", "/api/v1/files/n1/"+rel, &f)
		if f.Type != "file" || f.Size != int64(len(data)) || f.SHA256 != sumHex(data) || f.Status != "verified" {
			t.Errorf("%s: %+v, want size %d sha %s verified", rel, f.EntryJSON, len(data), sumHex(data))
		}
	}
	// Listings: directories first-class, .syncer and excluded files absent.
	var top ListingJSON
	h.getJSON("", "/api/v1/files/n1", &top)
	if got := listingNames(top); got != "app/ many/ top.log" {
		t.Errorf("n1 top listing = %q", got)
	}
	var root ListingJSON
	h.getJSON("", "/api/v1/files/", &root)
	if got := listingNames(root); got != "n1/" {
		t.Errorf("archive top listing = %q", got)
	}

	// Paging through 25 entries, 10 at a time.
	var paged []string
	next := ""
	for i := 0; ; i++ {
		if i > 5 {
			t.Fatal("paging does not end")
		}
		var l ListingJSON
		h.getJSON("", "/api/v1/files/n1/many?limit=10&after="+next, &l)
		if len(l.Entries) > 10 {
			t.Fatalf("page of %d", len(l.Entries))
		}
		for _, e := range l.Entries {
			paged = append(paged, e.Name)
		}
		if l.Next == "" {
			break
		}
		next = l.Next
	}
	if len(paged) != 25 || !sort.StringsAreSorted(paged) || paged[0] != "f000.log" || paged[24] != "f024.log" {
		t.Errorf("paged listing = %v", paged)
	}

	// Name search from the index, content search streamed.
	var sr struct {
		Results   []EntryJSON
		Truncated bool
	}
	h.getJSON("", "/api/v1/search?name=day*.log&agent=n1", &sr)
	if len(sr.Results) != 2 || sr.Truncated {
		t.Errorf("search day*.log = %+v", sr)
	}
	h.getJSON("", "/api/v1/search?name=app/**/*.log&limit=2", &sr)
	if len(sr.Results) != 2 || !sr.Truncated {
		t.Errorf("search with limit 2 = %+v", sr)
	}
	resp, body := h.get("", "/api/v1/grep?q=request+1999+served&agent=n1&path=app/*.log")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("grep: %d %s", resp.StatusCode, body)
	}
	lines := ndjson(t, body)
	if len(lines) != 2 || lines[0]["path"] != "app/server.log" || lines[0]["line"] != float64(2000) || lines[1]["done"] != true {
		t.Errorf("grep result = %v", lines)
	}
	_, body = h.get("", "/api/v1/grep?q=INFO&max=3")
	if lines := ndjson(t, body); len(lines) != 4 || lines[3]["reason"] != "limit" {
		t.Errorf("grep max=3 = %d lines, last %v", len(lines), lines[len(lines)-1])
	}
	if resp, body := h.get("", "/api/v1/grep?q=(unclosed"); resp.StatusCode != 400 || !strings.Contains(string(body), `"error"`) {
		t.Errorf("bad regexp: %d %s", resp.StatusCode, body)
	}

	// Raw bytes: whole, a range, conditional, as a download.
	data := files["app/server.log"]
	resp, body = h.get("", "/raw/n1/app/server.log")
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("raw: %d, %d bytes (want %d)", resp.StatusCode, len(body), len(data))
	}
	etag := resp.Header.Get("ETag")
	resp, body = h.get("", "/raw/n1/app/server.log", "Range", "bytes=100-199")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100:200]) {
		t.Errorf("range: %d %q", resp.StatusCode, body)
	}
	if resp, _ = h.get("", "/raw/n1/app/server.log", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	resp, _ = h.get("", "/raw/n1/app/server.log?download=1")
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename=server.log` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if resp, _ := h.get("", "/raw/n1/.syncer/agent.json"); resp.StatusCode != 404 {
		t.Errorf(".syncer readable: %d", resp.StatusCode)
	}

	// Metrics count what came in.
	_, body = h.get("", "/metrics")
	for _, re := range []string{
		`syncer_received_files_total\{agent="n1"\} [1-9]`,
		`syncer_received_bytes_total\{agent="n1"\} [1-9]`,
		`syncer_verification_files\{status="verified"\} ` + strconv.Itoa(len(files)) + `\b`,
		`syncer_index_files ` + strconv.Itoa(len(files)) + `\b`,
		`syncer_ftp_connections \d`,
	} {
		if !regexp.MustCompile(re).Match(body) {
			t.Errorf("metrics lack %s", re)
		}
	}

	// Corrupt a file behind the server's back: mismatch, logged and counted.
	victim := filepath.Join(h.root, "n1", "app", "server.log")
	bad := bytes.Clone(data)
	bad[500] ^= 0xff
	if err := os.WriteFile(victim, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	h.reconcile()
	var f FileJSON
	h.getJSON("", "/api/v1/files/n1/app/server.log", &f)
	if f.Status != "mismatch" || f.SHA256 != sumHex(bad) || f.ExpectedSHA256 != sumHex(data) {
		t.Errorf("corrupted file: %+v expected %s", f.EntryJSON, f.ExpectedSHA256)
	}
	_, body = h.get("", "/metrics")
	if !regexp.MustCompile(`syncer_verification_files\{status="mismatch"\} 1\b`).Match(body) {
		t.Errorf("metrics do not count the mismatch")
	}

	// Restart after deleting the index: identical answers.
	before := h.snapshotAPI()
	h.restartIndex(true)
	if after := h.snapshotAPI(); after != before {
		t.Errorf("answers differ after rebuilding the index:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func listingNames(l ListingJSON) string {
	var out []string
	for _, e := range l.Entries {
		n := e.Name
		if e.Type == "dir" {
			n += "/"
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

func ndjson(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// snapshotAPI renders what the API says about every agent and file; the
// times of uploads are left out (a rebuilt index knows only the disk).
func (h *hist) snapshotAPI() string {
	h.t.Helper()
	var b strings.Builder
	var agents struct{ Agents []AgentJSON }
	h.getJSON("", "/api/v1/agents", &agents)
	for _, a := range agents.Agents {
		fmt.Fprintf(&b, "agent %s host=%s ips=%v version=%s interval=%s files=%d bytes=%d v=%d p=%d m=%d status=%s described=%s push=%s\n",
			a.ID, a.Host, a.IPs, a.Version, a.Interval, a.Files, a.Bytes, a.Verified, a.Pending, a.Mismatch, a.Status, a.DescribedAt, a.LastPush)
	}
	var walk func(p string)
	walk = func(p string) {
		var l ListingJSON
		h.getJSON("", "/api/v1/files/"+p, &l)
		for _, e := range l.Entries {
			fmt.Fprintf(&b, "%s %s size=%d mtime=%s sha=%s status=%s\n", e.Type, e.Agent+"/"+e.Path, e.Size, e.Mtime, e.SHA256, e.Status)
			if e.Type == "dir" {
				walk(strings.TrimSuffix(e.Agent+"/"+e.Path, "/"))
			}
		}
	}
	walk("")
	return b.String()
}

func TestTraversalIsRefused(t *testing.T) {
	h := newHist(t, false)
	dir := t.TempDir()
	agentTree(t, dir, 1)
	h.push("n1", dir)
	outside := t.TempDir()
	secret := "TOP-SECRET-OUTSIDE-THE-ARCHIVE"
	writeFile(t, filepath.Join(outside, "secret.log"), []byte(secret))
	if err := os.Symlink(outside, filepath.Join(h.root, "n1", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.log"), filepath.Join(h.root, "n1", "app", "secret.log")); err != nil {
		t.Fatal(err)
	}
	h.reconcile()
	rel, err := filepath.Rel(h.root, outside)
	if err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", strings.Count(filepath.Join(h.root, "n1"), "/")+1)
	tests := []string{
		"/n1/../../" + rel + "/secret.log",
		"/n1/" + up + strings.TrimPrefix(outside, "/") + "/secret.log",
		"/n1/%2e%2e/%2e%2e/" + rel + "/secret.log",
		"/n1/%2E%2E/%2E%2E/" + rel + "/secret.log",
		"/n1%2f..%2f..%2f" + strings.ReplaceAll(rel, "/", "%2f") + "%2fsecret.log",
		"/n1/app%2f..%2f..%2f..%2fetc%2fpasswd",
		"/%2fetc%2fpasswd",
		"//etc/passwd",
		"/n1//etc/passwd",
		"/n1/./app/server.log",
		"/n1/app/%00server.log",
		"/n1/%252e%252e/%252e%252e/etc/passwd",
		"/n1/link/secret.log",
		"/n1/app/secret.log",
		"/..",
		"/n1/..",
		"/.syncer/agent.json",
		"/n1/.syncer/agent.json",
		"/n1/.syncer",
	}
	for _, prefix := range []string{"/raw", "/api/v1/files"} {
		for _, p := range tests {
			code, body := h.rawGet(prefix + p)
			if code != 400 && code != 404 {
				t.Errorf("GET %s%s: status %d, want 400 or 404", prefix, p, code)
			}
			if strings.Contains(body, secret) || strings.Contains(body, "root:") || strings.Contains(body, `"id"`) {
				t.Errorf("GET %s%s leaked bytes: %.200q", prefix, p, body)
			}
			if !strings.Contains(body, `"error"`) {
				t.Errorf("GET %s%s: not a JSON error: %.200q", prefix, p, body)
			}
		}
	}
	// Query parameters that name agents or paths.
	for _, target := range []string{
		"/api/v1/search?name=*.log&agent=..",
		"/api/v1/search?name=*.log&agent=n1%2f..",
		"/api/v1/grep?q=SECRET&agent=..",
		"/api/v1/grep?q=SECRET&agent=%2e%2e",
	} {
		code, body := h.rawGet(target)
		if code != 400 || strings.Contains(body, secret) {
			t.Errorf("GET %s: %d %.200q", target, code, body)
		}
	}
	// A grep over everything does not follow the links either.
	code, body := h.rawGet("/api/v1/grep?q=TOP-SECRET")
	if code != 200 || strings.Contains(body, secret) {
		t.Errorf("grep followed a link out of the root: %d %.300q", code, body)
	}
}

func TestBasicAuthRules(t *testing.T) {
	h := newHist(t, true)
	d1, d2 := t.TempDir(), t.TempDir()
	agentTree(t, d1, 1)
	agentTree(t, d2, 100)
	h.push("n1", d1)
	h.push("n2", d2)

	// No or wrong credentials: 401 with a challenge, no data.
	for _, p := range []string{"/api/v1/agents", "/api/v1/files/n1/top.log", "/raw/n1/top.log", "/metrics", "/api/v1/connections"} {
		resp, body := h.get("", p)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") || strings.Contains(string(body), "INFO") {
			t.Errorf("GET %s without auth: %d %q", p, resp.StatusCode, body)
		}
		req, _ := http.NewRequest("GET", h.http.URL+p, nil)
		req.SetBasicAuth("n1", "wrong-password")
		r2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != 401 {
			t.Errorf("GET %s with a wrong password: %d", p, r2.StatusCode)
		}
	}
	if resp, _ := h.get("", "/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz needs auth: %d", resp.StatusCode)
	}

	tests := []struct {
		user, path string
		want       int
	}{
		{"n1", "/api/v1/files/n1/top.log", 200},
		{"n1", "/raw/n1/top.log", 200},
		{"n1", "/api/v1/files/n1", 200},
		{"n1", "/api/v1/files/n2/top.log", 404},
		{"n1", "/api/v1/files/n2", 404},
		{"n1", "/raw/n2/top.log", 404},
		{"n1", "/metrics", 403},
		{"n2", "/raw/n2/top.log", 200},
		{"n2", "/raw/n1/top.log", 404},
		{"admin", "/raw/n1/top.log", 200},
		{"admin", "/raw/n2/top.log", 200},
		{"admin", "/metrics", 200},
	}
	for _, tc := range tests {
		if resp, body := h.get(tc.user, tc.path); resp.StatusCode != tc.want {
			t.Errorf("GET %s as %s: %d, want %d (%.100s)", tc.path, tc.user, resp.StatusCode, tc.want, body)
		}
	}
	agentIDs := func(user string) string {
		var a struct{ Agents []AgentJSON }
		h.getJSON(user, "/api/v1/agents", &a)
		var ids []string
		for _, x := range a.Agents {
			ids = append(ids, x.ID)
		}
		return strings.Join(ids, ",")
	}
	if got := agentIDs("n1"); got != "n1" {
		t.Errorf("agents seen by n1: %s", got)
	}
	if got := agentIDs("admin"); got != "ghost,n1,n2" {
		t.Errorf("agents seen by admin: %s", got)
	}
	var root ListingJSON
	h.getJSON("n2", "/api/v1/files/", &root)
	if got := listingNames(root); got != "n2/" {
		t.Errorf("top listing for n2: %q", got)
	}
	var sr struct{ Results []EntryJSON }
	h.getJSON("n1", "/api/v1/search?name=top.log", &sr)
	if len(sr.Results) != 1 || sr.Results[0].Agent != "n1" {
		t.Errorf("search as n1: %+v", sr.Results)
	}
	_, body := h.get("n1", "/api/v1/grep?q=node1%5B0-9%5D%5B0-9%5D+")
	if lines := ndjson(t, body); len(lines) != 1 || lines[0]["matches"] != float64(0) {
		t.Errorf("grep as n1 found n2's lines: %.300s", body)
	}
	var ov map[string]any
	h.getJSON("n1", "/api/v1/overview", &ov)
	if ov["agents"] != float64(1) {
		t.Errorf("overview for n1: %v", ov)
	}
}

func TestSecurityHeadersAndErrors(t *testing.T) {
	h := newHist(t, false)
	for _, p := range []string{"/healthz", "/api/v1/agents", "/api/v1/files/nobody", "/nope", "/raw/n1/%2e%2e"} {
		resp, body := h.get("", p)
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET %s: %s = %q", p, k, got)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
		if resp.StatusCode >= 400 {
			var e struct{ Error string }
			if json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Errorf("GET %s: %d body %q is not a JSON error", p, resp.StatusCode, body)
			}
		}
	}
	if resp, _ := h.get("", "/api/v1/files/nobody"); resp.StatusCode != 404 {
		t.Errorf("unknown agent: %d", resp.StatusCode)
	}
	if resp, _ := h.get("", "/api/v1/files/n1?limit=-1"); resp.StatusCode != 400 {
		t.Errorf("bad limit: %d", resp.StatusCode)
	}
	if resp, _ := h.get("", "/api/v1/search"); resp.StatusCode != 400 {
		t.Errorf("search without name: %d", resp.StatusCode)
	}
}

func TestRequiresAuth(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": false, "[::1]:8080": false, "localhost:8080": false, "127.0.0.2:80": false,
		"0.0.0.0:8080": true, ":8080": true, "10.0.0.5:8080": true, "[::]:8080": true, "example.com:80": true, "garbage": true,
	} {
		if got := RequiresAuth(addr); got != want {
			t.Errorf("RequiresAuth(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestListingJSONMatchesEncodingJSON(t *testing.T) {
	l := ListingJSON{Agent: "n1", Path: "a/\"b\"", Type: "dir", Next: "z<&>", Entries: []EntryJSON{
		{Agent: "n1", Path: "x\xffy\u2028\t\x01", Name: "ü\\", NameB64: "eA==", PathB64: "eQ==", Type: "file", Size: 42,
			Mtime: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), SHA256: "ab", Status: "verified", NameFlags: []string{"hidden_chars"}},
		{Agent: "n1", Path: "d", Name: "d", Type: "dir"},
	}}
	want, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendListingJSON(nil, &l); string(got) != string(want) {
		t.Errorf("hand-written JSON\n got %s\nwant %s", got, want)
	}
}

// TestPercentInNames: a '%' in a file name is "%25" in its URL, decoded
// once: 100%.log opens, and the literal name a%2e%2e.log is that file,
// never "..".
func TestPercentInNames(t *testing.T) {
	h := newHist(t, false)
	files := map[string]string{"100%.log": "full disk 100%\n", "a%2e%2e.log": "dots are literal\n", "%2f.log": "slash is literal\n"}
	for name, data := range files {
		writeFile(t, filepath.Join(h.root, "n1", "app", name), []byte(data))
	}
	h.reconcile()
	for name, data := range files {
		esc := strings.ReplaceAll(name, "%", "%25")
		if code, body := h.rawGet("/raw/n1/app/" + esc); code != 200 || body != data {
			t.Errorf("GET /raw/n1/app/%s: %d %q, want %q", esc, code, body, data)
		}
		code, body := h.rawGet("/api/v1/files/n1/app/" + esc)
		var f FileJSON
		if err := json.Unmarshal([]byte(body), &f); code != 200 || err != nil || f.Path != "app/"+name || f.Size != int64(len(data)) {
			t.Errorf("GET /api/v1/files/n1/app/%s: %d %v %+v", esc, code, err, f)
		}
		for _, page := range []string{"/view/n1/app/", "/api/v1/lines/n1/app/", "/download/n1/"} {
			target := page + esc
			if page == "/download/n1/" {
				target = page + "app"
			}
			if code, body := h.rawGet(target); code != 200 {
				t.Errorf("GET %s: %d %.200q", target, code, body)
			}
		}
		if code, body := h.rawGet("/api/v1/lines/n1/app/" + esc); !strings.Contains(body, strings.TrimSuffix(data, "\n")) {
			t.Errorf("lines of %s: %d %.200q", name, code, body)
		}
	}
	// Still refused: an encoded '/', '\' or NUL, and ".." however spelt.
	for _, p := range []string{"/n1/app/100%2f.log", "/n1/app%5c100%25.log", "/n1/app/100%25%00.log", "/n1/app/%2e%2e/app/100%25.log", "/n1/%252e%252e/n1/app/100%25.log"} {
		if code, body := h.rawGet("/raw" + p); code != 400 && code != 404 || strings.Contains(body, "full disk") {
			t.Errorf("GET /raw%s: %d %.200q", p, code, body)
		}
	}
	// Links of listings and of the agent page open the files.
	var l ListingJSON
	h.getJSON("", "/api/v1/files/n1/app", &l)
	if len(l.Entries) != len(files) {
		t.Fatalf("listing: %+v", l)
	}
	_, page := h.get("", "/agent/n1/app")
	if !strings.Contains(string(page), `href="/view/n1/app/100%25.log"`) {
		t.Errorf("agent page has no link to 100%%25.log: %.500s", page)
	}
}
