package httpview

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoDiskPathForAgentAccounts: no page or API answer tells an agent
// account where the archive lives on the historian's disk (or the state
// directory); the overview still tells an admin.
func TestNoDiskPathForAgentAccounts(t *testing.T) {
	h := newHist(t, true)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "app", "a.log"), logLines(1, 50))
	h.push("n1", src)

	paths := []string{"/", "/agents", "/agent/n1", "/agent/n1/app", "/view/n1/app/a.log", "/search", "/search?name=*.log",
		"/connections", "/api/v1/overview", "/api/v1/agents", "/api/v1/files", "/api/v1/files/n1", "/api/v1/files/n1/app",
		"/api/v1/files/n1/app/a.log", "/api/v1/search?name=*.log", "/api/v1/grep?q=served", "/api/v1/connections",
		"/api/v1/lines/n1/app/a.log", "/api/v1/find/n1/app/a.log?q=served", "/raw/n1/app/a.log", "/download/n1/app",
		"/api/v1/bans", "/metrics", "/agent/n2", "/view/n1/nothere.log", "/raw/n1/..%2f..%2fetc", "/api/v1/files/n1/nothere",
		"/api/v1/lines/n1/nothere.log", "/nosuchpage"}
	for _, p := range paths {
		resp, b := h.get("n1", p)
		for _, secret := range []string{h.root, h.state} {
			if strings.Contains(string(b), secret) || strings.Contains(resp.Header.Get("Content-Disposition"), secret) {
				t.Errorf("GET %s as an agent account (%d) tells the disk path %s", p, resp.StatusCode, secret)
			}
		}
	}
	var o struct {
		Service Overview `json:"service"`
	}
	h.getJSON("admin", "/api/v1/overview", &o)
	if o.Service.ArchiveRoot != h.root {
		t.Errorf("admin's overview: archive root %q, want %q", o.Service.ArchiveRoot, h.root)
	}
	if _, b := h.get("admin", "/"); !strings.Contains(string(b), h.root) {
		t.Error("admin's overview page does not show the archive root")
	}
	_, b := h.get("n1", "/api/v1/overview")
	var raw struct {
		Service map[string]any `json:"service"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.Service["archive_root"]; ok {
		t.Errorf("an agent account's overview has archive_root: %s", b)
	}
	if resp, _ := h.get("n1", "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("overview page for n1: %d", resp.StatusCode)
	}
}
