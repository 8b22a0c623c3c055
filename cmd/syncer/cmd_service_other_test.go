//go:build !windows

package main

import (
	"strings"
	"testing"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestServiceWindowsOnly: off Windows every `syncer service` form exits 2
// with one line that says the command is Windows-only and what to use
// instead. (The command itself runs under wine: internal/winetest.)
func TestServiceWindowsOnly(t *testing.T) {
	for _, args := range [][]string{
		{"service"},
		{"service", "status"},
		{"service", "install", "--config", "agent.yaml"},
		{"service", "start", "--name", "other"},
		{"service", "stop"},
		{"service", "uninstall"},
	} {
		r := testkit.RunSyncer(t, "", args...)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if r.Code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], "Windows only") || !strings.Contains(lines[0], "systemd") {
			t.Errorf("syncer %v: exit %d, stderr %q; want %d and one line saying Windows only", args, r.Code, r.Stderr, exitUsage)
		}
	}
}
