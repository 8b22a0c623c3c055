package main

import (
	"encoding/json"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestPushIgnoreCase: --ignore-case is the platform's rule by default
// (matching case exactly, except on Windows) and either way when given.
func TestPushIgnoreCase(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, filepath.Join(dir, "x", "a.log"), 10)
	writeLog(t, filepath.Join(dir, "B.LOG"), 10)
	for _, tc := range []struct {
		flags []string
		want  int64
	}{
		{nil, map[bool]int64{true: 2, false: 1}[runtime.GOOS == "windows"]},
		{[]string{"--ignore-case"}, 2},
		{[]string{"--ignore-case=false"}, 1},
		{[]string{"--ignore-case", "--include", "**/*.Log"}, 2},
		{[]string{"--ignore-case=false", "--include", "**/*.LOG"}, 1},
	} {
		r := testkit.RunSyncer(t, "", append([]string{"push", "--dry-run", "--json", "--agent-id", "n1", "--dir", dir}, tc.flags...)...)
		var s struct {
			FilesNew int64 `json:"files_new"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil || r.Code != 0 {
			t.Fatalf("push %v: exit %d %v: %s", tc.flags, r.Code, err, r.Stderr)
		}
		if s.FilesNew != tc.want {
			t.Errorf("push %v: %d files matched, want %d", tc.flags, s.FilesNew, tc.want)
		}
	}
}
