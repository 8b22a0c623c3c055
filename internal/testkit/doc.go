// Package testkit holds the helpers that the tests of several packages
// share: building the syncer binary, loopback ports, a goroutine-safe
// buffer for a child's output, and launchers for the third-party FTP
// servers (pyftpdlib, vsftpd) the interoperability tests run against.
//
// It is imported by _test.go files only, never by code that ships: it
// builds binaries, starts servers and calls t.Fatal. Every helper takes a
// testing.TB, stops what it starts through t.Cleanup, and skips the test,
// saying why, when a third-party program it needs is not installed (CI
// installs them all).
package testkit
