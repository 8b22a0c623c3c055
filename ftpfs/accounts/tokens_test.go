package accounts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokens: a token verifies until it is removed, also when another
// process (another Tokens on the file) adds or removes it; the file is
// 0600 and holds hashes, never a token; names and agents are checked; a
// broken file keeps the tokens read before.
func TestTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", TokensFileName)
	serve, err := OpenTokens(path) // the server's view
	if err != nil {
		t.Fatal(err)
	}
	cli, err := OpenTokens(path) // `syncer token`
	if err != nil {
		t.Fatal(err)
	}
	secret, tok, err := cli.Add("ci", "node17")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) < len(tokenPrefix)+43 || tok.Agent != "node17" {
		t.Fatalf("token %q %+v", secret, tok)
	}
	if got, ok, err := serve.Verify(secret); !ok || err != nil || got.Name != "ci" || got.Agent != "node17" {
		t.Fatalf("Verify of a new token: %+v %v %v", got, ok, err)
	}
	for _, bad := range []string{"", "syncer_", secret + "x", strings.ToUpper(secret), secret[:len(secret)-1]} {
		if _, ok, _ := serve.Verify(bad); ok {
			t.Errorf("Verify(%q) accepted", bad)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), secret) || strings.Contains(string(data), strings.TrimPrefix(secret, tokenPrefix)) {
		t.Error("the tokens file holds the token")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("tokens file mode %v, want 0600", st.Mode().Perm())
	}
	if _, _, err := cli.Add("ci", ""); !errors.Is(err, ErrTokenExists) {
		t.Errorf("Add of a taken name: %v", err)
	}
	for _, tc := range []struct{ name, agent string }{{"../x", ""}, {"", ""}, {"ok", "a/b"}, {"ok", ".."}} {
		if _, _, err := cli.Add(tc.name, tc.agent); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("Add(%q, %q): %v, want ErrInvalidUser", tc.name, tc.agent, err)
		}
	}
	all, _, err := cli.Add("all", "")
	if err != nil {
		t.Fatal(err)
	}
	list, err := serve.List()
	if err != nil || len(list) != 2 || list[0].Name != "all" || list[1].Name != "ci" {
		t.Fatalf("List: %+v %v", list, err)
	}
	if _, err := cli.Remove("ci"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := serve.Verify(secret); ok {
		t.Error("a removed token still verifies")
	}
	if _, err := cli.Remove("ci"); !errors.Is(err, ErrNoToken) {
		t.Errorf("second Remove: %v, want ErrNoToken", err)
	}
	// A hand edit that breaks the file: the server keeps what it had,
	// and says so; changes refuse to overwrite it.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := serve.Verify(all); !ok || !errors.Is(err, ErrTokensFile) {
		t.Errorf("Verify with a broken file: ok %v, err %v; want the old tokens and ErrTokensFile", ok, err)
	}
	if _, _, err := cli.Add("x", ""); !errors.Is(err, ErrTokensFile) {
		t.Errorf("Add to a broken file: %v", err)
	}
}
