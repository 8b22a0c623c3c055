package ftpfs

import (
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// TestPoolRedialsOldTLSClients: a TLS client older than maxTLSAge is not
// reused (its data connections would stop resuming once the session's
// ticket expires and the server would refuse them); a plain one is.
func TestPoolRedialsOldTLSClients(t *testing.T) {
	for _, useTLS := range []bool{true, false} {
		users := accounts.New()
		if err := users.Add(accounts.User{Name: "node1"}, "pw-pool-test"); err != nil {
			t.Fatal(err)
		}
		srv, err := NewServer(ServerConfig{Root: t.TempDir(), StateDir: t.TempDir(), ListenAddr: "127.0.0.1:0",
			Users: users, TLSSelfSigned: useTLS, LoginFailDelay: -1, BanAfter: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Stop(t.Context()) })
		cfg := ClientConfig{Server: "ftp://" + srv.Addr().String(), User: "node1", Password: "pw-pool-test"}
		if useTLS {
			cfg.Server, cfg.Fingerprint = "ftps://"+srv.Addr().String(), srv.TLSFingerprint()
		}
		pool := NewPool(cfg, 1)
		t.Cleanup(func() { _ = pool.Close() })
		c, err := pool.Get(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		c.dialedAt = time.Now().Add(-maxTLSAge - time.Minute)
		pool.Put(c, nil)
		c2, err := pool.Get(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if reused := c2 == c; reused == useTLS {
			t.Errorf("TLS %v: old client reused: %v", useTLS, reused)
		}
		pool.Put(c2, nil)
	}
}
