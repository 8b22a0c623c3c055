//go:build !windows

package main

// errServiceWindowsOnly is every `syncer service` action off Windows.
func errServiceWindowsOnly() error {
	return usageErrorf("syncer service: Windows only; on Linux run syncer watch from systemd (scripts/systemd/syncer-watch.service)")
}

func serviceInstall(serviceOptions) error   { return errServiceWindowsOnly() }
func serviceUninstall(serviceOptions) error { return errServiceWindowsOnly() }
func serviceStart(serviceOptions) error     { return errServiceWindowsOnly() }
func serviceStop(serviceOptions) error      { return errServiceWindowsOnly() }
func serviceStatus(serviceOptions) error    { return errServiceWindowsOnly() }
func serviceRun(serviceOptions) error       { return errServiceWindowsOnly() }

// serviceAvailable reports that services are Windows-only.
func serviceAvailable() error { return errServiceWindowsOnly() }
