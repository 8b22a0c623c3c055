package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// DebianPython is Debian's python3, which has python3-pyftpdlib; the
// python3 first on PATH may not.
const DebianPython = "/usr/bin/python3"

// pyftpdScript serves argv[1] to one account, argv[2], on 127.0.0.1 and
// the port argv[3] (any free one when absent), and prints the port on its
// first line.
const pyftpdScript = `
import os, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

root, user = sys.argv[1], sys.argv[2]
port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
cert = os.environ.get("FTP_TEST_CERT", "")
auth = DummyAuthorizer()
# The password comes from the environment, not argv: never in process lists.
auth.add_user(user, os.environ["FTP_TEST_PASSWORD"], root, perm="elradfmwMT")
handler = TLS_FTPHandler if cert else FTPHandler
handler.authorizer = auth
handler.auth_failed_timeout = float(os.environ["FTP_TEST_AUTH_FAILED_TIMEOUT"])
handler.permit_foreign_addresses = False
if os.environ.get("FTP_TEST_BYTE_NAMES"):
    # Decode names with surrogateescape so that file names are bytes end
    # to end, as FTP allows.
    handler.unicode_errors = "surrogateescape"
if cert:
    handler.certfile = cert
    handler.tls_control_required = True
    handler.tls_data_required = True
server = FTPServer(("127.0.0.1", port), handler)
print(server.socket.getsockname()[1], flush=True)
server.serve_forever()
`

// PyftpdConfig configures StartPyftpd.
type PyftpdConfig struct {
	// User and Password are the one account; it may do everything
	// under Root. The password reaches the server through its
	// environment, never its command line.
	User, Password string
	// CertFile, when set, names a PEM file holding certificate and key:
	// the server then speaks explicit TLS only, on control and data
	// connections.
	CertFile string
	// ByteNames makes the server keep file names as bytes
	// (surrogateescape) instead of replacing what is not UTF-8.
	ByteNames bool
	// AuthFailedTimeout is how long the server waits after a refused
	// login.
	AuthFailedTimeout time.Duration
}

// Pyftpd is a running pyftpdlib server.
type Pyftpd struct {
	// Root is the local directory the server serves as "/".
	Root string
	// Port is the loopback port it listens on (127.0.0.1).
	Port int
	// URL is "ftp://127.0.0.1:port", "ftps://" with CertFile.
	URL string
	// Stop kills the server; Start starts it again on the same port.
	Stop  func()
	Start func(t testing.TB)
}

// StartPyftpd starts pyftpdlib serving a new temporary directory and
// stops it when the test ends, logging its stderr if the test failed. It
// skips the test, saying why, when Debian's python3 or its pyftpdlib is
// missing.
func StartPyftpd(t testing.TB, cfg PyftpdConfig) *Pyftpd {
	t.Helper()
	if _, err := os.Stat(DebianPython); err != nil {
		t.Skipf("pyftpdlib test needs %s with python3-pyftpdlib: %v", DebianPython, err)
	}
	if out, err := exec.Command(DebianPython, "-c", "import pyftpdlib").CombinedOutput(); err != nil {
		t.Skipf("python3-pyftpdlib is not installed: %v: %s", err, out)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "pyftpd.py")
	if err := os.WriteFile(script, []byte(pyftpdScript), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "FTP_TEST_PASSWORD="+cfg.Password, "FTP_TEST_CERT="+cfg.CertFile,
		"FTP_TEST_AUTH_FAILED_TIMEOUT="+strconv.FormatFloat(cfg.AuthFailedTimeout.Seconds(), 'f', -1, 64))
	if cfg.ByteNames {
		env = append(env, "FTP_TEST_BYTE_NAMES=1")
	}
	p := newProc(t, "pyftpdlib")
	start := func(t testing.TB, port int) int {
		t.Helper()
		args := []string{script, root, cfg.User}
		if port != 0 {
			args = append(args, strconv.Itoa(port))
		}
		c := exec.Command(DebianPython, args...)
		c.Env = env
		c.Stderr = p.stderr
		stdout, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatalf("start pyftpdlib: %v", err)
		}
		p.set(c)
		return readPort(t, stdout, c)
	}
	port := start(t, 0)
	scheme := "ftp"
	if cfg.CertFile != "" {
		scheme = "ftps"
	}
	return &Pyftpd{Root: root, Port: port, URL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, port), Stop: p.stop, Start: func(t testing.TB) {
		t.Helper()
		WaitPortFree(t, port)
		start(t, port)
	}}
}
