package main

import (
	"runtime/debug"
	"testing"
)

// TestRelaxGC: a push raises the collector's target to pushGCPercent under
// a memory limit, nested pushes share one raise, and the last one to end
// puts the previous settings back; GOGC set by the user is left alone.
func TestRelaxGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	percent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	end1 := relaxGC()
	end2 := relaxGC()
	if got, lim := percent(), debug.SetMemoryLimit(-1); got != pushGCPercent || lim != pushMemoryLimit {
		t.Errorf("during a push: GOGC %d, limit %d; want %d, %d", got, lim, pushGCPercent, pushMemoryLimit)
	}
	end2()
	if got := percent(); got != pushGCPercent {
		t.Errorf("one push still running: GOGC %d, want %d", got, pushGCPercent)
	}
	end1()
	if got := percent(); got != 100 {
		t.Errorf("after the pushes: GOGC %d, want 100", got)
	}
	t.Setenv("GOGC", "50")
	end := relaxGC()
	if got := percent(); got != 100 {
		t.Errorf("with GOGC set: %d, want it untouched (100)", got)
	}
	end()
}
