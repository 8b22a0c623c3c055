package syncer

import (
	"os"
	"path/filepath"
	"runtime"
)

// DefaultStateDir is the agent's state directory when --state is not
// given: $XDG_STATE_HOME/syncer, else ~/.local/state/syncer on Linux and
// other Unix systems; the user config directory plus "syncer" on macOS
// (~/Library/Application Support/syncer); the per-machine
// %ProgramData%\syncer on Windows (%AppData%\syncer if ProgramData is
// unset). It returns "" if none can be determined (no home directory).
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
	if runtime.GOOS == "windows" {
		// Per-machine state: the agent runs as a service (LocalSystem),
		// whose roaming %AppData% is not where an operator looks and
		// differs from the one of the account that installed it.
		if d := os.Getenv("ProgramData"); filepath.IsAbs(d) {
			return filepath.Join(d, "syncer")
		}
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "syncer")
	}
	return ""
}
