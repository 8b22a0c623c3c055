package ftpfs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// permCase is one permission letter and an FTP action that needs it, run
// under the account's home h. It returns a description of the failure, or
// "" on success.
type permCase struct {
	letter  byte
	account string
	action  func(r *srvRaw, h string) string
}

// want2xx runs a command and reports anything but a 2xx/3xx reply.
func want2xx(r *srvRaw, format string, args ...any) string {
	code, msg := r.cmd(format, args...)
	if code < 200 || code >= 400 {
		return fmt.Sprintf("%s: %d %s", strings.Fields(fmt.Sprintf(format, args...))[0], code, msg)
	}
	return ""
}

// transfer runs a data command and reports anything but 150 then 226.
func transfer(r *srvRaw, cmd string, data []byte) string {
	dc := r.epsv()
	code, msg := r.cmd("%s", cmd)
	if code != 150 {
		_ = dc.Close()
		return fmt.Sprintf("%s: %d %s", cmd, code, msg)
	}
	if data != nil {
		_, _ = dc.Write(data)
	} else {
		buf := make([]byte, 4096)
		for {
			if _, err := dc.Read(buf); err != nil {
				break
			}
		}
	}
	_ = dc.Close()
	if code, msg := r.reply(); code != 226 {
		return fmt.Sprintf("%s: %d %s", cmd, code, msg)
	}
	return ""
}

var permCases = []permCase{
	{'e', "nocwd", func(r *srvRaw, h string) string { return want2xx(r, "CWD %s/dir", h) }},
	{'l', "nolist", func(r *srvRaw, h string) string {
		if s := want2xx(r, "SIZE %s/f.txt", h); s != "" {
			return s
		}
		return transfer(r, "LIST "+h+"/dir", nil)
	}},
	{'r', "noread", func(r *srvRaw, h string) string { return transfer(r, "RETR "+h+"/f.txt", nil) }},
	{'a', "noappend", func(r *srvRaw, h string) string { return transfer(r, "APPE "+h+"/f.txt", []byte("more")) }},
	{'d', "nodelete", func(r *srvRaw, h string) string { return want2xx(r, "DELE %s/f.txt", h) }},
	{'f', "norename", func(r *srvRaw, h string) string {
		if s := want2xx(r, "RNFR %s/f.txt", h); s != "" {
			return s
		}
		return want2xx(r, "RNTO %s/g.txt", h)
	}},
	{'m', "nomkdir", func(r *srvRaw, h string) string { return want2xx(r, "MKD %s/newdir", h) }},
	{'w', "nowrite", func(r *srvRaw, h string) string { return transfer(r, "STOR "+h+"/new.txt", []byte("new")) }},
	{'M', "nochmod", func(r *srvRaw, h string) string { return want2xx(r, "SITE CHMOD 600 %s/f.txt", h) }},
	// Without T an agent that may write sets its own files' times (its
	// logs keep their node's mtime), never a directory's.
	{'T', "nomtime", func(r *srvRaw, h string) string { return want2xx(r, "MFMT 20200102030405 %s/dir", h) }},
}

// TestServerPermissionLetters: an agent with every letter can do each
// action in its home; an agent with every letter but one cannot do that
// letter's action.
func TestServerPermissionLetters(t *testing.T) {
	const all = "elradfmwMT"
	extra := []accounts.User{{Name: "full", Perm: all}}
	for _, c := range permCases {
		extra = append(extra, accounts.User{Name: c.account, Perm: strings.ReplaceAll(all, string(c.letter), "")})
	}
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) { cfg.Users = srvUsers(t, t.TempDir(), extra) })
	for _, c := range permCases {
		t.Run(string(c.letter), func(t *testing.T) {
			for _, acct := range []string{"full", c.account} {
				h := "/" + acct
				_ = os.RemoveAll(e.file(h))
				e.put(h+"/f.txt", []byte("hello"))
				e.put(h+"/dir/x.txt", []byte("x"))
				r := e.rawLogin(acct)
				failure := c.action(r, h)
				if acct == "full" && failure != "" {
					t.Fatalf("account with all letters: %s", failure)
				}
				if acct != "full" && failure == "" {
					t.Fatalf("account without %q could do it", c.letter)
				}
			}
		})
	}
	// The refusals left the fixtures as they were.
	for _, c := range permCases {
		h := "/" + c.account
		if got := string(e.read(h + "/f.txt")); got != "hello" {
			t.Errorf("%s/f.txt = %q after a refused action", h, got)
		}
		for _, name := range []string{"g.txt", "new.txt", "newdir"} {
			if _, err := os.Stat(e.file(h + "/" + name)); err == nil {
				t.Errorf("%s/%s exists after a refused action", h, name)
			}
		}
	}
}

// TestServerConfinement: an agent cannot see or touch anything outside its
// home, however the path is written, and refusals do not reveal whether a
// path outside exists.
func TestServerConfinement(t *testing.T) {
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) {
		cfg.Users = srvUsers(t, t.TempDir(), []accounts.User{{Name: "wide", Perm: "elradfmwMT"}})
	})
	secret := []byte("node2 secret")
	e.put("/node2/secret.log", secret)
	e.put("/node2/dir/x.log", []byte("x"))
	e.put("/top.log", []byte("top"))
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "host.txt"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	home := e.file("/wide")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink into another agent's tree, and one out of the archive.
	if err := os.Symlink("../node2", filepath.Join(home, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(home, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../node2/secret.log", filepath.Join(home, "file-link")); err != nil {
		t.Fatal(err)
	}

	r := e.rawLogin("wide")
	commands := []string{
		"SIZE /node2/secret.log", "MDTM /node2/secret.log", "MLST /node2/secret.log",
		"SIZE /top.log", "CWD /node2", "CWD /", "CWD ..", "CWD ../node2",
		"SIZE ../node2/secret.log", "SIZE /wide/../node2/secret.log", "SIZE /node2/../node2/secret.log",
		"SIZE /wide/link/secret.log", "CWD /wide/link", "SIZE /wide/file-link",
		"SIZE /wide/escape/host.txt", "CWD /wide/escape",
		"SIZE /wide/%2e%2e/node2/secret.log", "SIZE //node2/secret.log",
		"MKD /node2/new", "MKD /new", "MKD /wide/link/new", "MKD /wide/escape/new",
		"DELE /node2/secret.log", "DELE /wide/link/secret.log", "DELE /wide/escape/host.txt",
		"RMD /node2/dir", "RNFR /node2/secret.log", "RNFR /wide/link/secret.log",
		"SITE CHMOD 777 /node2/secret.log", "MFMT 20200102030405 /node2/secret.log",
		"SITE CHMOD 777 /wide/escape/host.txt",
	}
	for _, c := range commands {
		if code, msg := r.cmd("%s", c); code < 400 {
			t.Errorf("%s: %d %s, want a refusal", c, code, msg)
		}
	}
	// Renaming something of its own into another tree is refused too.
	e.put("/wide/mine.log", []byte("mine"))
	r.expect(350, "RNFR /wide/mine.log")
	if code, msg := r.cmd("RNTO /node2/stolen.log"); code < 400 {
		t.Errorf("RNTO into /node2: %d %s", code, msg)
	}
	dataCommands := []string{
		"LIST /", "LIST /node2", "NLST /node2", "MLSD /node2", "LIST /wide/link", "LIST /wide/escape",
		"RETR /node2/secret.log", "RETR /wide/link/secret.log", "RETR /wide/file-link",
		"RETR /wide/escape/host.txt", "RETR ../node2/secret.log",
		"STOR /node2/new.log", "STOR /top.log", "APPE /node2/secret.log", "STOR /wide/link/new.log",
		"STOR /wide/escape/new.log", "APPE /wide/file-link",
	}
	for _, c := range dataCommands {
		dc := r.epsv()
		code, msg := r.cmd("%s", c)
		_ = dc.Close()
		if code == 150 {
			code, msg = r.reply()
			t.Errorf("%s: the transfer started (then %d %s)", c, code, msg)
			continue
		}
		if code < 400 {
			t.Errorf("%s: %d %s, want a refusal", c, code, msg)
		}
	}

	// Existing and missing paths outside the home get the same answer.
	codeA, msgA := r.cmd("SIZE /node2/secret.log")
	codeB, msgB := r.cmd("SIZE /node2/missing.log")
	if codeA != codeB || strings.ReplaceAll(msgA, "secret", "missing") != msgB {
		t.Errorf("outside refusals differ: %d %q vs %d %q", codeA, msgA, codeB, msgB)
	}

	// Nothing changed outside the home.
	if got := e.read("/node2/secret.log"); string(got) != string(secret) {
		t.Errorf("/node2/secret.log changed: %q", got)
	}
	for _, p := range []string{"/node2/new.log", "/node2/new", "/new", "/node2/stolen.log", "/node2/secret.log.superseded"} {
		if _, err := os.Stat(e.file(p)); err == nil {
			t.Errorf("%s was created", p)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("the directory outside the archive has %d entries, want 1", len(entries))
	}
	if fi, err := os.Stat(e.file("/node2/secret.log")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("/node2/secret.log mode changed: %v %v", fi.Mode(), err)
	}

	// Inside its home the same account works, and the admin sees all.
	r.expect(250, "CWD /wide")
	r.expect(213, "SIZE /wide/mine.log")
	a := e.rawLogin(srvAdmin)
	a.expect(213, "SIZE /node2/secret.log")
	a.expect(250, "CWD /")
	if s := transfer(a, "LIST /", nil); s != "" {
		t.Errorf("admin LIST /: %s", s)
	}
	// Even an admin cannot follow a symlink out of the archive root.
	if code, msg := a.cmd("SIZE /wide/escape/host.txt"); code < 400 {
		t.Errorf("admin through a symlink out of the root: %d %s", code, msg)
	}
}

// TestServerBadNames: names with NUL or CR are refused (LF cannot be sent
// inside a command line at all).
func TestServerBadNames(t *testing.T) {
	e := srvStart(t, nil)
	r := e.rawLogin(srvAgent)
	for _, name := range []string{"bad\rname.log", "bad\x00name.log"} {
		dc := r.epsv()
		code, msg := r.cmd("STOR /node1/%s", name)
		_ = dc.Close()
		if code != 553 {
			if code == 150 {
				r.reply()
			}
			t.Errorf("STOR %q: %d %s, want 553", name, code, msg)
		}
		if code, msg := r.cmd("MKD /node1/%s", name); code < 400 {
			t.Errorf("MKD %q: %d %s, want a refusal", name, code, msg)
		}
	}
	entries, err := os.ReadDir(e.file("/node1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("home holds %v after refused names", entries)
	}
}

// TestServerNonUTF8Name: a name that is not UTF-8 is stored byte-exact.
func TestServerNonUTF8Name(t *testing.T) {
	e := srvStart(t, nil)
	c := e.dial(srvAgent, srvPassword)
	name := "/node1/caf\xe9-\xff.log"
	if err := c.Stor(name, strings.NewReader("latin-1 name")); err != nil {
		t.Fatalf("STOR %q: %v", name, err)
	}
	if got := e.read(name); string(got) != "latin-1 name" {
		t.Fatalf("stored %q under %q", got, name)
	}
	size, err := c.FileSize(name)
	if err != nil || size != int64(len("latin-1 name")) {
		t.Fatalf("SIZE %q = %d, %v", name, size, err)
	}
}

// TestServerAgentHome: an agent starts in its home, created at first login.
func TestServerAgentHome(t *testing.T) {
	e := srvStart(t, nil)
	c := e.dial(srvAgent, srvPassword)
	dir, err := c.CurrentDir()
	if err != nil {
		t.Fatal(err)
	}
	if dir != "/node1" {
		t.Fatalf("agent starts in %q, want /node1", dir)
	}
	if fi, err := os.Stat(e.file("/node1")); err != nil || !fi.IsDir() {
		t.Fatalf("home not created at login: %v", err)
	}
	// Relative paths are relative to the home.
	if err := c.Stor("rel.log", strings.NewReader("relative")); err != nil {
		t.Fatalf("STOR relative: %v", err)
	}
	if got := e.read("/node1/rel.log"); string(got) != "relative" {
		t.Fatalf("relative upload landed as %q", got)
	}
}
