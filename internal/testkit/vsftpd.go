package testkit

import "testing"

// Vsftpd is a running vsftpd with anonymous access (StartVsftpd).
type Vsftpd struct {
	// Addr is the loopback address it listens on; Port its port.
	Addr string
	Port int
	// Pub is the directory anonymous may write in. vsftpd does not
	// chroot here, so this local path is also the FTP path.
	Pub string
	// Stop kills the server; Start starts it again on the same port.
	Stop  func()
	Start func(t testing.TB)
}
