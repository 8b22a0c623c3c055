package accounts

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestAuthCache: a remembered login never outlives the password or the
// account it was made with, and never lets a wrong password in, in memory
// and when the users file is changed by another process.
func TestAuthCache(t *testing.T) {
	db := New()
	if err := db.Add(User{Name: "node1"}, "first-password"); err != nil {
		t.Fatal(err)
	}
	login := func(pw string, ok bool) {
		t.Helper()
		_, err := db.Authenticate("node1", pw)
		if ok && err != nil {
			t.Fatalf("login with %q: %v", pw, err)
		}
		if !ok && !errors.Is(err, ErrServerAuth) {
			t.Fatalf("login with %q: %v, want ErrServerAuth", pw, err)
		}
	}
	for range 3 {
		login("first-password", true)
		login("first-password ", false)
		login("", false)
	}
	if err := db.SetPassword("node1", "second-password"); err != nil {
		t.Fatal(err)
	}
	login("first-password", false)
	login("second-password", true)
	if err := db.Remove("node1"); err != nil {
		t.Fatal(err)
	}
	login("second-password", false)
	if err := db.Add(User{Name: "node1"}, "third-password"); err != nil {
		t.Fatal(err)
	}
	login("second-password", false)
	login("third-password", true)

	// Logins at the same moment (an agent's --parallel connections)
	// share one verification, and a wrong password among them fails.
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := "third-password"
			if i%4 == 3 {
				pw = "wrong-password"
			}
			_, errs[i] = db.Authenticate("node1", pw)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%4 == 3) != errors.Is(err, ErrServerAuth) || (i%4 != 3 && err != nil) {
			t.Errorf("concurrent login %d: %v", i, err)
		}
	}

	// A users file changed by another process (syncer user passwd).
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	a, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(User{Name: "node2"}, "old-password-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate("node2", "old-password-x"); err != nil {
		t.Fatal(err)
	}
	b, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetPassword("node2", "new-password-x"); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate("node2", "old-password-x"); !errors.Is(err, ErrServerAuth) {
		t.Fatalf("old password after a change in the file: %v", err)
	}
	if _, err := a.Authenticate("node2", "new-password-x"); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(p)
}
