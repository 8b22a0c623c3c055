package testkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
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

// Run is what a finished syncer command printed and its exit code.
type Run struct {
	Code           int
	Stdout, Stderr string
}

// RunSyncer runs the syncer command with args to the end, bounded by two
// minutes, with SYNCER_PASSWORD set to password (never on the command
// line). A non-zero exit is reported in Code; a command that cannot run at
// all fails the test.
func RunSyncer(t testing.TB, password string, args ...string) Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, SyncerBinary(t), args...)
	cmd.Env = append(os.Environ(), "SYNCER_PASSWORD="+password)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Run{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run syncer %v: %v", args, err)
	}
	return r
}
