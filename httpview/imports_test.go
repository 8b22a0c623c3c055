package httpview

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoFTPServerImport holds the layout rule that the views do not import
// the FTP server: what they show of it comes in ftpfs/activity and
// ftpfs/accounts. go list's Deps exclude test files.
func TestNoFTPServerImport(t *testing.T) {
	const server = "github.com/syncer-dev/syncer/ftpfs"
	out, err := exec.Command("go", "list", "-deps", "github.com/syncer-dev/syncer/httpview").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == server {
			t.Errorf("httpview depends on %s", server)
		}
	}
}
