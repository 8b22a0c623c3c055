package testkit

import (
	"os"
	"os/exec"
	"testing"
)

// RequireAllEnv names the environment variable that .ci/run sets: with it,
// a test that cannot run here (a program missing, not root, no /dev/fuse)
// fails instead of skipping, so CI never counts a skipped test as passed.
const RequireAllEnv = "SYNCER_TEST_REQUIRE_ALL"

// Unavailable skips t, saying why, when the test cannot run on this
// machine; under RequireAllEnv=1 (CI) it fails t with the same words.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(RequireAllEnv) == "1" {
		t.Fatalf("cannot run here, and %s=1 asks every test to run: %s", RequireAllEnv, why)
	}
	t.Skip(why)
}

// Require returns the path of each program, in order, or calls
// Unavailable naming the first one missing and the Debian package that
// brings it (pkg).
func Require(t testing.TB, pkg string, programs ...string) []string {
	t.Helper()
	paths := make([]string, 0, len(programs))
	for _, p := range programs {
		path, err := exec.LookPath(p)
		if err != nil {
			Unavailable(t, p+" is not installed (Debian package "+pkg+")")
		}
		paths = append(paths, path)
	}
	return paths
}

// RequireRoot calls Unavailable unless the test runs as root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root: "+why)
	}
}
