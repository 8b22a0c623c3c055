//go:build !unix

package tier

import (
	"os"
	"testing"
)

// diskBytes is the file's size where the platform does not tell the
// blocks allocated (the tier punches holes on Linux only: elsewhere
// nothing is evicted).
func diskBytes(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
