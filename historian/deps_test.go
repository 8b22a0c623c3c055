package historian

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies holds SPEC.md's direction of dependencies for this
// package: the historian builds on fuseview, httpview, ftpfs and store,
// never on the agent (syncer) or the command; only the command imports it.
func TestDependencies(t *testing.T) {
	const mod = "github.com/syncer-dev/syncer/"
	out, err := exec.Command("go", "list", "-deps", mod+"historian").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == mod+"syncer" || strings.HasPrefix(dep, mod+"cmd/") {
			t.Errorf("historian depends on %s", dep)
		}
	}
	out, err = exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if imp == mod+"historian" && f[0] != mod+"cmd/syncer" {
				t.Errorf("%s imports the historian; only cmd/syncer may", f[0])
			}
		}
	}
}
