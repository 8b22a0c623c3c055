//go:build linux

package fuseview

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestGoFuseLogsThroughSlog: go-fuse's messages reach the view's slog
// logger, as warnings, or at info level when every request is logged.
func TestGoFuseLogsThroughSlog(t *testing.T) {
	for _, tc := range []struct {
		debug bool
		level string
	}{{false, "level=WARN"}, {true, "level=INFO"}} {
		var buf bytes.Buffer
		lg := slog.New(slog.NewTextHandler(&buf, nil))
		goFuseLogger(lg, tc.debug).Printf("writer: Write/Writev failed, err: %v", "EIO")
		out := buf.String()
		for _, want := range []string{tc.level, `msg="writer: Write/Writev failed, err: EIO"`, "from=go-fuse"} {
			if !strings.Contains(out, want) {
				t.Errorf("debug %v: %q lacks %q", tc.debug, out, want)
			}
		}
	}
}
