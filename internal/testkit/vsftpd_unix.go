//go:build unix

package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// StartVsftpd starts vsftpd on a free loopback port with anonymous
// access, uploads allowed in a temporary directory, and stops it when the
// test ends, logging its output if the test failed. It touches nothing
// outside its temporary directory. It skips the test, saying why, when
// vsftpd is not installed or the test does not run as root.
//
// vsftpd needs a system setup to run normally; as root the test instead
// starts it with run_as_launching_user, where it neither chroots nor drops
// privileges, so anonymous users could write wherever the launching user
// can: that is why it is launched as "nobody", who may write only in the
// test's upload directory.
func StartVsftpd(t testing.TB) *Vsftpd {
	t.Helper()
	bin, err := exec.LookPath("vsftpd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/vsftpd"); serr != nil {
			t.Skip("vsftpd is not installed (Debian package vsftpd)")
		}
		bin = "/usr/sbin/vsftpd"
	}
	if os.Geteuid() != 0 {
		t.Skip("the vsftpd test needs root to start vsftpd as user nobody without a system configuration")
	}
	uid, gid := uint32(65534), uint32(65534)
	if u, err := user.Lookup("nobody"); err == nil {
		if n, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			uid = uint32(n)
		}
		if n, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
			gid = uint32(n)
		}
	}
	dir := t.TempDir()
	// nobody must reach the directory: open the temporary directories
	// for traversal (not writing).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "root")
	pub := filepath.Join(root, "pub")
	empty := filepath.Join(dir, "empty")
	for _, d := range []string{root, pub, empty} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Only the upload directory belongs to nobody (see above).
	if err := os.Chown(pub, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	conf := filepath.Join(dir, "vsftpd.conf")
	cfg := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
run_as_launching_user=YES
seccomp_sandbox=NO
anonymous_enable=YES
local_enable=NO
no_anon_password=YES
write_enable=YES
anon_root=%s
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_world_readable_only=NO
anon_umask=022
pasv_enable=YES
pasv_address=127.0.0.1
connect_from_port_20=NO
secure_chroot_dir=%s
delay_failed_login=0
xferlog_enable=NO
syslog_enable=NO
`, port, root, empty)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// vsftpd insists that its configuration belongs to the user it runs as.
	if err := os.Chown(conf, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	p := newProc(t, "vsftpd")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	start := func(t testing.TB) {
		t.Helper()
		c := exec.Command(bin, conf)
		c.Stdout, c.Stderr = p.stderr, p.stderr
		// Drop to nobody: as root without a chroot, vsftpd would let
		// anonymous write wherever root can.
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		if err := c.Start(); err != nil {
			t.Fatalf("start vsftpd: %v", err)
		}
		p.set(c)
		WaitListening(t, addr)
	}
	start(t)
	return &Vsftpd{Addr: addr, Port: port, Pub: pub, Stop: p.stop, Start: func(t testing.TB) {
		t.Helper()
		WaitPortFree(t, port)
		start(t)
	}}
}
