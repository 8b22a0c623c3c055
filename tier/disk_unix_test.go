//go:build unix

package tier

import (
	"testing"

	"golang.org/x/sys/unix"
)

func diskBytes(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}
