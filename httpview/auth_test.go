package httpview

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/internal/defender"
)

// authServer is a second Server over h's index and users, configured by
// mod, behind a handler that serves it.
func authServer(t *testing.T, h *hist, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{Index: h.ix, Root: h.root, Users: h.users, RequireAuth: true}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// serve runs one request through s's handler as if from remote.
func serve(s *Server, req *http.Request, remote string) *httptest.ResponseRecorder {
	req.RemoteAddr = remote
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	return w
}

// apiErrorOf is the JSON error of a reply, "" if none.
func apiErrorOf(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error
}

// TestLoopbackHostCheck: a loopback viewer (LoopbackOnly) answers only
// to loopback Host names and addresses, with any port; any other Host,
// the DNS-rebinding case, gets 421 and one JSON line, for every path,
// before the login. (Before: every Host was served.)
func TestLoopbackHostCheck(t *testing.T) {
	h := newHist(t, false)
	s := authServer(t, h, func(c *Config) { c.RequireAuth = false; c.LoopbackOnly = true })
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"localhost", true}, {"localhost:8080", true}, {"LocalHost:1", true},
		{"127.0.0.1", true}, {"127.0.0.1:8080", true}, {"127.4.5.6:80", true},
		{"[::1]:8080", true}, {"[::1]", true},
		{"evil.example", false}, {"evil.example:8080", false}, {"localhost.evil.example", false},
		{"127.0.0.1.nip.io:8080", false}, {"sub.localhost:8080", false}, {"192.0.2.1:8080", false},
		{"[::ffff:192.0.2.1]:80", false}, {"0.0.0.0:8080", false}, {"", false},
	} {
		for _, path := range []string{"/healthz", "/api/v1/agents", "/"} {
			req := httptest.NewRequest("GET", path, nil)
			req.Host = tc.host
			w := serve(s, req, "127.0.0.1:40000")
			switch {
			case tc.ok && w.Code == http.StatusMisdirectedRequest:
				t.Errorf("Host %q %s: refused, want served", tc.host, path)
			case !tc.ok && w.Code != http.StatusMisdirectedRequest:
				t.Errorf("Host %q %s: %d, want 421", tc.host, path, w.Code)
			case !tc.ok && (apiErrorOf(w.Body.Bytes()) == "" || strings.Count(w.Body.String(), "\n") > 1):
				t.Errorf("Host %q: want one JSON error line, got %q", tc.host, w.Body)
			}
		}
	}
	// Without LoopbackOnly (a viewer off loopback, reached by any name),
	// the Host is not judged.
	open := authServer(t, h, func(c *Config) { c.RequireAuth = false })
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Host = "historian.example.org"
	if w := serve(open, req, "192.0.2.7:4000"); w.Code != 200 {
		t.Errorf("off loopback, Host historian.example.org: %d", w.Code)
	}
}

// TestLoopbackDNSRebinding: what a browser sends after a page on
// rebind.example had its name re-pointed at 127.0.0.1: a same-origin
// fetch, over a real connection to a loopback viewer, with the page's
// Host. It is refused, and the login the user may have is never asked
// for (no challenge). (Before: 200 and the agent list.)
func TestLoopbackDNSRebinding(t *testing.T) {
	h := newHist(t, false)
	s := authServer(t, h, func(c *Config) { c.LoopbackOnly = true })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /api/v1/agents HTTP/1.1\r\n"+
		"Host: rebind.example:"+strings.Split(srv.Listener.Addr().String(), ":")[1]+"\r\n"+
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n"+
		"Accept: */*\r\nOrigin: http://rebind.example:8080\r\nReferer: http://rebind.example:8080/\r\n"+
		"Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest || resp.Header.Get("WWW-Authenticate") != "" || strings.Contains(string(b), "agents") {
		t.Fatalf("rebinding request: %d %q, challenge %q; want 421 without a challenge", resp.StatusCode, b, resp.Header.Get("WWW-Authenticate"))
	}
	// The same viewer by its own name still asks for a login.
	req, _ := http.NewRequest("GET", "http://localhost:"+strings.Split(srv.Listener.Addr().String(), ":")[1]+"/api/v1/agents", nil)
	resp, err = (&http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Host localhost without a login: %d, want 401", resp.StatusCode)
	}
}

// TestPlainHTTPLoginRefusedOffLoopback: over plain HTTP, a peer that is
// not on loopback gets 403 and no challenge, with or without credentials,
// before they are checked (and without counting a failure); the same
// request over TLS, or from loopback (a TLS-terminating proxy on the same
// machine), logs in. (Before: basic auth was taken over plain HTTP.)
func TestPlainHTTPLoginRefusedOffLoopback(t *testing.T) {
	h := newHist(t, true)
	d, err := defender.New(defender.Config{FailDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := authServer(t, h, func(c *Config) { c.Defender = d })
	for _, tc := range []struct {
		name, remote string
		tls          bool
		user         string
		want         int
	}{
		{"plain, off loopback, password", "192.0.2.7:5000", false, "admin", http.StatusForbidden},
		{"plain, off loopback, no credentials", "192.0.2.7:5000", false, "", http.StatusForbidden},
		{"plain, off loopback IPv6", "[2001:db8::7]:5000", false, "admin", http.StatusForbidden},
		{"TLS, off loopback", "192.0.2.7:5000", true, "admin", http.StatusOK},
		{"TLS, off loopback, no credentials", "192.0.2.7:5000", true, "", http.StatusUnauthorized},
		{"plain, loopback (proxy)", "127.0.0.1:5000", false, "admin", http.StatusOK},
		{"plain, loopback IPv6", "[::1]:5000", false, "admin", http.StatusOK},
	} {
		req := httptest.NewRequest("GET", "/api/v1/agents", nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, passwords[tc.user])
		}
		if tc.tls {
			req.TLS = &tls.ConnectionState{HandshakeComplete: true}
		}
		w := serve(s, req, tc.remote)
		if w.Code != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, w.Code, w.Body, tc.want)
		}
		if w.Code == http.StatusForbidden && (w.Header().Get("WWW-Authenticate") != "" || !strings.Contains(apiErrorOf(w.Body.Bytes()), "https://")) {
			t.Errorf("%s: challenge %q, error %q; want no challenge and one line naming https://", tc.name, w.Header().Get("WWW-Authenticate"), w.Body)
		}
	}
	if _, banned := d.Banned("192.0.2.7"); banned {
		t.Error("refusals over plain HTTP counted as failed logins")
	}
}

// TestPlainHTTPLoginRefusedOffLoopbackSocket is the refusal over a real
// connection from an address of this machine that is not loopback (the
// viewer listens on it); skipped where the machine has none.
func TestPlainHTTPLoginRefusedOffLoopbackSocket(t *testing.T) {
	ip := nonLoopbackIP(t)
	h := newHist(t, true)
	s := authServer(t, h, nil)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: s.Handler()}}
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/agents", nil)
	req.SetBasicAuth("admin", passwords["admin"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("basic auth over plain HTTP from %s: %d %s, want 403", ip, resp.StatusCode, b)
	}
}

// nonLoopbackIP is an IPv4 address of this machine that is not loopback.
func nonLoopbackIP(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP
		}
	}
	t.Skip("this machine has no IPv4 address off loopback")
	return nil
}

// TestBearerTokens: a token for one agent reads that agent's tree and
// nothing else; a token without an agent reads everything (as an admin
// viewer, read-only); a wrong token gets 401 and counts towards the
// address's ban like a wrong password; a token removed from the file is
// refused at the next request.
func TestBearerTokens(t *testing.T) {
	h := newHist(t, true)
	d1, d2 := t.TempDir(), t.TempDir()
	agentTree(t, d1, 1)
	agentTree(t, d2, 2)
	h.push("n1", d1)
	h.push("n2", d2)
	h.flush()
	tokens, err := accounts.OpenTokens(filepath.Join(t.TempDir(), accounts.TokensFileName))
	if err != nil {
		t.Fatal(err)
	}
	n1, _, err := tokens.Add("ci-n1", "n1")
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := tokens.Add("dashboards", "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := defender.New(defender.Config{FailDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := authServer(t, h, func(c *Config) { c.Tokens = tokens; c.Defender = d })
	get := func(token, path, remote string) int {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return serve(s, req, remote).Code
	}
	for _, tc := range []struct {
		token, path string
		want        int
	}{
		{n1, "/api/v1/files/n1/top.log", 200},
		{n1, "/raw/n1/top.log", 200},
		{n1, "/api/v1/files/n2/top.log", 404},
		{n1, "/raw/n2/top.log", 404},
		{n1, "/metrics", 403},
		{all, "/api/v1/files/n2/top.log", 200},
		{all, "/raw/n1/top.log", 200},
		{all, "/metrics", 200},
	} {
		if got := get(tc.token, tc.path, "127.0.0.1:5000"); got != tc.want {
			t.Errorf("token %.10s… %s: %d, want %d", tc.token, tc.path, got, tc.want)
		}
	}
	var agents struct {
		Agents []struct{ ID string } `json:"agents"`
	}
	req := httptest.NewRequest("GET", "/api/v1/agents", nil)
	req.Header.Set("Authorization", "Bearer "+n1)
	if err := json.Unmarshal(serve(s, req, "127.0.0.1:5000").Body.Bytes(), &agents); err != nil || len(agents.Agents) != 1 || agents.Agents[0].ID != "n1" {
		t.Errorf("agents seen by the n1 token: %+v (%v), want only n1", agents, err)
	}

	// Requests by token are marked, for anything an admin may change.
	r := gin.New()
	r.GET("/who", s.authenticate, func(c *gin.Context) { c.String(200, "%v", viaToken(c)) })
	for _, tc := range []struct {
		auth func(*http.Request)
		want string
	}{
		{func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+all) }, "true"},
		{func(r *http.Request) { r.SetBasicAuth("admin", passwords["admin"]) }, "false"},
	} {
		req := httptest.NewRequest("GET", "/who", nil)
		req.RemoteAddr = "127.0.0.1:5000"
		tc.auth(req)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Body.String() != tc.want {
			t.Errorf("viaToken: %q, want %s", w.Body, tc.want)
		}
	}

	// Wrong tokens: 401 each, then the address is banned (429), for
	// passwords too.
	for i := range defender.DefaultBanAfter {
		if got := get("syncer_not-a-token", "/api/v1/agents", "127.0.0.9:5000"); got != 401 {
			t.Fatalf("wrong token #%d: %d, want 401", i+1, got)
		}
	}
	if _, banned := d.Banned("127.0.0.9"); !banned {
		t.Fatalf("not banned after %d wrong tokens", defender.DefaultBanAfter)
	}
	if got := get(all, "/api/v1/agents", "127.0.0.9:5000"); got != http.StatusTooManyRequests {
		t.Errorf("right token from the banned address: %d, want 429", got)
	}

	// Removed (by another process, say `syncer token remove`): refused
	// at the next request.
	other, err := accounts.OpenTokens(tokens.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Remove("ci-n1"); err != nil {
		t.Fatal(err)
	}
	if got := get(n1, "/api/v1/files/n1/top.log", "127.0.0.1:5000"); got != 401 {
		t.Errorf("removed token: %d, want 401", got)
	}
	if got := get(all, "/api/v1/files/n1/top.log", "127.0.0.1:5000"); got != 200 {
		t.Errorf("the other token after the removal: %d, want 200", got)
	}
}

// TestLoginBusy: when no password check is free within the login's wait
// (the defender's bounded line is full), the web login gets 503 with a
// Retry-After and one JSON line, and the password is not checked.
func TestLoginBusy(t *testing.T) {
	h := newHist(t, true)
	d, err := defender.New(defender.Config{Verifiers: 1, FailDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := authServer(t, h, func(c *Config) { c.Defender = d })
	s.loginWait = 100 * time.Millisecond
	// Hold the only check slot.
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- d.Check(context.Background(), "127.0.0.50", "n2", "ftp", func() error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	req := httptest.NewRequest("GET", "/api/v1/agents", nil)
	req.SetBasicAuth("admin", passwords["admin"])
	w := serve(s, req, "127.0.0.1:5000")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || apiErrorOf(w.Body.Bytes()) == "" {
		t.Fatalf("login while every check is taken: %d, Retry-After %q, %q; want 503 with Retry-After and a JSON error", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// The slot is free again: the same login passes.
	req = httptest.NewRequest("GET", "/api/v1/agents", nil)
	req.SetBasicAuth("admin", passwords["admin"])
	if w := serve(s, req, "127.0.0.1:5000"); w.Code != 200 {
		t.Errorf("login after the slot was freed: %d", w.Code)
	}
}
