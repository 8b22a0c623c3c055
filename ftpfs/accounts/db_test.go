package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// testSecret is a password that must never show up in errors or files.
const testSecret = "hunter2-Sekrit"

// testHash returns a bcrypt hash of password; files written by hand may use
// any cost, so the tests use the cheapest.
func testHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// fast makes db hash new passwords at the lowest bcrypt cost: cost 10 takes
// about a second under the race detector. TestUserDBFile checks cost 10.
func fast(db *DB) *DB {
	db.cost = bcrypt.MinCost
	return db
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestValidateUserName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"node17", true},
		{"Node-17_a.b", true},
		{"a", true},
		{"0", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{".hidden", false},
		{".", false},
		{"..", false},
		{"-rf", false},
		{"a/b", false},
		{"a\\b", false},
		{"a b", false},
		{"nöde", false},
		{"a\x00", false},
		{"a:b", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			err := ValidateName(tt.name)
			if tt.ok && err != nil {
				t.Errorf("ValidateName(%q) = %v, want nil", tt.name, err)
			}
			if err == nil && !archive.ValidAgentID(tt.name) {
				t.Errorf("ValidateName(%q) accepts a name the archive refuses as an agent id", tt.name)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidUser) {
				t.Errorf("ValidateName(%q) = %v, want ErrInvalidUser", tt.name, err)
			}
		})
	}
}

func TestValidatePerm(t *testing.T) {
	tests := []struct {
		perm    string
		wantErr string
	}{
		{"", ""},
		{"elradfmwMT", ""},
		{"elramw", ""},
		{"TMwmfdarle", ""},
		{"elrx", "unknown letter 'x'"},
		{"elrE", "unknown letter 'E'"},
		{"elre", "letter 'e' given twice"},
		{"el r", "unknown letter ' '"},
		{"é", "unknown letter"},
	}
	for _, tt := range tests {
		t.Run(tt.perm, func(t *testing.T) {
			err := ValidatePerm(tt.perm)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("ValidatePerm(%q) = %v", tt.perm, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidUser) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ValidatePerm(%q) = %v, want ErrInvalidUser saying %q", tt.perm, err, tt.wantErr)
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	for _, pw := range []string{"", strings.Repeat("p", 73), "a\nb", "a\rb", "a\x00b"} {
		err := ValidatePassword(pw)
		if !errors.Is(err, ErrInvalidUser) {
			t.Errorf("ValidatePassword(%q) = %v, want ErrInvalidUser", pw, err)
		}
		if pw != "" && strings.Contains(err.Error(), pw) {
			t.Errorf("error %q contains the password", err)
		}
	}
	for _, pw := range []string{"x", strings.Repeat("p", 72), " spaces and ünïcode "} {
		if err := ValidatePassword(pw); err != nil {
			t.Errorf("ValidatePassword(%q) = %v", pw, err)
		}
	}
}

func TestOpenUserDBValidFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "users.yaml")
	h1, h2 := testHash(t, "pw-node17"), testHash(t, "pw-ops")
	writeTestFile(t, p, `# comment
users:
  - name: node17
    password_hash: "`+h1+`"
    perm: elramw
    home: /node17
    max_upload_rate: 10MiB   # optional
    max_download_rate: 1000
  - name: ops
    password_hash: '`+h2+`'
    perm: elradfmwMT
    admin: true
    home: /
  - name: minimal
    password_hash: `+h1+`
  - name: boss
    password_hash: `+h1+`
    admin: true
`)
	db, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []User{
		{Name: "boss", PasswordHash: h1, Perm: DefaultAdminPerm, Admin: true, Home: "/"},
		{Name: "minimal", PasswordHash: h1, Perm: DefaultAgentPerm, Home: "/minimal"},
		{Name: "node17", PasswordHash: h1, Perm: "elramw", Home: "/node17", MaxUploadRate: 10 << 20, MaxDownloadRate: 1000},
		{Name: "ops", PasswordHash: h2, Perm: "elradfmwMT", Admin: true, Home: "/"},
	}
	if got := db.List(); !reflect.DeepEqual(got, want) {
		t.Errorf("List() =\n%+v\nwant\n%+v", got, want)
	}
	if db.Path() != p {
		t.Errorf("Path() = %q, want %q", db.Path(), p)
	}
	if u, err := db.Authenticate("ops", "pw-ops"); err != nil || u.Name != "ops" {
		t.Errorf("Authenticate(ops) = %+v, %v", u, err)
	}
}

func TestOpenUserDBEmptyFiles(t *testing.T) {
	for _, content := range []string{"", "# nothing yet\n", "users:\n", "users: []\n", "---\n", "~\n"} {
		p := filepath.Join(t.TempDir(), "users.yaml")
		writeTestFile(t, p, content)
		db, err := Open(p)
		if err != nil {
			t.Errorf("Open(%q): %v", content, err)
			continue
		}
		if n := len(db.List()); n != 0 {
			t.Errorf("Open(%q) has %d users", content, n)
		}
	}
}

func TestOpenUserDBErrors(t *testing.T) {
	h := testHash(t, "x")
	entry := func(name, extra string) string {
		return "  - name: " + name + "\n    password_hash: " + h + "\n" + extra
	}
	tests := []struct {
		name    string
		content string
		user    string // the user the error must name ("" if none)
		wantErr string
	}{
		{"yaml syntax", "users:\n  - name: a\n   perm: x\n", "", "malformed YAML"},
		{"tab indent", "users:\n\t- name: a\n", "", "malformed YAML"},
		{"top level list", "- name: a\n", "", "want a mapping"},
		{"unknown top key", "users: []\naccounts: []\n", "", `unknown key "accounts"`},
		{"users not a list", "users:\n  name: a\n", "", "must be a list"},
		{"entry not a mapping", "users:\n  - node17\n", "", "account #1"},
		{"unknown key", "users:\n" + entry("node17", "    colour: red\n"), "node17", "colour: unknown key"},
		{"plain password", "users:\n  - name: node17\n    password: " + testSecret + "\n", "node17", "plain-text passwords are not allowed"},
		{"plain password beside hash", "users:\n" + entry("node17", "    password: "+testSecret+"\n"), "node17", "plain-text passwords are not allowed"},
		{"password_hash in plain text", "users:\n  - name: node17\n    password_hash: " + testSecret + "\n", "node17", "not a bcrypt hash"},
		{"password_hash truncated", "users:\n  - name: node17\n    password_hash: \"" + h[:40] + "\"\n", "node17", "not a bcrypt hash"},
		{"missing hash", "users:\n  - name: node17\n    perm: elr\n", "node17", "missing password_hash"},
		{"missing name", "users:\n  - password_hash: " + h + "\n", "", "account #1"},
		{"duplicate name", "users:\n" + entry("node17", "") + entry("node17", ""), "node17", "duplicate name"},
		{"name differs in case", "users:\n" + entry("node17", "") + entry("Node17", ""), "Node17", "only in case"},
		{"duplicate key", "users:\n" + entry("node17", "    perm: elr\n    perm: elrw\n"), "", `key "perm" given twice`},
		{"duplicate users key", "users: []\nusers: []\n", "", `key "users" given twice`},
		{"bad perm letter", "users:\n" + entry("node17", "    perm: elrx\n"), "node17", "unknown letter 'x'"},
		{"repeated perm letter", "users:\n" + entry("node17", "    perm: elrr\n"), "node17", "given twice"},
		{"name with slash", "users:\n" + entry("a/b", ""), "a/b", "only letters"},
		{"name with dot dot", "users:\n" + entry("'..'", ""), "..", "must not start"},
		{"name too long", "users:\n" + entry(strings.Repeat("n", 65), ""), "", "longer than 64"},
		{"name not a value", "users:\n  - name: [a]\n", "", "want a value"},
		{"relative home", "users:\n" + entry("node17", "    home: node17\n"), "node17", "absolute"},
		{"unclean home", "users:\n" + entry("node17", "    home: /a/../b\n"), "node17", "not a clean path"},
		{"agent with root home", "users:\n" + entry("node17", "    home: /\n"), "node17", "only admin accounts"},
		{"admin not a bool", "users:\n" + entry("ops", "    admin: yes\n"), "ops", "admin: want true or false"},
		{"bad rate", "users:\n" + entry("node17", "    max_upload_rate: 10Mbit\n"), "node17", `unknown unit "Mbit"`},
		{"negative rate", "users:\n" + entry("node17", "    max_download_rate: -5\n"), "node17", "negative"},
		{"two documents", "users: []\n---\nusers: []\n", "", "more than one YAML document"},
		{"not utf-8", "users:\n  - name: \xff\xfe\n", "", "not UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "users.yaml")
			writeTestFile(t, p, tt.content)
			db, err := Open(p)
			if err == nil {
				t.Fatalf("Open succeeded with %d users, want an error", len(db.List()))
			}
			msg := err.Error()
			if !errors.Is(err, ErrUsersFile) {
				t.Errorf("error %q does not wrap ErrUsersFile", msg)
			}
			if !strings.Contains(msg, p) {
				t.Errorf("error %q does not name the file", msg)
			}
			if tt.user != "" && !strings.Contains(msg, fmt.Sprintf("%q", tt.user)) {
				t.Errorf("error %q does not name user %q", msg, tt.user)
			}
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q does not say %q", msg, tt.wantErr)
			}
			if strings.Contains(msg, testSecret) || strings.Contains(msg, h) {
				t.Errorf("error %q reveals a password or hash", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is more than one line: %q", msg)
			}
		})
	}
}

func TestOpenUserDBNotAFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil {
		t.Error("Open(directory) succeeded")
	}
	if _, err := Open(""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
}

// userDBBackends runs a test against an in-memory and a file-backed DB.
// reopen returns a DB that reads what was saved (the same DB for the
// in-memory backend).
func userDBBackends(t *testing.T, test func(t *testing.T, db *DB, reopen func() *DB)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		db := fast(New())
		test(t, db, func() *DB { return db })
	})
	t.Run("file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "state", "sub", "users.yaml")
		db, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		test(t, fast(db), func() *DB {
			t.Helper()
			db2, err := Open(p)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			return fast(db2)
		})
	})
}

func TestUserDBAccounts(t *testing.T) {
	userDBBackends(t, func(t *testing.T, db *DB, reopen func() *DB) {
		if err := db.Add(User{Name: "node17"}, testSecret); err != nil {
			t.Fatal(err)
		}
		if err := db.Add(User{Name: "ops", Admin: true, MaxUploadRate: 10 << 20}, "ops-pw"); err != nil {
			t.Fatal(err)
		}
		if err := db.Add(User{Name: "reader", Perm: "elr", Home: "/node17"}, "r-pw"); err != nil {
			t.Fatal(err)
		}

		// Refusals.
		for _, tt := range []struct {
			u        User
			password string
			want     error
		}{
			{User{Name: "node17"}, "other", ErrUserExists},
			{User{Name: "NODE17"}, "other", ErrUserExists},
			{User{Name: ".node"}, "pw", ErrInvalidUser},
			{User{Name: "n", Perm: "elrz"}, "pw", ErrInvalidUser},
			{User{Name: "n", Home: "/"}, "pw", ErrInvalidUser},
			{User{Name: "n", Home: "rel"}, "pw", ErrInvalidUser},
			{User{Name: "n", MaxUploadRate: -1}, "pw", ErrInvalidUser},
			{User{Name: "n"}, "", ErrInvalidUser},
			{User{Name: "n"}, "two\nlines", ErrInvalidUser},
		} {
			if err := db.Add(tt.u, tt.password); !errors.Is(err, tt.want) {
				t.Errorf("Add(%+v) = %v, want %v", tt.u, err, tt.want)
			}
		}

		db = reopen()
		want := []User{
			{Name: "node17", Perm: DefaultAgentPerm, Home: "/node17"},
			{Name: "ops", Perm: DefaultAdminPerm, Admin: true, Home: "/", MaxUploadRate: 10 << 20},
			{Name: "reader", Perm: "elr", Home: "/node17"},
		}
		got := db.List()
		if len(got) != len(want) {
			t.Fatalf("List() = %+v, want %d users", got, len(want))
		}
		for i := range want {
			if cost, err := bcrypt.Cost([]byte(got[i].PasswordHash)); err != nil || cost != bcrypt.MinCost {
				t.Errorf("user %s: hash cost %d (err %v), want %d", got[i].Name, cost, err, bcrypt.MinCost)
			}
			got[i].PasswordHash = ""
			if got[i] != want[i] {
				t.Errorf("List()[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}

		// Authentication.
		if u, err := db.Authenticate("node17", testSecret); err != nil || u.Name != "node17" || u.Home != "/node17" {
			t.Errorf("Authenticate(node17, right) = %+v, %v", u, err)
		}
		for _, c := range [][2]string{{"node17", "wrong"}, {"node17", ""}, {"nobody", testSecret}, {"NODE17", testSecret}, {"ops", testSecret}} {
			if u, err := db.Authenticate(c[0], c[1]); !errors.Is(err, ErrServerAuth) || u.Name != "" {
				t.Errorf("Authenticate(%q, %q) = %+v, %v, want ErrServerAuth", c[0], c[1], u, err)
			}
		}

		// Update keeps the hash, SetPassword changes it.
		if err := db.Update(User{Name: "node17", Perm: "elr", MaxDownloadRate: 1 << 20, PasswordHash: "ignored"}); err != nil {
			t.Fatal(err)
		}
		if err := db.Update(User{Name: "ghost"}); !errors.Is(err, ErrNoUser) {
			t.Errorf("Update(ghost) = %v, want ErrNoUser", err)
		}
		if err := db.Update(User{Name: "node17", Perm: "x"}); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("Update(bad perm) = %v, want ErrInvalidUser", err)
		}
		db = reopen()
		if u, err := db.Authenticate("node17", testSecret); err != nil || u.Perm != "elr" || u.MaxDownloadRate != 1<<20 {
			t.Errorf("after Update: Authenticate = %+v, %v", u, err)
		}
		if err := db.SetPassword("node17", "new-pw"); err != nil {
			t.Fatal(err)
		}
		if err := db.SetPassword("ghost", "new-pw"); !errors.Is(err, ErrNoUser) {
			t.Errorf("SetPassword(ghost) = %v, want ErrNoUser", err)
		}
		if err := db.SetPassword("node17", ""); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("SetPassword(empty) = %v, want ErrInvalidUser", err)
		}
		db = reopen()
		if _, err := db.Authenticate("node17", testSecret); !errors.Is(err, ErrServerAuth) {
			t.Errorf("old password still works: %v", err)
		}
		if u, err := db.Authenticate("node17", "new-pw"); err != nil || u.Perm != "elr" {
			t.Errorf("new password: %+v, %v", u, err)
		}

		// Remove.
		if err := db.Remove("node17"); err != nil {
			t.Fatal(err)
		}
		if err := db.Remove("node17"); !errors.Is(err, ErrNoUser) {
			t.Errorf("second Remove = %v, want ErrNoUser", err)
		}
		db = reopen()
		if _, ok := db.Lookup("node17"); ok {
			t.Error("removed user still there")
		}
		if _, err := db.Authenticate("node17", "new-pw"); !errors.Is(err, ErrServerAuth) {
			t.Errorf("removed user authenticates: %v", err)
		}
		if u, ok := db.Lookup("ops"); !ok || !u.Admin {
			t.Errorf("Lookup(ops) = %+v, %v", u, ok)
		}
	})
}

func TestUserDBFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	p := filepath.Join(dir, "users.yaml")
	db, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("opening created the file: %v", err)
	}
	if err := db.Remove("ghost"); !errors.Is(err, ErrNoUser) {
		t.Fatalf("Remove(ghost) = %v", err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("a failed change created the file: %v", err)
	}
	if err := db.Add(User{Name: "node17", MaxUploadRate: 10 << 20}, testSecret); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("users file mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(testSecret)) {
		t.Fatal("users file contains the plain password")
	}
	// The file is the documented format.
	var doc struct {
		Users []map[string]string `yaml:"users"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("users file is not YAML: %v\n%s", err, data)
	}
	if len(doc.Users) != 1 {
		t.Fatalf("users file:\n%s", data)
	}
	e := doc.Users[0]
	if e["name"] != "node17" || e["perm"] != DefaultAgentPerm || e["home"] != "/node17" || e["max_upload_rate"] != "10MiB" {
		t.Errorf("users file entry %v", e)
	}
	if bcrypt.CompareHashAndPassword([]byte(e["password_hash"]), []byte(testSecret)) != nil {
		t.Errorf("password_hash in the file does not match the password")
	}
	if cost, err := bcrypt.Cost([]byte(e["password_hash"])); err != nil || cost != PasswordCost {
		t.Errorf("hash cost %d (err %v), want %d", cost, err, PasswordCost)
	}
	// No temp files left behind.
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		if n := ent.Name(); n != "users.yaml" && n != "users.yaml.lock" {
			t.Errorf("stray file %s in the state directory", n)
		}
	}
}

func TestUserDBConcurrentAdds(t *testing.T) {
	// Several DBs on one file stand for several `syncer user add`
	// processes; several goroutines per DB for concurrent server calls.
	p := filepath.Join(t.TempDir(), "users.yaml")
	const dbs, perDB = 3, 4
	var wg sync.WaitGroup
	errs := make(chan error, dbs*perDB)
	for i := 0; i < dbs; i++ {
		db, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		fast(db)
		for j := 0; j < perDB; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("node%d-%d", i, j)
				errs <- db.Add(User{Name: name}, "pw-"+name)
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	db, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(db.List()); n != dbs*perDB {
		var names []string
		for _, u := range db.List() {
			names = append(names, u.Name)
		}
		t.Fatalf("file has %d users, want %d: %v", n, dbs*perDB, names)
	}
	for i := 0; i < dbs; i++ {
		for j := 0; j < perDB; j++ {
			name := fmt.Sprintf("node%d-%d", i, j)
			if _, err := db.Authenticate(name, "pw-"+name); err != nil {
				t.Errorf("Authenticate(%s): %v", name, err)
			}
		}
	}
}

func TestUserDBConcurrentSameName(t *testing.T) {
	// Two processes adding the same name: exactly one wins.
	p := filepath.Join(t.TempDir(), "users.yaml")
	var wg sync.WaitGroup
	results := make([]error, 4)
	for i := range results {
		db, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		fast(db)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = db.Add(User{Name: "node17"}, fmt.Sprintf("pw%d", i))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrUserExists):
			t.Errorf("Add: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d adds of the same name succeeded, want 1", won)
	}
}

func TestUserDBReloadKeepsUsersOnBrokenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users.yaml")
	db, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	fast(db)
	if err := db.Add(User{Name: "node17"}, testSecret); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, broken := range []string{
		"users:\n  - name: [\n",
		"users:\n  - name: node17\n    password: " + testSecret + "\n",
		"users:\n  - name: node17\n    password_hash: x\n    perm: elrQ\n",
	} {
		writeTestFile(t, p, broken)
		err := db.Reload()
		if !errors.Is(err, ErrUsersFile) {
			t.Errorf("Reload of %q = %v, want ErrUsersFile", broken, err)
		}
		if _, err := db.Authenticate("node17", testSecret); err != nil {
			t.Errorf("after a failed Reload the old account is gone: %v", err)
		}
		// A change must not overwrite a file it cannot parse.
		if err := db.Add(User{Name: "other"}, "pw"); !errors.Is(err, ErrUsersFile) {
			t.Errorf("Add on a broken file = %v, want ErrUsersFile", err)
		}
		if data, _ := os.ReadFile(p); string(data) != broken {
			t.Errorf("a change overwrote the broken file:\n%s", data)
		}
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := db.Reload(); err == nil {
		t.Error("Reload of a removed file succeeded")
	}
	if _, ok := db.Lookup("node17"); !ok {
		t.Error("Reload of a removed file dropped the accounts")
	}
	writeTestFile(t, p, string(good)+"  - name: ops\n    admin: true\n    password_hash: "+testHash(t, "ops-pw")+"\n")
	if err := db.Reload(); err != nil {
		t.Fatalf("Reload of a fixed file: %v", err)
	}
	if _, err := db.Authenticate("ops", "ops-pw"); err != nil {
		t.Errorf("Reload did not pick up a new account: %v", err)
	}
}

// syncBuffer is a log sink the watcher goroutine can write to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startWatch runs db.Watch until the test ends and returns a channel that
// receives after every reported change, and the log.
func startWatch(t *testing.T, db *DB) (<-chan struct{}, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	changed := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.Watch(ctx, slog.New(slog.NewTextHandler(logs, nil)), func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return after its context was cancelled")
		}
	})
	return changed, logs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUserDBWatch(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users.yaml")
	server, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	fast(server)
	changed, logs := startWatch(t, server)

	// A missing file is a new historian, not an error.
	if err := server.Reload(); err == nil {
		t.Error("Reload of a missing file succeeded")
	}

	// Another process (here another DB) adds an account: atomic rename.
	other, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	fast(other)
	if err := other.Add(User{Name: "node17"}, testSecret); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher to see the new account", func() bool {
		_, ok := server.Lookup("node17")
		return ok
	})
	select {
	case <-changed:
	case <-time.After(15 * time.Second):
		t.Fatal("changed() was not called")
	}

	// A broken hand edit is logged, not applied.
	writeTestFile(t, p, "users:\n  - name: node17\n    password: "+testSecret+"\n")
	waitFor(t, "the reload error in the log", func() bool {
		return strings.Contains(logs.String(), "plain-text passwords are not allowed")
	})
	if _, err := server.Authenticate("node17", testSecret); err != nil {
		t.Errorf("broken file dropped the account: %v", err)
	}
	if strings.Contains(logs.String(), testSecret) {
		t.Errorf("log contains the password:\n%s", logs)
	}

	// Fixing it, in place this time, is picked up; removal too.
	if err := other.Reload(); err == nil {
		t.Fatal("other.Reload of the broken file succeeded")
	}
	writeTestFile(t, p, "users:\n  - name: ops\n    admin: true\n    password_hash: "+testHash(t, "ops-pw")+"\n")
	waitFor(t, "the watcher to apply the fixed file", func() bool {
		_, ok := server.Lookup("ops")
		_, gone := server.Lookup("node17")
		return ok && !gone
	})
	// One error, for the broken file: none for the file not existing yet
	// when Watch started, and the same error is not repeated.
	if n := strings.Count(logs.String(), "users file not reloaded"); n != 1 {
		t.Errorf("%d reload errors logged, want 1:\n%s", n, logs)
	}
}

func TestUserDBWatchMissingDirectory(t *testing.T) {
	// serve may start before the state directory exists; Watch polls then.
	dir := filepath.Join(t.TempDir(), "later")
	p := filepath.Join(dir, "users.yaml")
	server, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	fast(server)
	_, logs := startWatch(t, server)
	waitFor(t, "the fallback to polling", func() bool { return strings.Contains(logs.String(), "polling") })
	other, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	fast(other)
	if err := other.Add(User{Name: "node17"}, testSecret); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poller to see the new account", func() bool {
		_, ok := server.Lookup("node17")
		return ok
	})
}

func TestUserDBWatchInMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	New().Watch(ctx, nil, nil) // must return at once, not at the timeout
	if ctx.Err() != nil {
		t.Error("Watch on an in-memory DB blocked until its context ended")
	}
}

func FuzzLoadUsers(f *testing.F) {
	h := testHash(f, "x")
	seeds := []string{
		"",
		"users: []\n",
		"users:\n  - name: node17\n    password_hash: \"" + h + "\"\n    perm: elramw\n    home: /node17\n    max_upload_rate: 10MiB\n",
		"users:\n  - name: ops\n    password_hash: '" + h + "'\n    perm: elradfmwMT\n    admin: true\n    home: /\n",
		"users:\n  - name: a\n    password_hash: " + h + "\n  - name: b\n    password_hash: " + h + "\n    max_download_rate: 1000\n",
		"users:\n  - name: a\n    password: plain\n",
		"users:\n  - name: a\n    password_hash: plain\n",
		"users:\n  - name: a\n    password_hash: " + h + "\n  - name: a\n    password_hash: " + h + "\n",
		"users:\n  - name: ../x\n",
		"users:\n  - &a {name: a, password_hash: '" + h + "'}\n  - *a\n",
		"users: &l\n  - *l\n",
		"x: &x [*x]\n",
		"users: {}\n",
		"- - -\n",
		"users:\n  - name: a\n    admin: yes\n",
		"users:\n  - name: a\n    perm: elrr\n",
		"{{{{",
		"users:\n  - name: a\n    home: /a/../b\n",
		"users: []\n---\nusers: []\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := parseUsers("users.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrUsersFile) {
				t.Fatalf("error %v does not wrap ErrUsersFile", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is more than one line: %q", err)
			}
			return
		}
		// Whatever parses is valid, and survives a save and a load.
		for name, u := range users {
			if u.Name != name {
				t.Fatalf("user %q filed under %q", u.Name, name)
			}
			if nu, err := normalizeUser(u); err != nil || nu != u {
				t.Fatalf("loaded user %+v is not normal: %+v, %v", u, nu, err)
			}
			if !isBcryptHash(u.PasswordHash) {
				t.Fatalf("user %q loaded without a bcrypt hash", name)
			}
		}
		out, err := encodeUsers(users)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		back, err := parseUsers("users.yaml", out)
		if err != nil {
			t.Fatalf("re-parse of saved file: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, users) {
			t.Fatalf("round trip changed the users:\n%+v\n%+v", users, back)
		}
	})
}

func ExampleDB() {
	db := New() // or Open("/var/lib/syncer/users.yaml")
	if err := db.Add(User{Name: "node17"}, "s3cret"); err != nil {
		fmt.Println(err)
		return
	}
	u, err := db.Authenticate("node17", "s3cret")
	fmt.Println(u.Name, u.Perm, u.Home, err)
	_, err = db.Authenticate("node17", "wrong")
	fmt.Println(err)
	// Output:
	// node17 elramw /node17 <nil>
	// login incorrect
}
