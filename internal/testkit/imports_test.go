package testkit

import (
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/syncer-dev/syncer"

// layers is the layering of SPEC.md ("Dependencies point down") and the
// README's layout table, as the module's own imports of every package's
// shipping code: a package may import only what its row names (a pattern
// ending in "/..." names a folder's packages). A new package needs a row;
// a new edge that the layering does not allow fails here, naming it.
var layers = map[string][]string{
	"cmd/syncer":         {"historian", "syncer", "store", "tier", "ftpfs/...", "fuseview", "httpview", "internal/archive", "internal/pathglob", "internal/statelock", "internal/defender", "internal/iec"},
	"historian":          {"fuseview", "httpview", "ftpfs/...", "store", "tier", "internal/archive", "internal/statelock", "internal/defender"},
	"tier":               {"store", "internal/archive"},
	"syncer":             {"ftpfs", "store", "internal/archive", "internal/pathglob", "internal/statelock"},
	"store":              {"internal/archive", "internal/statelock", "internal/logfmt"},
	"ftpfs":              {"ftpfs/accounts", "ftpfs/activity", "internal/archive", "internal/statelock", "internal/defender"},
	"ftpfs/accounts":     {"internal/archive", "internal/statelock"},
	"ftpfs/activity":     {},
	"ftpfs/ftptest":      {"ftpfs", "ftpfs/accounts", "ftpfs/activity", "internal/archive"},
	"fuseview":           {"store", "internal/archive"},
	"httpview":           {"store", "ftpfs/accounts", "ftpfs/activity", "internal/archive", "internal/pathglob", "internal/defender", "internal/iec", "internal/logfmt"},
	"internal/archive":   {},
	"internal/pathglob":  {},
	"internal/iec":       {},
	"internal/logfmt":    {},
	"internal/statelock": {},
	"internal/defender":  {"internal/statelock"},
	"internal/rotsim":    {"internal/archive"},
	"internal/lazyfs":    {},
	"internal/testkit":   {"ftpfs/...", "internal/archive"},
	"faults":             {"ftpfs/...", "store", "internal/archive", "internal/lazyfs"},
	"internal/winetest":  {},
	"scripts/...":        {"store", "internal/archive", "internal/rotsim"},
}

// TestLayering holds every package of the module to its row of layers.
// Only shipping code is held (go list's Imports leaves out test files);
// tests may import what they need. Nothing may import cmd/..., nothing
// outside tests internal/testkit, and the views (fuseview, httpview) not
// the FTP server.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 8 {
		t.Fatalf("go list listed %d packages, want the module's", len(lines))
	}
	for _, line := range lines {
		f := strings.Fields(line)
		pkg, ok := strings.CutPrefix(f[0], module+"/")
		if !ok {
			continue
		}
		allowed, ok := rowOf(pkg)
		if !ok {
			t.Errorf("%s has no row in the layering (internal/testkit/imports_test.go): add one", pkg)
			continue
		}
		for _, imp := range f[1:] {
			dep, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if !matchAny(allowed, dep) {
				t.Errorf("%s imports %s, which the layering does not allow (allowed: %s)", pkg, dep, strings.Join(allowed, ", "))
			}
		}
	}
}

// TestLayeringHoldsItsRules checks the table itself against the rules
// the SPEC states in words, so that a row cannot quietly grant them away.
func TestLayeringHoldsItsRules(t *testing.T) {
	for pkg, allowed := range layers {
		for _, dep := range allowed {
			switch {
			case strings.HasPrefix(dep, "cmd/"):
				t.Errorf("%s may import %s: nothing imports cmd", pkg, dep)
			case dep == "internal/testkit":
				t.Errorf("%s may import testkit: only tests do", pkg)
			case (pkg == "fuseview" || pkg == "httpview") && (dep == "ftpfs" || dep == "ftpfs/..." || dep == "ftpfs/ftptest"):
				t.Errorf("the view %s may import the FTP server", pkg)
			case (pkg == "store" || pkg == "internal/archive") && !strings.HasPrefix(dep, "internal/"):
				t.Errorf("%s may import %s: it imports none of the others", pkg, dep)
			}
		}
	}
	if len(layers["internal/archive"]) != 0 {
		t.Error("internal/archive is a leaf")
	}
}

func rowOf(pkg string) ([]string, bool) {
	if allowed, ok := layers[pkg]; ok {
		return allowed, true
	}
	for p := pkg; p != "." && p != ""; p = path.Dir(p) {
		if allowed, ok := layers[p+"/..."]; ok {
			return allowed, true
		}
	}
	return nil, false
}

func matchAny(patterns []string, dep string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		if dir, ok := strings.CutSuffix(p, "/..."); ok {
			return dep == dir || strings.HasPrefix(dep, dir+"/")
		}
		return p == dep
	})
}
