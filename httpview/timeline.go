package httpview

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/internal/logfmt"
	"github.com/syncer-dev/syncer/internal/pathglob"
	"github.com/syncer-dev/syncer/store"
)

// Bounds of /api/v1/timeline.
const (
	// DefaultTimelineLines and MaxTimelineLines bound one page.
	DefaultTimelineLines = 100
	MaxTimelineLines     = 10000
	// timelineSlack is how far before the binary search's answer a file is
	// read: lines slightly out of order (threads writing at once) that
	// belong in the range are not lost.
	timelineSlack = 8 << 10
	// timelineProbe is what one step of the binary search reads looking
	// for a timed line; a step that finds none reads up to
	// timelineProbeMax (a long stack trace).
	timelineProbe    = 4 << 10
	timelineProbeMax = 256 << 10
)

// TimelineLine is one NDJSON line of /api/v1/timeline.
type TimelineLine struct {
	Agent string `json:"agent"`
	Path  string `json:"path"`
	// LineNo is the 1-based line number, 0 when counting the lines before
	// it would take longer than the file view's line budget.
	LineNo int64 `json:"line_no"`
	// Offset is where the line starts in the file (decompressed for .gz).
	Offset int64     `json:"offset"`
	Time   time.Time `json:"time"`
	Level  string    `json:"level,omitempty"`
	Text   string    `json:"text"`
	// Cont marks a line without a time of its own (a stack trace's frame):
	// it has the time and level of the line before it.
	Cont bool `json:"cont,omitempty"`
}

// TimelineDone is the last NDJSON line of /api/v1/timeline.
type TimelineDone struct {
	Done  bool `json:"done"`
	Lines int  `json:"lines"`
	// Files is how many files the agent/path filters matched; Opened how
	// many were read; Skipped how many the index showed wholly outside the
	// range (or without any time), which were never opened.
	Files   int `json:"files"`
	Opened  int `json:"opened"`
	Skipped int `json:"skipped"`
	// Cursor continues after the last line sent (pass it back with the
	// same query); empty when the range holds no more lines.
	Cursor string `json:"cursor,omitempty"`
	// Last is the cursor of the last line sent, also when the range holds
	// no more lines yet: a live view asks with it for what follows.
	Last   string `json:"last,omitempty"`
	Reason string `json:"reason,omitempty"` // "timeout" or "" (complete)
}

// tlKey orders the timeline: time, then agent, path and offset, so that
// equal times come in a stable order and a cursor names one place.
type tlKey struct {
	t      time.Time
	agent  string
	path   string
	offset int64
}

func (a tlKey) less(b tlKey) bool {
	if c := a.t.Compare(b.t); c != 0 {
		return c < 0
	}
	if a.agent != b.agent {
		return a.agent < b.agent
	}
	if a.path != b.path {
		return a.path < b.path
	}
	return a.offset < b.offset
}

func (a tlKey) encode() string {
	s := strconv.FormatInt(a.t.UnixNano(), 10) + "\x00" + a.agent + "\x00" + a.path + "\x00" + strconv.FormatInt(a.offset, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func decodeTLKey(s string) (tlKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return tlKey{}, err
	}
	f := strings.Split(string(b), "\x00")
	if len(f) != 4 {
		return tlKey{}, errors.New("bad cursor")
	}
	ns, err1 := strconv.ParseInt(f[0], 10, 64)
	off, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil {
		return tlKey{}, errors.New("bad cursor")
	}
	return tlKey{t: time.Unix(0, ns).UTC(), agent: f[1], path: f[2], offset: off}, nil
}

// timelineQuery is one request's parameters.
type timelineQuery struct {
	since, until time.Time
	agents       map[string]bool
	pathGlob     *pathglob.Pattern
	level        logfmt.Level
	q, exclude   *lineMatcher
	after        *tlKey
	max          int
	timeout      time.Duration
}

// parseTime reads a time parameter: RFC 3339, or Unix seconds.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339, e.g. 2026-12-03T10:02:00Z", s)
}

func (s *Server) parseTimeline(c *gin.Context) (*timelineQuery, bool) {
	tq := &timelineQuery{timeout: DefaultGrepTimeout}
	bad := func(msg string) (*timelineQuery, bool) {
		apiError(c, http.StatusBadRequest, msg)
		return nil, false
	}
	var err error
	if v := c.Query("until"); v != "" {
		if tq.until, err = parseTime(v); err != nil {
			return bad("until: " + err.Error())
		}
	}
	if v := c.Query("since"); v != "" {
		if tq.since, err = parseTime(v); err != nil {
			return bad("since: " + err.Error())
		}
	}
	if !tq.since.IsZero() && !tq.until.IsZero() && !tq.since.Before(tq.until) {
		return bad("since must be before until")
	}
	for _, a := range c.QueryArray("agent") {
		if a == "" {
			continue
		}
		if !archive.ValidAgentID(a) {
			return bad("bad agent id")
		}
		if tq.agents == nil {
			tq.agents = map[string]bool{}
		}
		tq.agents[a] = true
	}
	if pg := c.Query("path"); pg != "" {
		if tq.pathGlob, err = compileGlob(pg); err != nil {
			return bad("bad glob in path: " + err.Error())
		}
	}
	if l := c.Query("level"); l != "" {
		var ok bool
		if tq.level, ok = logfmt.ParseLevel(l); !ok {
			return bad("level must be one of emerg, alert, crit, error, warn, notice, info, debug, trace")
		}
	}
	if q := c.Query("q"); q != "" {
		if tq.q, err = newLineMatcher(q); err != nil {
			return bad("bad regular expression in q: " + err.Error())
		}
	}
	if q := c.Query("exclude"); q != "" {
		if tq.exclude, err = newLineMatcher(q); err != nil {
			return bad("bad regular expression in exclude: " + err.Error())
		}
	}
	if cur := c.Query("cursor"); cur != "" {
		k, err := decodeTLKey(cur)
		if err != nil {
			return bad("bad cursor: pass back the cursor of the previous page unchanged")
		}
		tq.after = &k
		if tq.since.Before(k.t) {
			tq.since = k.t
		}
	}
	var ok bool
	if tq.max, ok = intParam(c, "max", DefaultTimelineLines, MaxTimelineLines); !ok {
		return nil, false
	}
	if t := c.Query("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			return bad("timeout must be a positive duration, e.g. 30s")
		}
		tq.timeout = min(d, MaxGrepTimeout)
	}
	return tq, true
}

// timeline answers GET /api/v1/timeline?since=T&until=T[&agent=ID...]
// [&path=GLOB][&level=L][&q=RE][&exclude=RE][&max=N][&cursor=C] with
// NDJSON: the lines of every matching file whose time lies in
// [since, until), merged in time order (equal times by agent, path and
// offset), at most max of them, then one TimelineDone with the cursor of
// the next page. level keeps lines of that severity or worse; q keeps
// lines that match, exclude drops them. A line without a time has the
// time and level of the line before it (a stack trace stays with its
// message).
//
// A file whose span in the index lies outside the range is skipped
// without being opened; the others are entered by binary search on time
// (a plain file; a .gz file is read from its start), so a window deep in
// a day-long log costs a few reads, not the day.
func (s *Server) timeline(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	tq, ok := s.parseTimeline(c)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), tq.timeout)
	defer cancel()
	c.Header("Content-Type", "application/x-ndjsonOut")
	c.Status(http.StatusOK)
	out := newNDJSONOut(c)
	done := s.runTimeline(ctx, tq, s.viewerOf(c), func(l TimelineLine) { out.write(l) })
	if c.Request.Context().Err() != nil {
		return
	}
	out.write(done)
	out.flush()
}

// ndjsonOut streams JSON lines, flushed at least every 200ms so that a slow
// query shows its results as they come.
type ndjsonOut struct {
	c         *gin.Context
	bw        *bufio.Writer
	enc       *json.Encoder
	lastFlush time.Time
}

func newNDJSONOut(c *gin.Context) *ndjsonOut {
	bw := bufio.NewWriterSize(c.Writer, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &ndjsonOut{c: c, bw: bw, enc: enc, lastFlush: time.Now()}
}

func (o *ndjsonOut) write(v any) {
	_ = o.enc.Encode(v)
	if time.Since(o.lastFlush) > 200*time.Millisecond {
		o.flush()
	}
}

func (o *ndjsonOut) flush() {
	_ = o.bw.Flush()
	o.c.Writer.Flush()
	o.lastFlush = time.Now()
}

// runTimeline hands emit the lines of the query in time order, at most
// tq.max of them, and returns the trailer.
func (s *Server) runTimeline(ctx context.Context, tq *timelineQuery, v viewer, emit func(TimelineLine)) TimelineDone {
	done := TimelineDone{Done: true}
	var entries []store.IndexEntry
	walkErr := s.idx.Walk(ctx, "", func(e store.IndexEntry) error {
		if e.Dir || (tq.agents != nil && !tq.agents[e.Agent]) || (tq.pathGlob != nil && !tq.pathGlob.Match(e.Path)) || hidden(e.Path) || !v.can(fullPath(e.Agent, e.Path), 'r') {
			return nil
		}
		done.Files++
		if span, err := s.idx.TimeSpan(e.Agent, e.Path); err == nil && skipSpan(span, e, tq) {
			done.Skipped++
			s.metrics.timelineSkipped.Inc()
			return nil
		}
		entries = append(entries, e)
		return nil
	})
	files := s.openTimelineFiles(ctx, entries, tq)
	defer func() {
		for _, f := range files {
			f.close()
		}
	}()
	done.Opened = len(files)
	s.metrics.timelineOpened.Add(float64(len(files)))
	h := tlHeap{}
	for _, f := range files {
		if f.advance(ctx) {
			h = append(h, f)
		}
	}
	heap.Init(&h)
	var last *tlKey
	for h.Len() > 0 && done.Lines < tq.max && ctx.Err() == nil {
		f := h[0]
		line := f.cur
		k := f.key()
		if f.advance(ctx) {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
		if line.LineNo == 0 {
			line.LineNo = f.number(ctx, line.Offset)
		}
		emit(line)
		done.Lines++
		last = &k
	}
	if ctx.Err() != nil || (walkErr != nil && errors.Is(walkErr, context.DeadlineExceeded)) {
		done.Reason = "timeout"
	}
	if last != nil {
		done.Last = last.encode()
		if h.Len() > 0 || done.Reason != "" {
			done.Cursor = done.Last
		}
	} else if tq.after != nil {
		done.Last = tq.after.encode()
	}
	return done
}

// timelineWorkers is how many files are opened, entered and read ahead
// at once.
const timelineWorkers = 2

// openTimelineFiles opens the files of entries and reads each one's first
// lines ahead, timelineWorkers files at once: a few lines each for a
// timeline (the merge reads on as it needs), all up to the page's size
// for a content search, whose lines are few and far apart. Files that
// cannot be opened (gone since they were indexed) are left out.
func (s *Server) openTimelineFiles(ctx context.Context, entries []store.IndexEntry, tq *timelineQuery) []*tlFile {
	ahead := 8
	if tq.q != nil {
		ahead = tq.max
	}
	out := make([]*tlFile, len(entries))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(timelineWorkers, len(entries)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				f, err := s.openTimelineFile(ctx, entries[i], tq)
				if err != nil {
					continue
				}
				f.prefetch(ctx, ahead, tq.q != nil)
				out[i] = f
			}
		}()
	}
	for i := range entries {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	files := out[:0]
	for _, f := range out {
		if f != nil {
			files = append(files, f)
		}
	}
	return files
}

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
