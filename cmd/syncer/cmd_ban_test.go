package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/internal/defender"
	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestBanCommandInProcess: list and remove read and edit the bans file;
// usage errors exit 2, lifting a ban that is not there exits 1.
func TestBanCommandInProcess(t *testing.T) {
	clearSyncerEnv(t)
	state := t.TempDir()
	d, err := defender.New(defender.Config{BanAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, err := defender.KeepFile(d, filepath.Join(state, defender.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d.Failed("10.0.0.1:2000", "node1", "ftp")
	d.Failed("2001:db8::7", "", "http")

	code, out, errOut := runUserInProcess(t, "", "ban", "list", "--state", state)
	if code != 0 || !strings.Contains(out, "10.0.0.1") || !strings.Contains(out, "2001:db8::7") {
		t.Fatalf("ban list: %d %q %q", code, out, errOut)
	}
	code, out, _ = runUserInProcess(t, "", "ban", "list", "--json", "--state", state)
	var bans []defender.Ban
	if code != 0 || json.Unmarshal([]byte(out), &bans) != nil || len(bans) != 2 {
		t.Fatalf("ban list --json: %d %q", code, out)
	}
	if code, out, errOut := runUserInProcess(t, "", "ban", "remove", "10.0.0.1", "--state", state); code != 0 || !strings.Contains(out, "lifted") {
		t.Fatalf("ban remove: %d %q %q", code, out, errOut)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ban", "remove", "10.0.0.1", "--state", state}, exitPartial, "no ban"},
		{[]string{"ban", "remove", "node17", "--state", state}, exitUsage, "not an IP address"},
		{[]string{"ban", "remove", "--state", state}, exitUsage, "one address"},
		{[]string{"ban", "list"}, exitUsage, "--state is required"},
		{[]string{"ban"}, exitUsage, "missing subcommand"},
		{[]string{"ban", "lift"}, exitUsage, "unknown subcommand"},
	}
	for _, tt := range tests {
		code, _, errOut := runUserInProcess(t, "", tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d %q, want %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
	bans, err = defender.ReadFile(filepath.Join(state, defender.FileName))
	if err != nil || len(bans) != 1 || bans[0].Addr != "2001:db8::7" {
		t.Fatalf("bans left: %+v %v", bans, err)
	}
}

// TestBanCommandLiftsServeBan: a running serve records its ban in the
// state directory, `syncer ban list` shows it, and `syncer ban remove`
// lets the address log in again without a restart.
func TestBanCommandLiftsServeBan(t *testing.T) {
	clearSyncerEnv(t)
	const pw = "pw-node1-ban-test"
	c := newServeConfig(t, pw, "")
	p := startServe(t, c.config, c.http)
	defer p.stop(t)
	const attacker = "127.0.0.9"
	for range 5 {
		if code := ftptest.LoginFrom(t, attacker, c.ftp, "node1", "wrong-password"); code == 230 {
			t.Fatal("wrong password logged in")
		}
	}
	if code := ftptest.LoginFrom(t, attacker, c.ftp, "node1", pw); code == 230 {
		t.Fatal("banned address logged in")
	}
	bin := testkit.SyncerBinary(t)
	out, err := exec.Command(bin, "ban", "list", "--state", c.state).CombinedOutput()
	if err != nil || !strings.Contains(string(out), attacker) {
		t.Fatalf("ban list: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "ban", "remove", attacker, "--state", c.state).CombinedOutput(); err != nil {
		t.Fatalf("ban remove: %v\n%s", err, out)
	}
	waitFor(t, "the lifted ban to reach serve", 15*time.Second, func() bool {
		return ftptest.LoginFrom(t, attacker, c.ftp, "node1", pw) == 230
	})
}
