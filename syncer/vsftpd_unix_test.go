//go:build unix

package syncer_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// startVsftpd runs vsftpd as user nobody with anonymous uploads into a
// temporary directory (it needs root for that; without a system setup it
// cannot run otherwise). Paths are real ones: it does not chroot.
func startVsftpd(t *testing.T) *target {
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
	uid, gid := 65534, 65534
	if u, err := user.Lookup("nobody"); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, pub, empty := filepath.Join(dir, "root"), filepath.Join(dir, "root", "pub"), filepath.Join(dir, "empty")
	for _, d := range []string{root, pub, empty} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(pub, uid, gid); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
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
	if err := os.Chown(conf, uid, gid); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vsftpd: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vsftpd does not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &target{name: "vsftpd", url: "ftp://" + addr, user: "anonymous", pass: "agent@example.org",
		remoteRoot: filepath.ToSlash(pub), tree: filepath.Join(pub, testAgent), byteNames: true}
}
