//go:build unix

package syncer_test

import (
	"path/filepath"
	"testing"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// startVsftpd runs vsftpd as user nobody with anonymous uploads into a
// temporary directory (see testkit.StartVsftpd). Paths are real ones: it
// does not chroot.
func startVsftpd(t *testing.T) *target {
	t.Helper()
	srv := testkit.StartVsftpd(t)
	return &target{name: "vsftpd", url: "ftp://" + srv.Addr, user: "anonymous", pass: "agent@example.org",
		remoteRoot: filepath.ToSlash(srv.Pub), tree: filepath.Join(srv.Pub, testAgent), byteNames: true}
}
