package syncer

import (
	"os"
	"path/filepath"
	"runtime"
)

// DefaultStateDir is the agent's per-user state directory when --state is
// not given: $XDG_STATE_HOME/syncer, else ~/.local/state/syncer on Linux
// and other Unix systems; the user config directory plus "syncer" on macOS
// (~/Library/Application Support/syncer) and Windows (%AppData%\syncer).
// It returns "" if none can be determined (no home directory).
func DefaultStateDir() string {
	if runtime.GOOS != "windows" && runtime.GOOS != "darwin" {
		if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
			return filepath.Join(d, "syncer")
		}
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, ".local", "state", "syncer")
		}
		return ""
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "syncer")
	}
	return ""
}
