package main

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestBanLiftedInTheWebAPIIsGoneFromBanList: a ban that serve started is
// listed by `syncer ban list`; an admin lifts it with DELETE
// /api/v1/bans/ADDR, and `syncer ban list` (which reads the bans file)
// no longer shows it, at once.
func TestBanLiftedInTheWebAPIIsGoneFromBanList(t *testing.T) {
	clearSyncerEnv(t)
	const pw = "pw-node1-webban-test"
	c := newServeConfig(t, pw, "")
	bin := testkit.SyncerBinary(t)
	// An admin account: the loopback viewer does not ask for a login
	// today; if it does, the request below carries one.
	add := exec.Command(bin, "user", "add", "root1", "--admin", "--password-stdin", "--state", c.state)
	add.Stdin = strings.NewReader("pw-root1-secret\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	p := startServe(t, c.config, c.http)
	defer p.stop(t)
	const attacker = "127.0.0.9"
	for range 5 {
		if code := ftptest.LoginFrom(t, attacker, c.ftp, "node1", "wrong-password"); code == 230 {
			t.Fatal("wrong password logged in")
		}
	}
	if out, err := exec.Command(bin, "ban", "list", "--state", c.state).CombinedOutput(); err != nil || !strings.Contains(string(out), attacker) {
		t.Fatalf("ban list before: %v\n%s", err, out)
	}
	req, err := http.NewRequest("DELETE", "http://"+c.http+"/api/v1/bans/"+attacker, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("root1", "pw-root1-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE /api/v1/bans/%s: %d %s", attacker, resp.StatusCode, body)
	}
	out, err := exec.Command(bin, "ban", "list", "--state", c.state).CombinedOutput()
	if err != nil || strings.Contains(string(out), attacker) {
		t.Fatalf("ban list after the web lifted the ban: %v\n%s", err, out)
	}
	if code := ftptest.LoginFrom(t, attacker, c.ftp, "node1", pw); code != 230 {
		t.Errorf("login from the unbanned address: %d", code)
	}
}
