package ftptest_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
)

func dial(t *testing.T, cfg ftpfs.ClientConfig) (*ftpfs.Client, error) {
	t.Helper()
	cfg.DialTimeout, cfg.IOTimeout = 5*time.Second, 5*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ftpfs.Dial(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func TestNewServerDefaultAccount(t *testing.T) {
	s := ftptest.NewServer(t, "")
	if s.User != ftptest.DefaultUser || s.Password == "" || !strings.HasPrefix(s.URL, "ftp://127.0.0.1:") || s.Fingerprint != "" {
		t.Fatalf("server = %+v, want %s with a password on ftp://127.0.0.1", s, ftptest.DefaultUser)
	}
	tg := s.Target()
	if _, err := dial(t, tg.Config); err != nil {
		t.Fatalf("login as %s: %v", s.User, err)
	}
	if _, err := dial(t, tg.WrongLogin); !errors.Is(err, ftpfs.ErrClientLogin) {
		t.Fatalf("wrong login: got %v, want ErrClientLogin", err)
	}
	if tg.Dir != "/"+ftptest.DefaultUser || tg.Local("/node1/a.log") != filepath.Join(s.Root, "node1", "a.log") {
		t.Errorf("target Dir %q, Local %q", tg.Dir, tg.Local("/node1/a.log"))
	}
}

func TestNewServerAccountsAndConfig(t *testing.T) {
	var uploads atomic.Int32
	s := ftptest.NewServer(t, t.TempDir(),
		ftptest.WithAccount(accounts.User{Name: "a1"}, "pw-a1-secret"),
		ftptest.WithAccount(accounts.User{Name: "ops", Admin: true}, "pw-ops-secret"),
		ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) { cfg.OnUpload = func(activity.UploadEvent) { uploads.Add(1) } }))
	if s.User != "a1" || s.Password != "pw-a1-secret" {
		t.Errorf("first account %s/%s, want a1", s.User, s.Password)
	}
	if _, ok := s.Users.Lookup(ftptest.DefaultUser); ok {
		t.Errorf("the default account exists beside the given ones")
	}
	c, err := dial(t, ftpfs.ClientConfig{Server: s.URL, User: "ops", Password: "pw-ops-secret"})
	if err != nil {
		t.Fatalf("login as ops: %v", err)
	}
	ctx := context.Background()
	if _, err := c.Store(ctx, "/x.log", strings.NewReader("x"), 0); err != nil {
		t.Fatalf("admin store at the root: %v", err)
	}
	if uploads.Load() == 0 {
		t.Error("the configured OnUpload saw no upload")
	}
}

func TestNewServerOwnUsers(t *testing.T) {
	db := accounts.New()
	if err := db.Add(accounts.User{Name: "mine"}, "pw-mine-secret"); err != nil {
		t.Fatal(err)
	}
	s := ftptest.NewServer(t, "", ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) { cfg.Users = db }))
	if s.Users != db || s.User != "" {
		t.Fatalf("Users %p (want %p), User %q (want none)", s.Users, db, s.User)
	}
	if _, err := dial(t, ftpfs.ClientConfig{Server: s.URL, User: "mine", Password: "pw-mine-secret"}); err != nil {
		t.Fatalf("login as mine: %v", err)
	}
}

func TestServerCloseStart(t *testing.T) {
	s := ftptest.NewServer(t, "", ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) { cfg.TLSSelfSigned = true }))
	if !strings.HasPrefix(s.URL, "ftps://") || s.Fingerprint == "" {
		t.Fatalf("TLS server URL %s, fingerprint %q", s.URL, s.Fingerprint)
	}
	addr, fp := s.Addr, s.Fingerprint
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil || s.FTP() != nil {
		t.Fatalf("second Close: %v, FTP() %v", err, s.FTP())
	}
	if _, err := dial(t, s.Target().Config); !errors.Is(err, ftpfs.ErrUnreachable) {
		t.Fatalf("dial a closed server: got %v, want ErrUnreachable", err)
	}
	s.Start(t)
	if s.Addr != addr || s.FTP() == nil || s.FTP().Addr().String() != addr || s.FTP().TLSFingerprint() != fp {
		t.Fatalf("restarted on %v with %q, want %s with %q", s.FTP().Addr(), s.FTP().TLSFingerprint(), addr, fp)
	}
	if _, err := dial(t, s.Target().Config); err != nil {
		t.Fatalf("login after Start: %v", err)
	}
}
