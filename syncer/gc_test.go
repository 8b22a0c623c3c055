package syncer_test

import (
	"runtime/debug"
	"testing"
)

// gcProbe notes the garbage collector's target while a push plans.
type gcProbe struct{ seen *int }

func (p gcProbe) Planned(int, int64) {
	*p.seen = debug.SetGCPercent(-1)
	debug.SetGCPercent(*p.seen)
}
func (gcProbe) Sent(int64) {}
func (gcProbe) FileDone()  {}

// TestPushLeavesGCAlone: the library changes no process-wide setting; the
// command relaxes the collector through Options.AroundPush.
func TestPushLeavesGCAlone(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(123))
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	e.write("a.log", []byte("line\n"))
	seen := 0
	e.opts.Progress = gcProbe{&seen}
	e.push()
	if seen != 123 {
		t.Errorf("GC percent during a push: %d, want 123 (untouched)", seen)
	}
	e.write("b.log", []byte("line\n"))
	calls := 0
	e.opts.AroundPush = func() func() { calls++; return func() { calls++ } }
	e.push()
	if calls != 2 {
		t.Errorf("AroundPush: %d calls, want one and its end", calls)
	}
}
