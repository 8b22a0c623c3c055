package httpview

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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
