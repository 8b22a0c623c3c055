package httpview

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/store"
)

// fakeFiles is the input of a grepFanOut under test: files f000, f001, ...
// where file i holds matches(i) matching lines (endless when matches
// returns -1), and some files are slow, so that later files end first.
type fakeFiles struct {
	n       int
	matches func(i int) int
	// live counts the walk and the searches running; walked is set when
	// the walk returned.
	live   atomic.Int32
	walked atomic.Bool
}

func (f *fakeFiles) walk(ctx context.Context, file func(store.IndexEntry) error) error {
	f.live.Add(1)
	defer f.live.Add(-1)
	defer f.walked.Store(true)
	for i := range f.n {
		if err := file(store.IndexEntry{Agent: "a", Path: fmt.Sprintf("f%03d", i)}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeFiles) search(ctx context.Context, e store.IndexEntry, limit int, emit func(GrepMatch) error) {
	f.live.Add(1)
	defer f.live.Add(-1)
	var i int
	fmt.Sscanf(e.Path, "f%03d", &i)
	if i%4 == 0 {
		time.Sleep(time.Millisecond) // the next files end first
	}
	n := f.matches(i)
	for line := int64(1); n < 0 || line <= int64(n); line++ {
		if int(line) > limit || ctx.Err() != nil {
			return
		}
		if err := emit(GrepMatch{Agent: e.Agent, Path: e.Path, Line: line}); err != nil {
			return
		}
	}
}

// want is every match of the files, in order.
func (f *fakeFiles) want() []string {
	var out []string
	for i := range f.n {
		for line := 1; line <= f.matches(i); line++ {
			out = append(out, fmt.Sprintf("f%03d:%d", i, line))
		}
	}
	return out
}

// runFanOut runs a grepFanOut over f and returns the matches it handed
// over, in the order it did. onMatch, if not nil, sees each one.
func runFanOut(t *testing.T, ctx context.Context, f *fakeFiles, workers, max int, onMatch func(n int)) ([]string, int, grepTally) {
	t.Helper()
	var got []string
	filesDone := 0
	fo := &grepFanOut{
		workers: workers,
		max:     max,
		walk:    f.walk,
		search:  f.search,
		match: func(gm GrepMatch) {
			got = append(got, fmt.Sprintf("%s:%d", gm.Path, gm.Line))
			if onMatch != nil {
				onMatch(len(got))
			}
		},
		fileDone: func() { filesDone++ },
	}
	res := make(chan grepTally, 1)
	go func() { res <- fo.run(ctx) }()
	select {
	case tally := <-res:
		// Every goroutine of the fan-out is gone when run returns.
		if n := f.live.Load(); n != 0 || !f.walked.Load() {
			t.Fatalf("run returned with %d searches or walks still running (walk returned: %v)", n, f.walked.Load())
		}
		return got, filesDone, tally
	case <-time.After(20 * time.Second):
		t.Fatal("grepFanOut.run did not return")
		return nil, 0, grepTally{}
	}
}

func TestGrepFanOutOrdered(t *testing.T) {
	for _, workers := range []int{1, 2, 5} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			f := &fakeFiles{n: 300, matches: func(i int) int { return (i * 7) % 5 }}
			want := f.want()
			got, filesDone, tally := runFanOut(t, context.Background(), f, workers, 100000, nil)
			if !slices.Equal(got, want) {
				t.Fatalf("%d matches, want %d; first difference %s", len(got), len(want), firstDiff(got, want))
			}
			if tally != (grepTally{files: f.n, matches: len(want)}) {
				t.Errorf("tally %+v, want %d files, %d matches, not limited, no error", tally, f.n, len(want))
			}
			if filesDone != f.n {
				t.Errorf("fileDone called %d times, want %d", filesDone, f.n)
			}
		})
	}
}

func TestGrepFanOutLimit(t *testing.T) {
	f := &fakeFiles{n: 300, matches: func(i int) int { return (i * 7) % 5 }}
	all := f.want()
	for _, max := range []int{1, 50, 333, len(all) - 1, len(all)} {
		t.Run(fmt.Sprint("max=", max), func(t *testing.T) {
			f := &fakeFiles{n: f.n, matches: f.matches}
			got, _, tally := runFanOut(t, context.Background(), f, 3, max, nil)
			if !slices.Equal(got, all[:max]) {
				t.Fatalf("%d matches, want the first %d; first difference %s", len(got), max, firstDiff(got, all[:max]))
			}
			// Exactly max matches in all is complete, not "limit".
			if limited := max < len(all); tally.limited != limited || tally.matches != max {
				t.Errorf("tally %+v, want %d matches, limited %v", tally, max, limited)
			}
			if tally.walkErr != nil && !errors.Is(tally.walkErr, context.Canceled) {
				t.Errorf("walk error %v", tally.walkErr)
			}
		})
	}
}

func TestGrepFanOutCancel(t *testing.T) {
	// Every file matches without end: only the cancellation stops it.
	f := &fakeFiles{n: 1000, matches: func(int) int { return -1 }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got, _, tally := runFanOut(t, ctx, f, 4, MaxGrepMatches, func(n int) {
		if n == 10 {
			cancel()
		}
	})
	if len(got) < 10 || len(got) >= MaxGrepMatches {
		t.Fatalf("%d matches, want at least the 10 before the cancellation and fewer than max", len(got))
	}
	// What was handed over is still in order: files one after the other,
	// each cut where its search saw the cancellation.
	file, line := 0, 0
	for i, m := range got {
		var fi, li int
		fmt.Sscanf(m, "f%03d:%d", &fi, &li)
		switch {
		case fi == file && li == line+1:
		case fi > file && li == 1:
		default:
			t.Fatalf("match %d is %s after f%03d:%d", i, m, file, line)
		}
		file, line = fi, li
	}
	if got[9] != "f000:10" {
		t.Errorf("match 10 is %s, want f000:10", got[9])
	}
	if tally.limited || !errors.Is(tally.walkErr, context.Canceled) {
		t.Errorf("tally %+v, want not limited and the walk cancelled", tally)
	}
}
