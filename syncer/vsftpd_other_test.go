//go:build !unix

package syncer_test

import "testing"

func startVsftpd(t *testing.T) *target {
	t.Helper()
	t.Skip("vsftpd runs on Unix only")
	return nil
}
