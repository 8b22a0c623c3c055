package httpview

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
)

// serverWith starts another viewer over h's index and archive, with the
// configuration of h.startHTTP changed by mod.
func (h *hist) serverWith(mod func(*Config)) (*Server, *httptest.Server) {
	h.t.Helper()
	cfg := Config{Index: h.ix, Root: h.root, Connections: func() []activity.ConnInfo { return nil }, Users: h.users,
		RequireAuth: h.auth, Metrics: NewMetrics(), Overview: Overview{FTPAddr: "127.0.0.1:2121", ArchiveRoot: h.root}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	h.t.Cleanup(srv.Close)
	return s, srv
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// readFor sends GET url as user ("" without credentials) and reads the
// body for at most window. It returns the body bytes read and the time
// from before the request was sent to after the last read.
func readFor(t *testing.T, url, user string, window time.Duration) (int64, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, passwords[user])
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, time.Since(start) // not even the headers: nothing sent
		}
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	return n, time.Since(start)
}

// TestWebDownloadsHonourTheRate: /raw, directory downloads and the file
// view's windows send at most what the download bucket allows: the
// server's --max-download-rate for a viewer without an account, the
// account's own rate for an account, from the bucket the FTP server
// shares. No timing is asserted: the bytes a client received within a
// window can never exceed one burst plus the rate times the window,
// however slow the machine; before the limit they were the whole file.
func TestWebDownloadsHonourTheRate(t *testing.T) {
	const size = 2 << 20
	const window = 300 * time.Millisecond
	h := newHist(t, false)
	data := randomBytes(t, size) // random: a zip or tar.gz is no smaller
	writeFile(t, filepath.Join(h.root, "n1", "dir", "big.log"), data)
	writeFile(t, filepath.Join(h.root, "n1", "text.log"), logLines(1, 40000)) // 2.5 MiB of text
	h.reconcile()

	const serverRate = 512 << 10
	_, srv := h.serverWith(func(c *Config) { c.MaxDownloadRate = serverRate })
	bound := func(elapsed time.Duration, r accounts.Rate) int64 {
		return int64(accounts.BurstFor(r)) + int64(float64(r)*elapsed.Seconds()) + 1024
	}
	for _, p := range []string{"/raw/n1/dir/big.log", "/raw/n1/dir/big.log?download=1", "/download/n1/dir?format=zip",
		"/download/n1/dir?format=tar.gz", "/api/v1/lines/n1/text.log?bytes=4194304"} {
		n, elapsed := readFor(t, srv.URL+p, "", window)
		if max := bound(elapsed, serverRate); n > max {
			t.Errorf("GET %s without an account: %d bytes in %v, at most %d at %d B/s", p, n, elapsed, max, serverRate)
		}
	}

	// An account's own rate, in the bucket the FTP server shares: once
	// FTP took the next 10 s of n3's tokens, the web sends n3 nothing.
	ha := newHist(t, true)
	const ownRate = 64 << 10
	if err := ha.users.Add(accounts.User{Name: "n3", MaxDownloadRate: ownRate}, "pw-n3-secret"); err != nil {
		t.Fatal(err)
	}
	passwords["n3"] = "pw-n3-secret"
	t.Cleanup(func() { delete(passwords, "n3") })
	writeFile(t, filepath.Join(ha.root, "n3", "big.log"), data)
	writeFile(t, filepath.Join(ha.root, "n1", "big.log"), data)
	shared := accounts.NewLimiters()
	_, srvA := ha.serverWith(func(c *Config) { c.Limiters = shared })
	lim := shared.Get("n3", false, ownRate)
	for range 10 * ownRate / lim.Burst() {
		lim.ReserveN(time.Now(), lim.Burst()) // what an FTP download would take
	}
	if n, elapsed := readFor(t, srvA.URL+"/raw/n3/big.log", "n3", window); n > 0 {
		t.Errorf("n3's bucket is spent, yet the web sent n3 %d bytes in %v", n, elapsed)
	}
	// Other accounts have their own budget (here unlimited).
	if n, _ := readFor(t, srvA.URL+"/raw/n1/big.log", "admin", 30*time.Second); n != size {
		t.Errorf("admin without a rate got %d of %d bytes", n, size)
	}
}

// TestHeavyOperationsAreBounded: with a bound of 2, two directory
// downloads that hold their slots (slowed by their account's tiny rate)
// and a full line behind them make the next heavy requests (content
// search, search in a file, .gz view, download) answer 503 with a
// Retry-After at once, while pages, listings and /raw still answer 200;
// when the slow downloads end, the goroutines are back to where they
// were.
func TestHeavyOperationsAreBounded(t *testing.T) {
	h := newHist(t, true)
	if err := h.users.Add(accounts.User{Name: "slow", MaxDownloadRate: 1024}, "pw-slow-secret"); err != nil {
		t.Fatal(err)
	}
	passwords["slow"] = "pw-slow-secret"
	t.Cleanup(func() { delete(passwords, "slow") })
	writeFile(t, filepath.Join(h.root, "slow", "dir", "big.log"), randomBytes(t, 1<<20))
	writeFile(t, filepath.Join(h.root, "n1", "a.log"), logLines(1, 100))
	writeFile(t, filepath.Join(h.root, "n1", "old.log.gz"), gzipped(t, logLines(2, 100)))
	h.reconcile()
	const bound = 2
	s, srv := h.serverWith(func(c *Config) { c.HeavyOps = bound })
	s.heavyOps.wait = time.Minute // the line stays full until the test ends it
	before := runtime.NumGoroutine()

	// bound downloads take the slots, as many as the line holds wait.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	total := bound * (1 + heavyQueuePerSlot)
	started := make(chan int, total)
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/download/slow/dir?format=zip&i=%d", srv.URL, i), nil)
			req.SetBasicAuth("slow", passwords["slow"])
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				started <- resp.StatusCode
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	waitUntil(t, "the slots taken and the line full", func() bool {
		return len(s.heavyOps.slots) == bound && s.heavyOps.queued.Load() == s.heavyOps.maxQueue
	})
	during := runtime.NumGoroutine()

	heavy := []string{"/api/v1/grep?q=request", "/api/v1/find/n1/a.log?q=served", "/api/v1/lines/n1/old.log.gz",
		"/download/n1?format=tar.gz"}
	for _, p := range heavy {
		resp, b := getURL(t, "admin", srv.URL+p)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s over the bound: %d Retry-After %q %s", p, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
	light := []string{"/", "/agents", "/agent/n1", "/view/n1/a.log", "/view/n1/old.log.gz", "/api/v1/agents", "/api/v1/files/n1",
		"/api/v1/lines/n1/a.log", "/raw/n1/a.log", "/api/v1/search?name=*.log", "/connections", "/healthz"}
	for _, p := range light {
		if resp, b := getURL(t, "admin", srv.URL+p); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s while heavy operations are saturated: %d %.200s", p, resp.StatusCode, b)
		}
	}
	// 20 more heavy requests at once are refused, none waits or runs.
	var refused sync.WaitGroup
	for range 20 {
		refused.Add(1)
		go func() {
			defer refused.Done()
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/grep?q=x", nil)
			req.SetBasicAuth("admin", passwords["admin"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("heavy request over the bound: %d", resp.StatusCode)
			}
		}()
	}
	refused.Wait()
	if q := s.heavyOps.queued.Load(); q > s.heavyOps.maxQueue {
		t.Errorf("%d heavy requests waiting, the line holds %d", q, s.heavyOps.maxQueue)
	}
	cancel()
	wg.Wait()
	http.DefaultClient.CloseIdleConnections()
	waitUntil(t, "the goroutines back", func() bool { return runtime.NumGoroutine() <= before+5 })
	t.Logf("goroutines: %d before, %d with %d heavy requests held, %d after", before, during, total, runtime.NumGoroutine())
}

// getURL does GET url as user ("" without credentials).
func getURL(t *testing.T, user, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, passwords[user])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
