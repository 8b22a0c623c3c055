package historian

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/internal/defender"
)

// startWeb runs a historian whose web viewer listens on every interface,
// as off loopback (so over HTTPS, with the self-signed certificate), with
// a defender that does not delay failures, to keep the tests short. It
// returns the viewer's address on loopback.
func startWeb(t *testing.T) (*running, string) {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.HTTPAddr = "0.0.0.0:0"
	cfg.TLSSelfSigned = true
	d, err := defender.New(defender.Config{FailDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Defender = d
	r := start(t, cfg)
	_, port, err := net.SplitHostPort(r.h.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	return r, net.JoinHostPort("127.0.0.1", port)
}

// webClient is an HTTPS client whose connections come from the loopback
// address local. It takes the self-signed certificate unchecked: these
// tests are about logins, not certificates.
func webClient(local string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: d.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

// webGet asks for the agent list as node1 with password, from c; forwarded,
// if set, is sent as X-Forwarded-For.
func webGet(t *testing.T, c *http.Client, addr, password, forwarded string) webReply {
	t.Helper()
	req, err := http.NewRequest("GET", "https://"+addr+"/api/v1/agents", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("node1", password)
	if forwarded != "" {
		req.Header.Set("X-Forwarded-For", forwarded)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return webReply{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), apiErr: e.Error}
}

// webReply is what webGet got: the status, the Retry-After header and the
// JSON error.
type webReply struct {
	status             int
	retryAfter, apiErr string
}

// wantBanned wants a refusal of a banned address: 429, a Retry-After of
// at most the ban's length, one JSON error.
func wantBanned(t *testing.T, r webReply) {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", r.status)
	}
	if n, err := strconv.Atoi(r.retryAfter); err != nil || n < 1 || n > int(defender.DefaultBanFor/time.Second) {
		t.Errorf("Retry-After %q, want seconds up to the ban's end", r.retryAfter)
	}
	if r.apiErr == "" {
		t.Error("no JSON error")
	}
}

// bansFile is the addresses in the bans file `syncer ban list` shows.
func bansFile(t *testing.T, r *running) map[string]bool {
	t.Helper()
	bans, err := defender.ReadFile(filepath.Join(r.h.cfg.State, defender.FileName))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, b := range bans {
		m[b.Addr] = true
	}
	return m
}

// TestWebRefusesAddressBannedOnFTP: an address banned for failed FTP
// logins is refused on the web, before its (right) password is checked;
// another address logs in.
func TestWebRefusesAddressBannedOnFTP(t *testing.T) {
	r, web := startWeb(t)
	for range defender.DefaultBanAfter {
		ftptest.LoginFrom(t, "127.0.0.8", r.h.FTPAddr().String(), "node1", "wrong-password")
	}
	if _, ok := r.h.Defender().Banned("127.0.0.8"); !ok {
		t.Fatal("127.0.0.8 not banned after failed FTP logins")
	}
	wantBanned(t, webGet(t, webClient("127.0.0.8"), web, testPassword, ""))
	// Refused before the password is looked at: without one too.
	wantBanned(t, webGet(t, webClient("127.0.0.8"), web, "", ""))
	if st := webGet(t, webClient("127.0.0.9"), web, testPassword, "").status; st != http.StatusOK {
		t.Fatalf("another address, right password: status %d", st)
	}
}

// TestWebBruteForceIsBanned: failed web logins from one address ban it
// (an X-Forwarded-For naming a new address each time changes nothing);
// then its right password is refused, on the web and on FTP, and the ban
// is in the bans file.
func TestWebBruteForceIsBanned(t *testing.T) {
	r, web := startWeb(t)
	c := webClient("127.0.0.10")
	for i := range defender.DefaultBanAfter {
		if st := webGet(t, c, web, fmt.Sprintf("guess-%d", i), fmt.Sprintf("10.9.8.%d", i)).status; st != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d, want 401", i, st)
		}
	}
	wantBanned(t, webGet(t, c, web, testPassword, "10.9.8.200"))
	b, ok := r.h.Defender().Banned("127.0.0.10")
	if !ok {
		t.Fatal("127.0.0.10 not banned in the defender")
	}
	if !bansFile(t, r)["127.0.0.10"] {
		t.Errorf("127.0.0.10 not in the bans file (syncer ban list); ban until %v", b)
	}
	if code := ftptest.LoginFrom(t, "127.0.0.10", r.h.FTPAddr().String(), "node1", testPassword); code == 230 {
		t.Error("the address banned on the web logged in on FTP")
	}
	if st := webGet(t, webClient("127.0.0.11"), web, testPassword, "").status; st != http.StatusOK {
		t.Fatalf("another address, right password: status %d", st)
	}
}

// TestWebFloodDoesNotStarveFTPLogin: bad web logins from 8 addresses, 4
// at once from each, while an agent logs in on FTP: the agent gets in
// (within the server's login deadline), each flooding address has no
// more guesses evaluated than the ban allows plus those already running,
// and every one of them is banned.
func TestWebFloodDoesNotStarveFTPLogin(t *testing.T) {
	r, web := startWeb(t)
	const addrs, workers, maxTries = 8, 4, 40
	var (
		mu         sync.Mutex
		evaluated  = map[string]int{} // 401s: guesses whose password was checked
		otherCodes = map[int]int{}
		started    = make(chan struct{})
		startOnce  sync.Once
		wg         sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range addrs {
		local := fmt.Sprintf("127.0.2.%d", 2+i)
		c := webClient(local)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for try := range maxTries {
					req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+web+"/api/v1/agents", nil)
					req.SetBasicAuth("node1", fmt.Sprintf("flood-%d", try))
					resp, err := c.Do(req)
					if err != nil {
						return // the test's deadline
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					if resp.StatusCode == http.StatusUnauthorized {
						evaluated[local]++
					} else {
						otherCodes[resp.StatusCode]++
					}
					mu.Unlock()
					startOnce.Do(func() { close(started) })
					if resp.StatusCode == http.StatusTooManyRequests {
						return // banned
					}
				}
			}()
		}
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("no reply to the flood")
	}
	// The server's login deadline bounds the agent's wait.
	code := ftptest.LoginFrom(t, "127.0.0.1", r.h.FTPAddr().String(), "node1", testPassword)
	wg.Wait()
	if code != 230 {
		t.Errorf("FTP login during the web flood: reply %d, want 230", code)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("guesses evaluated per address: %v; other replies: %v", evaluated, otherCodes)
	banned := bansFile(t, r)
	// A ban starts with the BanAfter-th failure; the checks of the same
	// address already running then still fail and count.
	limit := defender.DefaultBanAfter + workers
	for i := range addrs {
		local := fmt.Sprintf("127.0.2.%d", 2+i)
		if n := evaluated[local]; n > limit {
			t.Errorf("%s: %d guesses evaluated, want at most %d", local, n, limit)
		}
		if !banned[local] {
			t.Errorf("%s not banned", local)
		}
	}
}
