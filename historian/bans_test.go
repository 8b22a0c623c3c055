package historian

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/internal/defender"
)

// TestHistorianBansOutliveARestart: a ban the FTP server starts is in the
// state directory's bans file and in force again after a restart; a ban
// lifted in the file (as `syncer ban remove` does) is lifted on SIGHUP.
func TestHistorianBansOutliveARestart(t *testing.T) {
	base := t.TempDir()
	cfg := testConfig(t, base)
	// A new Defender for each run, as a restarted process has; no delay
	// after a failure, to keep the test short.
	newDefender := func() *defender.Defender {
		d, err := defender.New(defender.Config{FailDelay: -1})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cfg.Defender = newDefender()
	r := start(t, cfg)
	addr := r.h.FTPAddr().String()
	for range defender.DefaultBanAfter {
		ftptest.LoginFrom(t, "127.0.0.7", addr, "node1", "wrong-password")
	}
	if _, ok := r.h.Defender().Banned("127.0.0.7"); !ok {
		t.Fatal("127.0.0.7 not banned after failed logins")
	}
	r.stop(t)

	reload := make(chan os.Signal, 1)
	cfg.Reload = reload
	cfg.Defender = newDefender()
	r = start(t, cfg)
	if _, ok := r.h.Defender().Banned("127.0.0.7"); !ok {
		t.Fatal("the ban did not outlive the restart")
	}
	if code := ftptest.LoginFrom(t, "127.0.0.7", r.h.FTPAddr().String(), "node1", testPassword); code == 230 {
		t.Fatal("a banned address logged in after the restart")
	}
	if _, err := defender.RemoveFromFile(filepath.Join(cfg.State, defender.FileName), "127.0.0.7"); err != nil {
		t.Fatal(err)
	}
	reload <- syscall.SIGHUP
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := r.h.Defender().Banned("127.0.0.7"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ban lifted in the file is still in force")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := ftptest.LoginFrom(t, "127.0.0.7", r.h.FTPAddr().String(), "node1", testPassword); code != 230 {
		t.Fatalf("login after the ban was lifted: %d", code)
	}
	r.stop(t)
}
