package ftpfs_test

// Interoperability: real third-party FTP clients (curl, lftp, Python's
// ftplib) against our server, started in process on a loopback port. Each
// test skips, saying why, when its client is not installed; CI installs them
// all (.ci/run).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
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
)

// interopServer is a running server with one agent account "node1" and one
// admin account "ops", both with password "s3cret-pw".
type interopServer struct {
	root string
	host string
	port string
}

const interopPassword = "s3cret-pw"

func startInteropServer(t *testing.T, tlsMode string) *interopServer {
	t.Helper()
	srv := ftptest.NewServer(t, "",
		ftptest.WithAccount(accounts.User{Name: "node1"}, interopPassword),
		ftptest.WithAccount(accounts.User{Name: "ops", Admin: true}, interopPassword),
		ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) {
			// The server's own login delay and bans, as a real
			// deployment has them, not ftptest's none.
			cfg.LoginFailDelay, cfg.BanAfter = 0, 0
			switch tlsMode {
			case "tls":
				cfg.TLSSelfSigned = true
			case "tls-required":
				cfg.TLSSelfSigned = true
				cfg.TLSRequired = true
			case "tls-without-reuse":
				cfg.TLSSelfSigned = true
				cfg.TLSAllowDataWithoutReuse = true
			}
		}))
	host, port, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		t.Fatalf("server addr: %v", err)
	}
	return &interopServer{root: srv.Root, host: host, port: port}
}

// needTool skips the test when a third-party client is missing.
func needTool(t *testing.T, path string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	if err != nil {
		t.Skipf("%s is not installed (CI installs it via .ci/run): %v", path, err)
	}
	return p
}

// runTool runs a client with a deadline and returns its combined output.
func runTool(t *testing.T, want bool, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user rc files
	out, err := cmd.CombinedOutput()
	if want && err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	if !want && err == nil {
		t.Fatalf("%s %s succeeded, want failure\n%s", name, strings.Join(args, " "), out)
	}
	return string(out)
}

func writeTemp(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameFile fails unless the archived file has exactly want's bytes.
func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read archived file: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("%s: %d bytes, sha256 %x; want %d bytes, sha256 %x", path, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

// netrc keeps the password out of curl's argument list.
func netrc(t *testing.T, host, user string) string {
	t.Helper()
	return writeTemp(t, t.TempDir(), "netrc", []byte(fmt.Sprintf("machine %s login %s password %s\n", host, user, interopPassword)))
}

func TestInteropCurl(t *testing.T) {
	curl := needTool(t, "curl")
	s := startInteropServer(t, "tls")
	base := fmt.Sprintf("ftp://%s:%s", s.host, s.port)
	rc := netrc(t, s.host, "node1")
	tmp := t.TempDir()
	// curl's URL paths are relative to the login directory, which for an
	// agent account is its home /node1; %2F makes a path absolute.
	common := []string{"-sS", "--netrc-file", rc, "--max-time", "30"}

	// Upload into a new directory.
	data := ftptest.RandomBytes(t, 3<<20)
	src := writeTemp(t, tmp, "a.log", data)
	runTool(t, true, curl, append(common, "--ftp-create-dirs", "-T", src, base+"/app/a.log")...)
	sameFile(t, filepath.Join(s.root, "node1", "app", "a.log"), data)

	// Resume: the archive holds the first 1 MiB of a grown file; curl -C -
	// asks SIZE and sends only the rest.
	grown := append(append([]byte{}, data...), ftptest.RandomBytes(t, 1<<20)...)
	src2 := writeTemp(t, tmp, "b.log", grown)
	if err := os.WriteFile(filepath.Join(s.root, "node1", "app", "b.log"), grown[:1<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, true, curl, append(common, "-C", "-", "-T", src2, base+"/app/b.log")...)
	sameFile(t, filepath.Join(s.root, "node1", "app", "b.log"), grown)

	// List and download.
	list := runTool(t, true, curl, append(common, "-l", base+"/app/")...)
	for _, name := range []string{"a.log", "b.log"} {
		if !strings.Contains(list, name) {
			t.Errorf("NLST lacks %s:\n%s", name, list)
		}
	}
	dl := filepath.Join(tmp, "dl.log")
	runTool(t, true, curl, append(common, "-o", dl, base+"/app/a.log")...)
	got, _ := os.ReadFile(dl)
	if !bytes.Equal(got, data) {
		t.Errorf("download differs: %d bytes, want %d", len(got), len(data))
	}

	// The confined account cannot write into another agent's tree.
	out := runTool(t, false, curl, append(common, "--ftp-method", "nocwd", "-T", src, base+"/%2Fnode2/x.log")...)
	if !strings.Contains(out, "55") {
		t.Errorf("upload outside the home failed without a 55x permission reply: %s", out)
	}
	if _, err := os.Stat(filepath.Join(s.root, "node2", "x.log")); err == nil {
		t.Errorf("node1 wrote into /node2/")
	}

	// Explicit TLS on control and data connections (self-signed: -k).
	tlsData := ftptest.RandomBytes(t, 1<<20)
	src3 := writeTemp(t, tmp, "tls.log", tlsData)
	runTool(t, true, curl, append(common, "--ssl-reqd", "-k", "--ftp-method", "singlecwd", "--ftp-create-dirs", "-T", src3, base+"/%2Fnode1/tls/c.log")...)
	sameFile(t, filepath.Join(s.root, "node1", "tls", "c.log"), tlsData)
}

func TestInteropCurlTLSRequired(t *testing.T) {
	curl := needTool(t, "curl")
	s := startInteropServer(t, "tls-required")
	base := fmt.Sprintf("ftp://%s:%s", s.host, s.port)
	rc := netrc(t, s.host, "node1")
	src := writeTemp(t, t.TempDir(), "a.log", []byte("line 1\n"))
	// Without TLS the login is refused and nothing is stored.
	runTool(t, false, curl, "-sS", "--netrc-file", rc, "--max-time", "20", "-T", src, base+"/a.log")
	if _, err := os.Stat(filepath.Join(s.root, "node1", "a.log")); err == nil {
		t.Fatalf("plain-text upload stored despite TLS required")
	}
	runTool(t, true, curl, "-sS", "--netrc-file", rc, "--max-time", "20", "--ssl-reqd", "-k", "-T", src, base+"/a.log")
	sameFile(t, filepath.Join(s.root, "node1", "a.log"), []byte("line 1\n"))
}

// TestInteropLftp runs lftp (GnuTLS) plain and over TLS 1.3 and 1.2; its
// data connections resume the control connection's TLS session, as the
// server requires, with both.
func TestInteropLftp(t *testing.T) {
	lftp := needTool(t, "lftp")
	for _, mode := range []string{"plain", "tls", "tls1.2"} {
		t.Run(mode, func(t *testing.T) {
			s := startInteropServer(t, strings.TrimSuffix(mode, "1.2"))
			tmp := t.TempDir()
			tree := map[string][]byte{
				"app/2026-11-24.log":       ftptest.RandomBytes(t, 700<<10),
				"app/sub/worker.log":       ftptest.RandomBytes(t, 5000),
				"sys/kern.log":             []byte("Nov 24 02:00:00 kernel: ok\n"),
				"sys/deep/er/still/x.log":  ftptest.RandomBytes(t, 1<<20),
				"sys/deep/er/still/y.log":  nil,
				"app/sub/spaces in it.log": []byte("spaced\n"),
			}
			for name, data := range tree {
				writeTemp(t, filepath.Join(tmp, "src"), name, data)
			}
			settings := "set net:max-retries 1; set net:timeout 10; set cmd:fail-exit yes; "
			if mode != "plain" {
				settings += "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no; "
			}
			if mode == "tls1.2" {
				settings += `set ssl:priority "NORMAL:-VERS-TLS1.3"; `
			}
			if mode == "plain" {
				settings += "set ftp:ssl-allow no; "
			}
			script := settings + fmt.Sprintf("open -u node1,%s -p %s %s; mirror -R -P 4 %s /node1/mirror; bye",
				interopPassword, s.port, s.host, filepath.Join(tmp, "src"))
			runTool(t, true, lftp, "-c", script)
			for name, data := range tree {
				sameFile(t, filepath.Join(s.root, "node1", "mirror", name), data)
			}

			// put -c continues an interrupted upload from the server's size.
			full := ftptest.RandomBytes(t, 2<<20)
			src := writeTemp(t, tmp, "big.log", full)
			if err := os.WriteFile(filepath.Join(s.root, "node1", "mirror", "big.log"), full[:777777], 0o644); err != nil {
				t.Fatal(err)
			}
			script = settings + fmt.Sprintf("open -u node1,%s -p %s %s; cd /node1/mirror; put -c %s; bye",
				interopPassword, s.port, s.host, src)
			runTool(t, true, lftp, "-c", script)
			sameFile(t, filepath.Join(s.root, "node1", "mirror", "big.log"), full)

			// Reading back and deleting: the agent can read, cannot delete.
			dl := filepath.Join(tmp, "back.log")
			script = settings + fmt.Sprintf("open -u node1,%s -p %s %s; get /node1/mirror/big.log -o %s; bye",
				interopPassword, s.port, s.host, dl)
			runTool(t, true, lftp, "-c", script)
			got, _ := os.ReadFile(dl)
			if !bytes.Equal(got, full) {
				t.Errorf("lftp get: %d bytes differ from the %d uploaded", len(got), len(full))
			}
			script = settings + fmt.Sprintf("open -u node1,%s -p %s %s; rm /node1/mirror/big.log; bye",
				interopPassword, s.port, s.host)
			runTool(t, false, lftp, "-c", script)
			sameFile(t, filepath.Join(s.root, "node1", "mirror", "big.log"), full)
		})
	}
}

// ftplibScript drives Python's ftplib: upload, resume with REST, list,
// download, TLS, and the agent account's limits.
const ftplibScript = `
import ftplib, hashlib, io, sys
host, port, user, pw, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
class ReuseFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS
    session, as servers that require it (vsftpd's require_ssl_reuse, ours)
    want; stock ftplib starts a new session on each."""
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
if mode != "plain":
    import ssl
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    f = (ReuseFTP_TLS if mode == "tls" else ftplib.FTP_TLS)(context=ctx, timeout=20)
else:
    f = ftplib.FTP(timeout=20)
f.connect(host, port)
f.login(user, pw)
if mode != "plain":
    f.prot_p()
if mode == "tls-stock-refused":
    try:
        f.storbinary("STOR /node1/refused.log", io.BytesIO(b"x" * 100000))
    except (ftplib.Error, OSError) as e:
        print("REFUSED", e)
        sys.exit(0)
    sys.exit("a data connection that did not resume the session was accepted")
data = bytes(range(256)) * 8192  # 2 MiB
f.mkd("/node1/py")
f.storbinary("STOR /node1/py/a.log", io.BytesIO(data))
assert f.size("/node1/py/a.log") == len(data), "size after STOR"
# resume: first half, then REST + STOR the rest
f.storbinary("STOR /node1/py/b.log", io.BytesIO(data[:1000000]))
off = f.size("/node1/py/b.log")
f.storbinary("STOR /node1/py/b.log", io.BytesIO(data[off:]), rest=off)
assert f.size("/node1/py/b.log") == len(data), "size after resume"
names = f.nlst("/node1/py")
assert any(n.endswith("a.log") for n in names) and any(n.endswith("b.log") for n in names), names
buf = io.BytesIO()
f.retrbinary("RETR /node1/py/b.log", buf.write)
assert hashlib.sha256(buf.getvalue()).digest() == hashlib.sha256(data).digest(), "download differs"
# the agent account may not delete, rename, or write outside its home
for what, call in [("DELE", lambda: f.delete("/node1/py/a.log")),
                   ("RNFR", lambda: f.rename("/node1/py/a.log", "/node1/py/z.log")),
                   ("STOR outside", lambda: f.storbinary("STOR /node2/x.log", io.BytesIO(b"x"))),
                   ("MKD outside", lambda: f.mkd("/node2")),
                   ("LIST /", lambda: f.retrlines("LIST /", lambda l: None))]:
    try:
        call()
    except ftplib.error_perm:
        continue
    except ftplib.error_temp as e:
        # ftpserverlib answers every failed LIST with 450; it is still refused.
        if what.startswith("LIST") and "permission denied" in str(e):
            continue
        raise
    sys.exit("%s was allowed" % what)
f.quit()
print("OK")
`

// TestInteropPythonFtplib runs Python's ftplib: plain; over TLS with the
// usual subclass whose data connections resume the control connection's
// session; stock FTP_TLS, which does not resume, against a server with
// TLSAllowDataWithoutReuse; and stock FTP_TLS refused by the default.
func TestInteropPythonFtplib(t *testing.T) {
	py := needTool(t, "/usr/bin/python3")
	script := writeTemp(t, t.TempDir(), "client.py", []byte(ftplibScript))
	t.Run("tls-stock-refused", func(t *testing.T) {
		s := startInteropServer(t, "tls")
		out := runTool(t, true, py, script, s.host, s.port, "node1", interopPassword, "tls-stock-refused")
		if !strings.Contains(out, "REFUSED") {
			t.Fatalf("ftplib script:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(s.root, "node1", "refused.log")); err == nil {
			t.Errorf("the refused upload created its file")
		}
	})
	for _, mode := range []string{"plain", "tls", "tls-stock"} {
		t.Run(mode, func(t *testing.T) {
			server := mode
			if mode == "tls-stock" {
				server = "tls-without-reuse"
			}
			s := startInteropServer(t, server)
			out := runTool(t, true, py, script, s.host, s.port, "node1", interopPassword, mode)
			if !strings.Contains(out, "OK") {
				t.Fatalf("ftplib script did not finish:\n%s", out)
			}
			data := bytes.Repeat(func() []byte {
				b := make([]byte, 256)
				for i := range b {
					b[i] = byte(i)
				}
				return b
			}(), 8192)
			sameFile(t, filepath.Join(s.root, "node1", "py", "a.log"), data)
			sameFile(t, filepath.Join(s.root, "node1", "py", "b.log"), data)
		})
	}
}
