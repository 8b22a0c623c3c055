package ftpfs_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestInteropCurlFTPSDataHijack is finding 4 with curl, as issue 14
// measured it (12 of 40 uploads archived with the attacker's bytes): 40
// uploads with --ssl-reqd against a server that requires TLS, while a
// stranger on the same address polls the single passive port and
// handshakes with every connection it gets. Every upload succeeds
// byte-identical, nothing of the attacker's is archived: curl resumes the
// control connection's session on its data connections (TLS 1.3; see
// TestInteropCurlTLS12 for 1.2), the stranger cannot.
func TestInteropCurlFTPSDataHijack(t *testing.T) {
	curl := needTool(t, "curl")
	const uploads = 40
	port, release := reservePort(t)
	var logs testkit.LockedBuffer
	srv := ftptest.NewServer(t, "",
		ftptest.WithAccount(accounts.User{Name: "node1"}, interopPassword),
		ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) {
			cfg.TLSSelfSigned, cfg.TLSRequired = true, true
			cfg.PassivePorts = ftpfs.PortRange{Lo: port, Hi: port}
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		}))
	release()
	host, ctl, _ := net.SplitHostPort(srv.Addr)
	rc := netrc(t, host, "node1")
	tmp := t.TempDir()
	h := startHijacker(t, port)
	want := make([][]byte, uploads)
	failed := 0
	for i := range uploads {
		want[i] = ftptest.RandomBytes(t, 32<<10+i)
		src := writeTemp(t, tmp, fmt.Sprintf("f%02d.log", i), want[i])
		cmd := exec.Command(curl, "-sS", "--netrc-file", rc, "--max-time", "30", "--ssl-reqd", "-k",
			"-T", src, fmt.Sprintf("ftp://%s:%s/f%02d.log", host, ctl, i))
		if out, err := cmd.CombinedOutput(); err != nil {
			failed++
			t.Logf("upload %d: %v: %s", i, err, bytes.TrimSpace(out))
		}
	}
	h.close()
	if failed > 0 {
		t.Errorf("%d of %d uploads failed", failed, uploads)
	}
	if bad := archivedWithMark(t, srv.Root); len(bad) > 0 {
		t.Errorf("%d of %d uploads archived with the attacker's bytes: %v", len(bad), uploads, bad)
	}
	for i := range uploads {
		got, err := os.ReadFile(filepath.Join(srv.Root, "node1", fmt.Sprintf("f%02d.log", i)))
		if err != nil || !bytes.Equal(got, want[i]) {
			t.Errorf("f%02d.log archived differs (%d bytes, %v)", i, len(got), err)
		}
	}
	var versions []string
	des, _ := os.ReadDir(filepath.Join(srv.Root, "node1"))
	for _, de := range des {
		if strings.Contains(de.Name(), ".superseded-") {
			versions = append(versions, de.Name())
		}
	}
	if len(versions) > 0 {
		t.Errorf("versions appeared: %v", versions)
	}
	t.Logf("the server refused %d of the stranger's connections; the stranger completed %d handshakes, read %d bytes",
		strings.Count(logs.String(), "TLS handshake failed"), h.got.Load(), h.readB.Load())
	if h.got.Load() > 0 || h.readB.Load() > 0 {
		t.Errorf("the stranger completed %d handshakes", h.got.Load())
	}
}

// TestInteropCurlTLS12: curl with TLS 1.2 cannot resume sessions with our
// server (with OpenSSL it turns TLS 1.2 session tickets off and resumes by
// session ID, which Go's crypto/tls does not serve), so by default its
// transfers are refused and nothing is stored; with
// TLSAllowDataWithoutReuse they work. With TLS 1.3, curl's default here,
// it resumes (TestInteropCurlFTPSDataHijack).
func TestInteropCurlTLS12(t *testing.T) {
	curl := needTool(t, "curl")
	for _, relaxed := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow-without-reuse=%v", relaxed), func(t *testing.T) {
			srv := ftptest.NewServer(t, "",
				ftptest.WithAccount(accounts.User{Name: "node1"}, interopPassword),
				ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) {
					cfg.TLSSelfSigned, cfg.TLSRequired = true, true
					cfg.TLSAllowDataWithoutReuse = relaxed
					cfg.DataConnTimeout = 2 * time.Second
				}))
			host, ctl, _ := net.SplitHostPort(srv.Addr)
			data := ftptest.RandomBytes(t, 10000)
			src := writeTemp(t, t.TempDir(), "a.log", data)
			out := runTool(t, relaxed, curl, "-sS", "--netrc-file", netrc(t, host, "node1"), "--max-time", "20",
				"--ssl-reqd", "-k", "--tls-max", "1.2", "-T", src, fmt.Sprintf("ftp://%s:%s/a.log", host, ctl))
			if relaxed {
				sameFile(t, filepath.Join(srv.Root, "node1", "a.log"), data)
				return
			}
			t.Logf("refused: %s", strings.TrimSpace(out))
			if _, err := os.Stat(filepath.Join(srv.Root, "node1", "a.log")); err == nil {
				t.Errorf("the refused upload created its file")
			}
		})
	}
}
