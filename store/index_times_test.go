package store

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/logfmt"
)

func timedLines(from time.Time, step time.Duration, n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s INFO line %d\n", from.Add(time.Duration(i)*step).Format("2006-01-02 15:04:05.000"), i)
		if i%7 == 3 {
			b.WriteString("\tat com.example.Frame(Frame.java:1)\n") // continuation, no time
		}
	}
	return []byte(b.String())
}

// TestIndexTimeSpan: the span of a file follows uploads, appends (also of
// a partial last line), rewrites, rebuilds from disk and deletion.
func TestIndexTimeSpan(t *testing.T) {
	e := newIxEnv(t)
	e.start()
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	span := func(rel string) TimeSpan {
		t.Helper()
		s, err := e.ix.TimeSpan("n1", rel)
		if err != nil {
			t.Fatalf("TimeSpan(%s): %v", rel, err)
		}
		return s
	}
	want := func(rel string, first, last time.Time) {
		t.Helper()
		s := span(rel)
		if !s.First.Equal(first) || !s.Last.Equal(last) || s.Format != logfmt.ISO {
			t.Fatalf("%s span = %v .. %v (%v), want %v .. %v (iso8601)", rel, s.First, s.Last, s.Format, first, last)
		}
	}

	first := timedLines(t0, time.Second, 100)
	e.upload("n1", "app/a.log", 0, first, false)
	e.flush()
	want("app/a.log", t0, t0.Add(99*time.Second))

	// An append whose last line is incomplete: the span covers the
	// complete lines; the rest of the line completes it later.
	more := timedLines(t0.Add(100*time.Second), time.Second, 50)
	cut := len(more) - 10
	e.upload("n1", "app/a.log", int64(len(first)), more[:cut], false)
	e.flush()
	want("app/a.log", t0, t0.Add(148*time.Second))
	e.upload("n1", "app/a.log", int64(len(first)+cut), more[cut:], false)
	e.flush()
	want("app/a.log", t0, t0.Add(149*time.Second))
	if s := span("app/a.log"); s.Scanned != int64(len(first)+len(more)) {
		t.Fatalf("scanned %d of %d bytes", s.Scanned, len(first)+len(more))
	}

	// A line out of order widens the span: First is the earliest time.
	e.upload("n1", "app/a.log", int64(len(first)+len(more)), []byte(t0.Add(-time.Hour).Format(time.RFC3339)+" WARN late line\n"), false)
	e.flush()
	want("app/a.log", t0.Add(-time.Hour), t0.Add(149*time.Second))

	// A rewrite starts over.
	e.upload("n1", "app/a.log", 0, timedLines(t0.Add(24*time.Hour), time.Minute, 10), true)
	e.flush()
	want("app/a.log", t0.Add(24*time.Hour), t0.Add(24*time.Hour+9*time.Minute))

	// A file larger than the probe window: first and last lines found from
	// both ends.
	big := timedLines(t0, 10*time.Millisecond, 60000)
	if len(big) < 2*spanProbe {
		t.Fatalf("big file of %d bytes is not larger than two probe windows", len(big))
	}
	e.upload("n1", "app/big.log", 0, big, false)
	e.flush()
	want("app/big.log", t0, t0.Add(59999*10*time.Millisecond))

	// A file without times has an unknown span; it is never "outside".
	e.upload("n1", "notes.log", 0, []byte("no time here\nnor here\n"), false)
	e.flush()
	if s := span("notes.log"); s.Known() || s.Outside(t0, t0.Add(time.Hour)) {
		t.Fatalf("untimed file: span %+v", s)
	}

	// Rebuilt from disk alone.
	e.stop()
	e.ix = nil
	e.dir += "-rebuilt"
	e.start()
	want("app/a.log", t0.Add(24*time.Hour), t0.Add(24*time.Hour+9*time.Minute))

	s := span("app/a.log")
	for _, c := range []struct {
		since, until time.Time
		outside      bool
	}{
		{t0, t0.Add(time.Hour), true},
		{t0.Add(24 * time.Hour), t0.Add(25 * time.Hour), false},
		{t0.Add(24*time.Hour + 9*time.Minute), time.Time{}, false},
		{t0.Add(24*time.Hour + 10*time.Minute), time.Time{}, true},
		{time.Time{}, t0.Add(24 * time.Hour), true}, // until is exclusive
		{time.Time{}, time.Time{}, false},
	} {
		if got := s.Outside(c.since, c.until); got != c.outside {
			t.Errorf("Outside(%v, %v) = %v, want %v", c.since, c.until, got, c.outside)
		}
	}

	if err := os.Remove(e.root + "/n1/app/a.log"); err != nil {
		t.Fatal(err)
	}
	e.reconcile()
	if _, err := e.ix.TimeSpan("n1", "app/a.log"); !errors.Is(err, ErrNoEntry) {
		t.Fatalf("span of a deleted file: %v, want ErrNoEntry", err)
	}
}

func TestTimeSpanEncoding(t *testing.T) {
	for _, s := range []TimeSpan{{}, {Scanned: 12, Format: logfmt.JSON}, {First: time.Unix(1, 5).UTC(), Last: time.Unix(99, 0).UTC(), Scanned: 1 << 40, Format: logfmt.CLF}} {
		got, err := decodeTimeSpan(encodeTimeSpan(s))
		if err != nil || got != s {
			t.Errorf("round trip %+v = %+v, %v", s, got, err)
		}
	}
	if _, err := decodeTimeSpan([]byte{9}); !errors.Is(err, ErrBadValue) {
		t.Errorf("bad version: %v", err)
	}
}
