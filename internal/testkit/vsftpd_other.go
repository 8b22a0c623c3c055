//go:build !unix

package testkit

import "testing"

// StartVsftpd skips the test: vsftpd runs on unix systems only.
func StartVsftpd(t testing.TB) *Vsftpd {
	t.Helper()
	t.Skip("vsftpd runs on unix systems only")
	return nil
}
