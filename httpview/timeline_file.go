package httpview

// A timeline's view of one file: entered by binary search on time, read
// line by line, merged with the others by a heap.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/syncer-dev/syncer/internal/logfmt"
	"github.com/syncer-dev/syncer/store"
)

// tlFile is one file's iterator: its lines in the range, in file order.
type tlFile struct {
	e      store.IndexEntry
	tq     *timelineQuery
	ct     *content
	p      *logfmt.Parser
	r      *bufio.Reader
	off    int64 // where the next line starts
	lineNo int64 // the number of the line at off, 0 while not known
	// t and lvl are those of the last timed line: a line without a time
	// takes them. begun is set once a timed line was seen.
	t     time.Time
	lvl   logfmt.Level
	begun bool
	cur   TimelineLine
	err   error
	// ahead holds lines read ahead of cur (prefetch), numbered.
	ahead []TimelineLine
	ended bool // next returned false: the file has no more lines for the query
	// pendBuf holds the lines a search has not parsed yet, one after the
	// other; pendEnds where each ends.
	pendBuf  []byte
	pendEnds []int
}

// prefetch reads up to n lines ahead; with number, it numbers them too
// (numbering the first line of a file deep inside it counts the lines
// before it: worth doing ahead for the few lines a search finds, not for
// the first lines of every file of a timeline, most of which the page
// does not show).
func (f *tlFile) prefetch(ctx context.Context, n int, number bool) {
	for len(f.ahead) < n && f.next(ctx) {
		f.ahead = append(f.ahead, f.cur)
	}
	for i := range f.ahead {
		if number {
			f.ahead[i].LineNo = f.number(ctx, f.ahead[i].Offset)
		}
	}
}

// advance makes the next line current: one read ahead, else the next of
// the file.
func (f *tlFile) advance(ctx context.Context) bool {
	if len(f.ahead) > 0 {
		f.cur, f.ahead = f.ahead[0], f.ahead[1:]
		return true
	}
	return f.next(ctx)
}

func (s *Server) openTimelineFile(ctx context.Context, e store.IndexEntry, tq *timelineQuery) (*tlFile, error) {
	ct, err := s.openContent(e.Agent, e.Path)
	if err != nil {
		return nil, err
	}
	f, err := newTLFile(ctx, ct, e, tq)
	if err != nil {
		ct.Close()
		return nil, err
	}
	return f, nil
}

// newTLFile reads the lines of ct for tq, from the binary search's answer
// for tq.since on; closing it closes ct.
func newTLFile(ctx context.Context, ct *content, e store.IndexEntry, tq *timelineQuery) (*tlFile, error) {
	f := &tlFile{e: e, tq: tq, ct: ct, p: contentParser(ctx, ct)}
	start := int64(0)
	if f.p.Format() != logfmt.Unknown && !ct.gz && !tq.since.IsZero() {
		start = f.seek(ctx, tq.since)
	}
	if start == 0 {
		f.lineNo = 1
	}
	rd, err := ct.reader(ctx, start)
	if err != nil {
		return nil, err
	}
	f.r = bufio.NewReaderSize(rd, 16<<10)
	f.off = start
	if start > 0 {
		f.skipPartial()
	}
	return f, nil
}

func (f *tlFile) close() { f.ct.Close() }

// seek returns where to start reading a plain file for lines at or after
// since: the binary search's answer, timelineSlack earlier.
func (f *tlFile) seek(ctx context.Context, since time.Time) int64 {
	lo, hi := int64(0), f.ct.fi.Size()
	buf := make([]byte, timelineProbe)
	for hi-lo > timelineSlack && ctx.Err() == nil {
		mid := lo + (hi-lo)/2
		t, ok := f.probe(ctx, buf, mid)
		if ok && t.Before(since) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return max(0, lo-timelineSlack)
}

// probe returns the time of the first timed line that starts after off
// (within timelineProbeMax bytes).
func (f *tlFile) probe(ctx context.Context, buf []byte, off int64) (time.Time, bool) {
	for size := len(buf); ; size *= 2 {
		if size > len(buf) {
			buf = make([]byte, size)
		}
		n, err := f.ct.readAt(ctx, buf, off)
		if err != nil || n == 0 {
			return time.Time{}, false
		}
		b := buf[:n]
		i := bytes.IndexByte(b, '\n')
		if i >= 0 {
			b = b[i+1:]
			for {
				j := bytes.IndexByte(b, '\n')
				if j < 0 {
					break
				}
				if t, ok := f.p.Time(bytes.TrimRight(b[:j], "\r")); ok {
					return t, true
				}
				b = b[j+1:]
			}
		}
		if n < len(buf) || size >= timelineProbeMax {
			return time.Time{}, false
		}
	}
}

// skipPartial moves past the line that f.off falls inside.
func (f *tlFile) skipPartial() {
	for {
		b, err := f.r.ReadSlice('\n')
		f.off += int64(len(b))
		if err != bufio.ErrBufferFull {
			return
		}
	}
}

// readLine returns the next line (its first bytes up to the buffer for a
// longer one) without its newline, and where it starts.
func (f *tlFile) readLine() ([]byte, int64, error) {
	start := f.off
	b, err := f.r.ReadSlice('\n')
	f.off += int64(len(b))
	if err == bufio.ErrBufferFull {
		line := bytes.Clone(b)
		for err == bufio.ErrBufferFull {
			var more []byte
			more, err = f.r.ReadSlice('\n')
			f.off += int64(len(more))
		}
		return line, start, nilEOF(err, len(line))
	}
	return bytes.TrimRight(b, "\r\n"), start, nilEOF(err, len(b))
}

// nilEOF makes io.EOF after a last line without newline a line.
func nilEOF(err error, n int) error {
	if errors.Is(err, io.EOF) && n > 0 {
		return nil
	}
	return err
}

// next advances to the next line in the range that the filters keep;
// false at the end of the range, of the file, or of ctx.
func (f *tlFile) next(ctx context.Context) bool {
	if f.ended {
		return false
	}
	if f.more(ctx) {
		return true
	}
	f.ended = true
	return false
}

func (f *tlFile) more(ctx context.Context) bool {
	tq := f.tq
	for ctx.Err() == nil {
		line, off, err := f.readLine()
		if err != nil {
			f.err = err
			return false
		}
		no := f.lineNo
		if f.lineNo > 0 {
			f.lineNo++
		}
		if tq.q != nil {
			// A search: a line that does not match waits unparsed; the
			// time of the lines before a match is read when one comes
			// (see settle), and every pendMax lines to stop at until.
			if !tq.q.matchLine(line) {
				f.pendBuf = append(f.pendBuf, line...)
				f.pendEnds = append(f.pendEnds, len(f.pendBuf))
				if len(f.pendEnds) >= pendMax && !f.settle() {
					return false
				}
				continue
			}
			if !f.settle() {
				return false
			}
		}
		t, lvl, timed := f.p.Parse(line)
		if timed {
			f.t, f.lvl, f.begun = t.UTC(), lvl, true
			if !tq.until.IsZero() && !f.t.Before(tq.until) {
				return false
			}
		}
		if !f.begun || f.t.Before(tq.since) {
			continue
		}
		if tq.after != nil && !tq.after.less(tlKey{f.t, f.e.Agent, f.e.Path, off}) {
			continue
		}
		if tq.level != logfmt.LevelNone && !f.lvl.AtLeast(tq.level) {
			continue
		}
		if (tq.q != nil && !tq.q.matchLine(line)) || (tq.exclude != nil && tq.exclude.matchLine(line)) {
			continue
		}
		if len(line) > grepTextMax {
			line = line[:grepTextMax]
		}
		f.cur = TimelineLine{Agent: f.e.Agent, Path: f.e.Path, LineNo: no, Offset: off, Time: f.t, Level: f.lvl.String(), Text: validText(line), Cont: !timed}
		return true
	}
	return false
}

// pendMax bounds the lines a search leaves unparsed.
const pendMax = 64

// settle gives f the time and level of the last timed line among the
// lines left unparsed, read from the newest back (usually one parse), and
// drops them; false when that time is at or after until.
func (f *tlFile) settle() bool {
	for i := len(f.pendEnds) - 1; i >= 0; i-- {
		start := 0
		if i > 0 {
			start = f.pendEnds[i-1]
		}
		if t, lvl, ok := f.p.Parse(f.pendBuf[start:f.pendEnds[i]]); ok {
			f.t, f.lvl, f.begun = t.UTC(), lvl, true
			break
		}
	}
	f.pendBuf, f.pendEnds = f.pendBuf[:0], f.pendEnds[:0]
	return !f.begun || f.tq.until.IsZero() || f.t.Before(f.tq.until)
}

func (f *tlFile) key() tlKey { return tlKey{f.cur.Time, f.e.Agent, f.e.Path, f.cur.Offset} }

// number numbers the line at off through the file view's line cache,
// within its budget; 0 when that is not enough. Once one line is numbered,
// the file's next lines are counted as they are read.
func (f *tlFile) number(ctx context.Context, off int64) int64 {
	lctx, cancel := context.WithTimeout(ctx, lineBudget)
	defer cancel()
	n, err := f.ct.lineAt(lctx, off)
	if err != nil {
		return 0
	}
	if f.lineNo == 0 {
		if m, err := f.ct.lineAt(lctx, f.off); err == nil {
			f.lineNo = m
		}
	}
	return n
}

// skipSpan reports whether the index shows that file e holds no line for
// the query, so that it need not be opened: its span starts at or after
// until, or ends before since and covers all the indexed bytes (lines
// appended since are not in the span yet), or the whole file was scanned
// and has no time at all.
func skipSpan(span store.TimeSpan, e store.IndexEntry, tq *timelineQuery) bool {
	whole := span.Scanned >= e.Size
	if !span.Known() {
		return whole && span.Format == logfmt.Unknown && e.Size > 0
	}
	return (!tq.until.IsZero() && !span.First.Before(tq.until)) || (whole && !tq.since.IsZero() && span.Last.Before(tq.since))
}

// tlHeap orders the files by their current line.
type tlHeap []*tlFile

func (h tlHeap) Len() int           { return len(h) }
func (h tlHeap) Less(i, j int) bool { return h[i].key().less(h[j].key()) }
func (h tlHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *tlHeap) Push(x any)        { *h = append(*h, x.(*tlFile)) }
func (h *tlHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	*h = old[:len(old)-1]
	return f
}

// firstLineAt returns the offset of the first line of ct whose time is at
// or after at (a line without a time counts with the line before it);
// ok is false when there is none.
func firstLineAt(ctx context.Context, ct *content, at time.Time) (int64, bool, error) {
	f, err := newTLFile(ctx, ct, store.IndexEntry{}, &timelineQuery{since: at})
	if err != nil {
		return 0, false, err
	}
	if !f.next(ctx) {
		return 0, false, ctx.Err()
	}
	return f.cur.Offset, true, nil
}
