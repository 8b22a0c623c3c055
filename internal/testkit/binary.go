package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// syncerPkg is the import path of the syncer command.
const syncerPkg = "github.com/syncer-dev/syncer/cmd/syncer"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// SyncerBinary builds the syncer command once per test process (go build,
// without -race) into a temporary directory and returns the binary's
// path; a failed build fails every test that asks for it. The test's
// working directory must lie inside the module, as a package directory
// does. TestMain calls Cleanup to remove the directory.
func SyncerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "syncer-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "syncer")
		out, err := exec.Command("go", "build", "-o", binPath, syncerPkg).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Cleanup removes what SyncerBinary built. Call it from TestMain after
// m.Run: t.Cleanup cannot, as the binary outlives any one test.
func Cleanup() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}
