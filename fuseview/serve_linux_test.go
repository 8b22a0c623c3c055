//go:build linux

package fuseview

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestHeldReadDoesNotHoldUpOthers: the daemon serves each request on the
// goroutine that read it (go-fuse's InlineRequests), except reads, which
// get a reader of their own first. While one read is held in the daemon,
// listings, lookups, opens and other reads still answer.
func TestHeldReadDoesNotHoldUpOthers(t *testing.T) {
	requireFUSE(t)
	root := makeArchive(t)
	_, mp := mountView(t, root, Options{NoPassthrough: true})

	entered := make(chan struct{})
	release := make(chan struct{})
	var heldOne atomic.Bool
	hook := func() {
		if heldOne.CompareAndSwap(false, true) { // only the first read
			close(entered)
			<-release
		}
	}
	testHookRead.Store(&hook)
	unblock := sync.OnceFunc(func() { close(release) })
	// Cleanups run last-in first-out: this one before the unmount.
	t.Cleanup(func() { unblock(); testHookRead.Store(nil) })

	held := filepath.Join(mp, "node1/app/2026-11-24.log")
	type result struct {
		data []byte
		err  error
	}
	heldDone := make(chan result, 1)
	go func() {
		b, err := os.ReadFile(held)
		heldDone <- result{b, err}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first read never reached the daemon")
	}

	othersDone := make(chan error, 1)
	go func() {
		if _, err := os.ReadDir(filepath.Join(mp, "node2")); err != nil {
			othersDone <- err
			return
		}
		if _, err := os.Stat(filepath.Join(mp, "node-3.example.com/var/log/messages")); err != nil {
			othersDone <- err
			return
		}
		got, err := os.ReadFile(filepath.Join(mp, "node2/x/y.log"))
		if err != nil {
			othersDone <- err
			return
		}
		want, err := os.ReadFile(filepath.Join(root, "node2/x/y.log"))
		if err == nil && !bytes.Equal(got, want) {
			err = os.ErrInvalid
		}
		othersDone <- err
	}()
	select {
	case err := <-othersDone:
		if err != nil {
			t.Fatalf("while a read was held: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a held read held up a listing, a lookup and another file's read for 10s")
	}

	unblock()
	r := <-heldDone
	want, err := os.ReadFile(filepath.Join(root, "node1/app/2026-11-24.log"))
	if err != nil {
		t.Fatal(err)
	}
	if r.err != nil || !bytes.Equal(r.data, want) {
		t.Fatalf("the held read: %v, %d bytes, want %d", r.err, len(r.data), len(want))
	}
}

// TestIdleMountSpendsNoCPU: after a burst of requests the daemon polls the
// device for PollSpin only, then sleeps. The same measure with a PollSpin
// longer than the idle second shows the spinning it would otherwise see.
func TestIdleMountSpendsNoCPU(t *testing.T) {
	requireFUSE(t)
	for _, c := range []struct {
		name    string
		spin    time.Duration
		spinAll bool // PollSpin outlasts the idle second
	}{
		{"default", 0, false},
		{"spin-longer-than-idle", 10 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := makeArchive(t)
			_, mp := mountView(t, root, Options{PollSpin: c.spin})
			// A burst: list and read every file.
			for _, rel := range filesUnder(t, root, true) {
				if _, err := os.ReadFile(filepath.Join(mp, rel)); err != nil {
					t.Fatal(err)
				}
			}
			before := cpuTime(t)
			if c.spinAll {
				// The spinning reader wants a whole CPU; on a machine
				// busy with other work it gets less of one, so it is
				// given up to 5 idle seconds (within its PollSpin) to
				// show 500 ms of CPU.
				var used time.Duration
				for start := time.Now(); used < 500*time.Millisecond && time.Since(start) < 5*time.Second; {
					time.Sleep(100 * time.Millisecond)
					used = cpuTime(t) - before
				}
				t.Logf("CPU used by the spinning test process: %v", used)
				if used < 500*time.Millisecond {
					t.Fatalf("with PollSpin %v the daemon used only %v of CPU in 5 idle seconds: the measure cannot see spinning", c.spin, used)
				}
				return
			}
			time.Sleep(time.Second)
			used := cpuTime(t) - before
			t.Logf("CPU used by the test process in one idle second: %v", used)
			if used > 200*time.Millisecond {
				t.Fatalf("an idle mount used %v of CPU in one second: the daemon does not sleep", used)
			}
		})
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
