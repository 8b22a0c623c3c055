package store

// The time span of each indexed log file: the earliest and latest
// timestamp of its lines, so that a query for a time range skips the
// files wholly outside it without opening them.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/syncer-dev/syncer/internal/logfmt"
)

// ixTime + agent + 0 + rel -> encoded TimeSpan. Kept beside the file's
// entry rather than in it, so that the entry's encoding is unchanged and
// a span can be rebuilt from the file alone.
const ixTime byte = 'T'

func ixTimeKey(agent, rel string) []byte {
	k := make([]byte, 0, len(agent)+len(rel)+2)
	k = append(k, ixTime)
	k = append(k, agent...)
	k = append(k, 0)
	return append(k, rel...)
}

// TimeSpan is what the index knows of the times in one file.
type TimeSpan struct {
	// First and Last are the earliest and the latest time of a line in
	// the file's first Scanned bytes (not the first and last lines: a file
	// whose lines are slightly out of order is still wholly inside its
	// span); both zero when no line had a time.
	First, Last time.Time
	// Scanned is how far the file was read: the end of its last complete
	// line when it was last indexed.
	Scanned int64
	// Format is the format logfmt detected from the file's first lines.
	Format logfmt.Format
}

// Known reports whether the span says anything: a file with no timed
// line, or not scanned (a .gz file), has an unknown span and has to be
// read to know.
func (s TimeSpan) Known() bool { return !s.First.IsZero() }

// Outside reports whether the span lies wholly before since or at or
// after until (a zero bound is open). A file whose span is not known is
// never outside.
func (s TimeSpan) Outside(since, until time.Time) bool {
	if !s.Known() {
		return false
	}
	return (!since.IsZero() && s.Last.Before(since)) || (!until.IsZero() && !s.First.Before(until))
}

const timeSpanVersion = 1

func encodeTimeSpan(s TimeSpan) []byte {
	b := []byte{timeSpanVersion, byte(s.Format)}
	var f, l int64
	if !s.First.IsZero() {
		f, l = s.First.UnixNano(), s.Last.UnixNano()
	}
	b = binary.AppendVarint(b, f)
	b = binary.AppendVarint(b, l)
	return binary.AppendVarint(b, s.Scanned)
}

func decodeTimeSpan(b []byte) (TimeSpan, error) {
	d := decoder{b: b}
	if v := d.byte(); v != timeSpanVersion && d.err == nil {
		d.err = fmt.Errorf("version %d", v)
	}
	var s TimeSpan
	s.Format = logfmt.Format(d.byte())
	f, l := d.varint(), d.varint()
	s.Scanned = d.varint()
	if d.err != nil || len(d.b) != 0 {
		return TimeSpan{}, fmt.Errorf("decode time span: %v: %w", d.err, ErrBadValue)
	}
	if f != 0 || l != 0 {
		s.First, s.Last = time.Unix(0, f).UTC(), time.Unix(0, l).UTC()
	}
	return s, nil
}

// TimeSpan returns the span of agent's file rel; ErrNoEntry when the index
// has none (a file not indexed yet, a directory, a .gz file).
func (ix *Index) TimeSpan(agent, rel string) (TimeSpan, error) {
	v, closer, err := ix.db.Get(ixTimeKey(agent, rel))
	if errors.Is(err, pebble.ErrNotFound) {
		return TimeSpan{}, ErrNoEntry
	}
	if err != nil {
		return TimeSpan{}, fmt.Errorf("index time span %s/%s: %w", agent, rel, err)
	}
	defer closer.Close()
	return decodeTimeSpan(v)
}

// spanHead is how much of a new file logfmt.Detect sees.
const spanHead = 64 << 10

// updateTimeSpan extends the span of agent's rel over the file's bytes
// from where it was last scanned to size (from 0 when fresh: a new or
// rewritten file). Compressed files are left without a span. A read error
// leaves the span as it was: the span is a hint that a later refresh
// completes, never a claim the disk does not back.
func (w *ixWriter) updateTimeSpan(agent, rel string, f *os.File, content io.ReaderAt, size int64, fresh bool) error {
	if strings.HasSuffix(rel, ".gz") {
		return nil
	}
	key := ixTimeKey(agent, rel)
	var span TimeSpan
	if !fresh {
		if v, closer, err := w.b.Get(key); err == nil {
			span, err = decodeTimeSpan(v)
			closer.Close()
			if err != nil || span.Scanned > size {
				span = TimeSpan{}
			}
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("index time span %s/%s: %w", agent, rel, err)
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	opts := logfmt.Options{Ref: fi.ModTime()}
	if span.Scanned == 0 {
		head := make([]byte, min(size, spanHead))
		n, _ := content.ReadAt(head, 0)
		span.Format = logfmt.Detect(head[:n], opts).Format()
	}
	if span.Format == logfmt.Unknown {
		span.Scanned = size // no time in the head: not a timed log
	} else if err := scanSpan(&span, logfmt.NewParser(span.Format, opts), content, size); err != nil {
		return nil
	}
	return w.b.Set(key, encodeTimeSpan(span), nil)
}

// spanProbe bounds how far scanSpan looks for a timed line from either
// end of the bytes it adds (a long stack trace, a burst of untimed lines).
const spanProbe = 1 << 20

// scanSpan extends the span over the complete lines of f from
// span.Scanned to size: it reads the times of the first and the last timed
// line of those bytes, not of every line, so that the index pays a few
// reads per append, not a parse per line. The span is therefore that of
// the first and last lines of each appended piece; a line in the middle
// of a piece that is earlier or later than both (logs are written in time
// order, give or take a moment) is not in it.
func scanSpan(span *TimeSpan, p *logfmt.Parser, f io.ReaderAt, size int64) error {
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	buf := (*bp)[:min(len(*bp), spanProbe)]
	// The end of the last complete line.
	tail := max(span.Scanned, size-int64(len(buf)))
	n, err := f.ReadAt(buf[:size-tail], tail)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	end := bytes.LastIndexByte(buf[:n], '\n')
	if end < 0 {
		if size-span.Scanned >= int64(len(buf)) {
			span.Scanned = size // one line longer than the probe: skipped
		}
		return nil
	}
	last := tail + int64(end) + 1
	add := func(t time.Time) {
		t = t.UTC()
		switch {
		case span.First.IsZero():
			span.First, span.Last = t, t
		case t.Before(span.First):
			span.First = t
		case t.After(span.Last):
			span.Last = t
		}
	}
	// The last timed line: backwards from the end, not into a line the
	// window starts inside.
	b := buf[:end]
	if tail > span.Scanned {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	for {
		j := bytes.LastIndexByte(b, '\n')
		line := b[j+1:]
		if t, ok := p.Time(bytes.TrimRight(line, "\r")); ok {
			add(t)
			break
		}
		if j < 0 {
			break
		}
		b = b[:j]
	}
	// The first timed line: forwards from where the last scan ended.
	n, err = f.ReadAt(buf[:min(int64(len(buf)), last-span.Scanned)], span.Scanned)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	b = buf[:n]
	for len(b) > 0 {
		j := bytes.IndexByte(b, '\n')
		if j < 0 {
			break
		}
		if t, ok := p.Time(bytes.TrimRight(b[:j], "\r")); ok {
			add(t)
			break
		}
		b = b[j+1:]
	}
	span.Scanned = last
	return nil
}
