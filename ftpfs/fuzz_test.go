package ftpfs

import (
	"path"
	"strings"
	"testing"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// FuzzResolvePath: whatever name an agent's FTP command carries, resolve
// either refuses it or returns a clean archive path inside the agent's home
// and a relative path with no ".." element; names with NUL, CR or LF are
// always refused. This is the confinement rule every command goes through.
func FuzzResolvePath(f *testing.F) {
	for _, s := range []string{
		"/node1/a.log", "/node1/../node2/x", "/node1/%2e%2e/x", "//node2", "/node1/./../../etc/passwd",
		"node1/a", "/node10/a", "/node1\x00/a", "/node1/a\r\nDELE x", "/", "/node1/" + strings.Repeat("../", 20),
	} {
		f.Add(s)
	}
	s, err := NewServer(ServerConfig{Root: f.TempDir(), Users: accounts.New(), ListenAddr: "127.0.0.1:0"})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.AddUser(accounts.User{Name: "node1"}, "pw-node1-long-enough"); err != nil {
		f.Fatal(err)
	}
	u, ok := s.users.Lookup("node1")
	if !ok {
		f.Fatal("no node1")
	}
	h, err := s.newHandler(nil, effectiveUser(u))
	if err != nil {
		f.Fatal(err)
	}
	defer h.close()
	f.Fuzz(func(t *testing.T, name string) {
		for _, letter := range []byte{0, permRead, permWrite} {
			rel, p, err := h.resolve(name, letter)
			if err != nil {
				continue
			}
			if strings.ContainsAny(name, "\x00\r\n") {
				t.Fatalf("resolve(%q) accepted NUL, CR or LF", name)
			}
			if p != path.Clean(p) || !path.IsAbs(p) || !pathWithin(p, "/node1") {
				t.Fatalf("resolve(%q) = %q: outside the home /node1", name, p)
			}
			if path.IsAbs(rel) || rel != path.Clean(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Fatalf("resolve(%q) relative path %q escapes", name, rel)
			}
		}
	})
}
