//go:build !linux

package tier

import (
	"errors"
	"os"
)

// The historian targets Linux (SPEC.md); elsewhere the tier keeps local
// copies.
func canPunch(string) (bool, int64)                  { return false, 4096 }
func punchHole(*os.Root, string, int64, int64) error { return errors.ErrUnsupported }
func diskUsed(string) (float64, bool)                { return 0, false }
