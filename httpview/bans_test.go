package httpview

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/syncer-dev/syncer/internal/defender"
)

// TestBansAPI: an admin lists the bans and lifts one; an agent account
// gets 403 for both; a DELETE a browser sends from another origin is
// refused and lifts nothing; the CORS preflight a cross-origin fetch()
// needs is never granted.
func TestBansAPI(t *testing.T) {
	h := newHist(t, true)
	d, err := defender.New(defender.Config{BanAfter: 1, FailDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	d.Failed("203.0.113.7:4000", "n1", "ftp")
	d.Failed("2001:db8::7", "", "http")
	_, srv := h.serverWith(func(c *Config) { c.Defender = d })
	do := func(method, user, path string, hdr ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, passwords[user])
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if method == "OPTIONS" && resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("OPTIONS %s grants CORS: %v", path, resp.Header)
		}
		return resp.StatusCode, string(b)
	}
	banned := func(addr string) bool { _, ok := d.Banned(addr); return ok }

	code, body := do("GET", "admin", "/api/v1/bans")
	var list BansJSON
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.Bans) != 2 ||
		list.Bans[0].Addr != "2001:db8::7" || list.Bans[1].Addr != "203.0.113.7" || list.Bans[1].Until.IsZero() ||
		!strings.Contains(list.Bans[1].Reason, "ftp") {
		t.Fatalf("GET /api/v1/bans as admin: %d %s", code, body)
	}

	evil := "http://evil.example"
	refused := []struct {
		name, method, user, path string
		hdr                      []string
		want                     int
	}{
		{"list, agent account", "GET", "n1", "/api/v1/bans", nil, http.StatusForbidden},
		{"list, no login", "GET", "", "/api/v1/bans", nil, http.StatusUnauthorized},
		{"lift, agent account", "DELETE", "n1", "/api/v1/bans/203.0.113.7", nil, http.StatusForbidden},
		{"lift, no login", "DELETE", "", "/api/v1/bans/203.0.113.7", nil, http.StatusUnauthorized},
		{"lift, foreign Origin", "DELETE", "admin", "/api/v1/bans/203.0.113.7", []string{"Origin", evil}, http.StatusForbidden},
		{"lift, cross-site fetch", "DELETE", "admin", "/api/v1/bans/203.0.113.7", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"lift, same-site other origin", "DELETE", "admin", "/api/v1/bans/203.0.113.7", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://other.localhost"}, http.StatusForbidden},
		{"lift, as a form would", "POST", "admin", "/api/v1/bans/203.0.113.7", []string{"Content-Type", "application/x-www-form-urlencoded"}, http.StatusMethodNotAllowed},
		{"lift, GET", "GET", "admin", "/api/v1/bans/203.0.113.7", nil, http.StatusMethodNotAllowed},
		{"preflight", "OPTIONS", "", "/api/v1/bans/203.0.113.7", []string{"Origin", evil, "Access-Control-Request-Method", "DELETE"}, http.StatusMethodNotAllowed},
	}
	for _, tt := range refused {
		if code, body := do(tt.method, tt.user, tt.path, tt.hdr...); code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.want)
		}
		if !banned("203.0.113.7") {
			t.Fatalf("%s lifted the ban", tt.name)
		}
	}

	// The viewer's own page (same origin) and a script (no Origin) lift.
	if code, body := do("DELETE", "admin", "/api/v1/bans/203.0.113.7", "Origin", srv.URL, "Sec-Fetch-Site", "same-origin"); code != http.StatusOK || !strings.Contains(body, `"addr":"203.0.113.7"`) {
		t.Errorf("lift from the viewer's page: %d %s", code, body)
	}
	if code, body := do("DELETE", "admin", "/api/v1/bans/2001:db8::7"); code != http.StatusOK {
		t.Errorf("lift from a script: %d %s", code, body)
	}
	if banned("203.0.113.7") || banned("2001:db8::7") {
		t.Error("a lifted ban is still in force")
	}
	if code, body := do("DELETE", "admin", "/api/v1/bans/203.0.113.7"); code != http.StatusNotFound {
		t.Errorf("lift again: %d %s", code, body)
	}
	if code, body := do("DELETE", "admin", "/api/v1/bans/node17"); code != http.StatusBadRequest {
		t.Errorf("lift a name: %d %s", code, body)
	}

	// The connections page shows admins the bans, with a button each.
	d.Failed("198.51.100.9", "", "ftp")
	if code, body := do("GET", "admin", "/connections"); code != http.StatusOK || !strings.Contains(body, `data-addr="198.51.100.9"`) {
		t.Errorf("connections page for admin: %d, no ban of 198.51.100.9 with a button", code)
	}
	if _, body := do("GET", "n1", "/connections"); strings.Contains(body, "198.51.100.9") || strings.Contains(body, `id="bans"`) {
		t.Error("connections page shows bans to an agent account")
	}
}
