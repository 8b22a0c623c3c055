//go:build !unix

package testkit

import "testing"

// Vsftpd is a running vsftpd with anonymous access (unix only).
type Vsftpd struct {
	Addr  string
	Port  int
	Pub   string
	Stop  func()
	Start func(t testing.TB)
}

// StartVsftpd skips the test: vsftpd runs on unix systems only.
func StartVsftpd(t testing.TB) *Vsftpd {
	t.Helper()
	t.Skip("vsftpd runs on unix systems only")
	return nil
}
