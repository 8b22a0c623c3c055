package testkit

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyTestsImportTestkit holds the package's contract: code that ships
// never imports testkit (it builds binaries and starts servers as root);
// only _test.go files may. go list's Imports excludes test files.
func TestOnlyTestsImportTestkit(t *testing.T) {
	const self = "github.com/syncer-dev/syncer/internal/testkit"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`,
		"github.com/syncer-dev/syncer/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		t.Fatalf("go list listed %d packages, want the module's", len(lines))
	}
	for _, line := range lines {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if imp == self {
				t.Errorf("%s imports %s outside its tests", f[0], self)
			}
		}
	}
}
