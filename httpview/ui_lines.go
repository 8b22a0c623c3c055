package httpview

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Bounds of the file view's endpoints.
const (
	// DefaultWindow and MaxWindow bound the bytes of one /api/v1/lines
	// reply: the file view reads any file a window at a time, so a 2 GiB
	// log opens as fast as a 2 KiB one.
	DefaultWindow = 256 << 10
	MaxWindow     = 4 << 20
	// lineBudget is how long a reply may spend counting lines to number a
	// window deep in a file; past it the reply says the number is not
	// known yet (the count made so far is kept for the next request).
	lineBudget = 1500 * time.Millisecond
	// gzBudget bounds decompressing a .gz file up to an offset.
	gzBudget = 10 * time.Second
	// findBudget bounds one search step in a file; the reply says where
	// it stopped so that the page can go on.
	findBudget     = 5 * time.Second
	maxFindPattern = 1024
)

// LinesJSON is a window of whole lines of a file's content
// (GET /api/v1/lines/{agent}/{path}).
type LinesJSON struct {
	// Size is the content's length (decompressed for .gz).
	Size int64 `json:"size"`
	// Start and End are the offsets of the window: Start is where the
	// first line starts, End is just after the last line's newline.
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	// FirstLine is the number of the first line (1-based); 0 while it is
	// not known yet (a window deep in a file not counted that far).
	FirstLine int64    `json:"first_line"`
	Lines     []string `json:"lines"`
	// Offsets holds where each line starts.
	Offsets []int64 `json:"offsets"`
	// Cut says the last line is longer than the window and was cut.
	Cut    bool `json:"cut,omitempty"`
	Binary bool `json:"binary,omitempty"`
	Gz     bool `json:"gz,omitempty"`
	// Levels holds each line's level, for colours (see lineLevels);
	// absent for a file without times.
	Levels []string `json:"levels,omitempty"`
}

// contentFor opens the file of a content request after the same checks as
// /raw; on failure it has answered.
func (s *Server) contentFor(c *gin.Context) (*content, bool) {
	c.Header("Cache-Control", "no-store")
	agent, rel, ok := archivePath(c)
	if !ok {
		return nil, false
	}
	if agent == "" || rel == "" || hidden(rel) || !s.viewerOf(c).can(fullPath(agent, rel), 'r') {
		apiError(c, http.StatusNotFound, "not found")
		return nil, false
	}
	ct, err := s.openContent(agent, rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || strings.Contains(err.Error(), "path escapes") {
			apiError(c, http.StatusNotFound, "not found")
			return nil, false
		}
		s.internal(c, err)
		return nil, false
	}
	return ct, true
}

func int64Param(c *gin.Context, name string) (int64, bool, bool) {
	v := c.Query(name)
	if v == "" {
		return 0, false, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		apiError(c, http.StatusBadRequest, name+" must be a non-negative integer")
		return 0, false, false
	}
	return n, true, true
}

// apiLines answers GET /api/v1/lines/{agent}/{path} with a LinesJSON:
// ?offset=O the lines starting at or after O, ?before=O the lines ending
// at or before O, ?line=N from line N, ?time=T from the first line at or
// after time T (RFC 3339), ?end=1 the last lines; &bytes=N sets the
// window (DefaultWindow, at most MaxWindow).
func (s *Server) apiLines(c *gin.Context) {
	ct, ok := s.contentFor(c)
	if !ok {
		return
	}
	defer ct.Close()
	window, ok := intParam(c, "bytes", DefaultWindow, MaxWindow)
	if !ok {
		return
	}
	offset, hasOffset, ok1 := int64Param(c, "offset")
	before, hasBefore, ok2 := int64Param(c, "before")
	line, hasLine, ok3 := int64Param(c, "line")
	if !ok1 || !ok2 || !ok3 {
		return
	}
	ctx := c.Request.Context()
	if ct.gz {
		// Decompressing up to the window costs its distance from the
		// start: a heavy operation.
		if !s.enterHeavy(c) {
			return
		}
		defer s.heavyOps.release()
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, gzBudget)
		defer cancel()
	}
	out := LinesJSON{Gz: ct.gz, Lines: []string{}, Offsets: []int64{}}
	size, err := ct.size(ctx)
	if err != nil {
		s.contentErr(c, err)
		return
	}
	out.Size = size
	if ct.binary(ctx) {
		out.Binary = true
		c.JSON(http.StatusOK, out)
		return
	}
	if tv := c.Query("time"); tv != "" && !hasLine && !hasBefore {
		// Jump to a time: the first line at or after it (the end when
		// there is none), found by binary search like the timeline.
		at, err := parseTime(tv)
		if err != nil {
			apiError(c, http.StatusBadRequest, "time: "+err.Error())
			return
		}
		off, ok, err := firstLineAt(ctx, ct, at)
		if err != nil {
			s.contentErr(c, err)
			return
		}
		offset, hasOffset = off, true
		if !ok {
			offset = size
			c.Header("X-Syncer-Time", "after-end")
		}
	}
	switch {
	case hasLine:
		start, _, err := ct.lineStart(ctx, max(line, 1))
		if err != nil {
			s.contentErr(c, err)
			return
		}
		err = s.forward(ctx, ct, &out, start, window)
		if err == nil && start > 0 {
			out.FirstLine = max(line, 1)
			if out.Start == out.End { // past the last line
				out.FirstLine = 0
				err = s.backward(ctx, ct, &out, size, window)
			}
		}
		if err != nil {
			s.contentErr(c, err)
			return
		}
	case hasBefore || c.Query("end") == "1":
		if !hasBefore || before > size {
			before = size
		}
		if err := s.backward(ctx, ct, &out, before, window); err != nil {
			s.contentErr(c, err)
			return
		}
	default:
		if !hasOffset || offset > size {
			offset = min(offset, size)
		}
		if err := s.forward(ctx, ct, &out, offset, window); err != nil {
			s.contentErr(c, err)
			return
		}
	}
	out.Levels = lineLevels(contentParser(ctx, ct), out.Lines)
	if out.FirstLine == 0 {
		lctx, cancel := context.WithTimeout(ctx, lineBudget)
		if n, err := ct.lineAt(lctx, out.Start); err == nil {
			out.FirstLine = n
		}
		cancel()
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) contentErr(c *gin.Context, err error) {
	switch {
	case c.Request.Context().Err() != nil:
		c.Abort()
	case errors.Is(err, context.DeadlineExceeded):
		apiError(c, http.StatusServiceUnavailable, "this compressed file is too large to page through here; download it instead")
	default:
		if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF) {
			apiError(c, http.StatusUnprocessableEntity, "not a valid gzip file; download it instead")
			return
		}
		s.internal(c, err)
	}
}

// forward fills out with the whole lines that start at or after off
// within window bytes.
func (s *Server) forward(ctx context.Context, ct *content, out *LinesJSON, off int64, window int) error {
	from := max(off-1, 0)
	buf := make([]byte, window+1)
	n, err := ct.readAt(ctx, buf, from)
	if err != nil {
		return err
	}
	buf = buf[:n]
	if off > 0 {
		// Start at a line start: after the newline at off-1, or after the
		// next one.
		if len(buf) > 0 && buf[0] == '\n' {
			buf, from = buf[1:], from+1
		} else if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf, from = buf[i+1:], from+int64(i)+1
		} else {
			buf, from = buf[min(1, len(buf)):], from+int64(min(1, len(buf)))
		}
	} else if len(buf) > window {
		buf = buf[:window]
	}
	out.Start = from
	atEnd := from+int64(len(buf)) >= out.Size
	lines, offs, used, cut := splitLines(buf, from, atEnd)
	out.Lines, out.Offsets, out.End, out.Cut = lines, offs, from+int64(used), cut
	return nil
}

// backward fills out with the whole lines that end at or before end
// within window bytes.
func (s *Server) backward(ctx context.Context, ct *content, out *LinesJSON, end int64, window int) error {
	from := max(end-int64(window), 0)
	buf := make([]byte, end-from)
	n, err := ct.readAt(ctx, buf, from)
	if err != nil {
		return err
	}
	buf = buf[:n]
	if from > 0 {
		// Drop the first, partial line unless it is all there is.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 && i+1 < len(buf) {
			buf, from = buf[i+1:], from+int64(i)+1
		}
	}
	out.Start = from
	lines, offs, used, cut := splitLines(buf, from, from+int64(len(buf)) >= out.Size)
	out.Lines, out.Offsets, out.End, out.Cut = lines, offs, from+int64(used), cut
	return nil
}

// splitLines splits buf, found at offset base, into lines and their
// offsets. A last line without a newline is kept at the end of the
// content; otherwise it is left for the next window, unless it is the
// only one (a line longer than the window, cut).
func splitLines(buf []byte, base int64, atEnd bool) (lines []string, offsets []int64, used int, cut bool) {
	lines, offsets = []string{}, []int64{}
	rest := buf
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if atEnd || len(lines) == 0 {
				lines = append(lines, validText(bytes.TrimSuffix(rest, []byte{'\r'})))
				offsets = append(offsets, base+int64(used))
				used += len(rest)
				cut = !atEnd
			}
			break
		}
		lines = append(lines, validText(bytes.TrimSuffix(rest[:i], []byte{'\r'})))
		offsets = append(offsets, base+int64(used))
		used += i + 1
		rest = rest[i+1:]
	}
	return lines, offsets, used, cut
}

// FindJSON is the reply of GET /api/v1/find/{agent}/{path}.
type FindJSON struct {
	Found bool `json:"found"`
	// Offset and End delimit the matching line.
	Offset int64 `json:"offset"`
	End    int64 `json:"end"`
	// Scanned is where the search stopped without a match (its time
	// budget spent, or the content's start or end reached); More says it
	// can go on from there.
	Scanned int64 `json:"scanned"`
	More    bool  `json:"more"`
}

// findPattern compiles the file view's search: q literal unless regex=1,
// case-insensitive unless case=1.
func findPattern(c *gin.Context) (*regexp.Regexp, bool) {
	q := c.Query("q")
	if q == "" || len(q) > maxFindPattern {
		apiError(c, http.StatusBadRequest, "q is required (at most 1024 bytes)")
		return nil, false
	}
	if c.Query("regex") != "1" {
		q = regexp.QuoteMeta(q)
	}
	if c.Query("case") != "1" {
		q = "(?i)" + q
	}
	re, err := regexp.Compile(q)
	if err != nil {
		apiError(c, http.StatusBadRequest, "bad regular expression: "+err.Error())
		return nil, false
	}
	return re, true
}

// apiFind answers GET /api/v1/find/{agent}/{path}?q=...&from=O&dir=next|prev
// with the first line after offset O (dir=next; lines starting at or
// after O) or the last line before it (dir=prev; lines ending at or
// before O) that matches, searched on the server so that files of any
// size can be searched. Go's regexp runs in linear time; each request is
// bounded by findBudget and says where it stopped.
func (s *Server) apiFind(c *gin.Context) {
	re, ok := findPattern(c)
	if !ok {
		return
	}
	ct, ok := s.contentFor(c)
	if !ok {
		return
	}
	defer ct.Close()
	from, _, ok := int64Param(c, "from")
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), findBudget)
	defer cancel()
	var res FindJSON
	var err error
	if c.Query("dir") == "prev" {
		if ct.gz {
			res, err = findPrevSequential(ctx, ct, re, from)
		} else {
			res, err = findPrev(ctx, ct, re, from)
		}
	} else {
		res, err = findNext(ctx, ct, re, from)
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		s.contentErr(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// eachLine calls fn with every line of the content from off (a line
// start) and its offset; lines longer than MaxGrepLine are searched in
// their first MaxGrepLine bytes. It stops when fn returns false, at the
// end, or when ctx ends (returning the offset reached).
func eachLine(ctx context.Context, ct *content, off int64, fn func(line []byte, start, end int64) bool) (int64, error) {
	r, err := ct.reader(ctx, off)
	if err != nil {
		return off, err
	}
	br := bufio.NewReaderSize(r, 256<<10)
	var long []byte
	start := off
	pos := off
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return start, ctx.Err()
		}
		line, err := br.ReadSlice('\n')
		pos += int64(len(line))
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long) < MaxGrepLine {
				long = append(long, line[:min(len(line), MaxGrepLine-len(long))]...)
			}
			continue
		}
		if long != nil {
			if len(long) < MaxGrepLine {
				long = append(long, line[:min(len(line), MaxGrepLine-len(long))]...)
			}
			line, long = long, nil
		}
		if len(line) > 0 {
			if !fn(bytes.TrimRight(line, "\r\n"), start, pos) {
				return pos, nil
			}
		}
		start = pos
		if err == io.EOF {
			return pos, nil
		}
		if err != nil {
			return pos, err
		}
	}
}

func findNext(ctx context.Context, ct *content, re *regexp.Regexp, from int64) (FindJSON, error) {
	var res FindJSON
	reached, err := eachLine(ctx, ct, from, func(line []byte, start, end int64) bool {
		if re.Match(line) {
			res = FindJSON{Found: true, Offset: start, End: end}
			return false
		}
		return true
	})
	if !res.Found {
		res.Scanned = reached
		res.More = errors.Is(err, context.DeadlineExceeded)
	}
	return res, err
}

// findPrevSequential searches backwards by reading forwards from the
// start (a .gz stream cannot be read backwards).
func findPrevSequential(ctx context.Context, ct *content, re *regexp.Regexp, before int64) (FindJSON, error) {
	var res FindJSON
	_, err := eachLine(ctx, ct, 0, func(line []byte, start, end int64) bool {
		if end > before {
			return false
		}
		if re.Match(line) {
			res = FindJSON{Found: true, Offset: start, End: end}
		}
		return true
	})
	if err != nil {
		// Cut by the budget before it reached before: whether a later
		// match lies in what it did not read is unknown. Say so (the
		// viewer asks again, as for a search cut in a plain file), never
		// "no earlier match".
		return FindJSON{Scanned: before, More: errors.Is(err, context.DeadlineExceeded)}, err
	}
	return res, nil
}

// findPrev searches a plain file backwards in chunks, each ending at a
// line end.
func findPrev(ctx context.Context, ct *content, re *regexp.Regexp, before int64) (FindJSON, error) {
	const chunk = 1 << 20
	end := min(before, ct.fi.Size())
	buf := make([]byte, chunk)
	for end > 0 {
		if err := ctx.Err(); err != nil {
			return FindJSON{Scanned: end, More: true}, err
		}
		from := max(end-chunk, 0)
		n, err := ct.f.ReadAt(buf[:end-from], from)
		if err != nil && !errors.Is(err, io.EOF) {
			return FindJSON{}, err
		}
		b := buf[:n]
		skip := 0
		if from > 0 {
			// The first line may have begun before the chunk: leave it to
			// the next chunk, unless the chunk has no line break at all.
			if i := bytes.IndexByte(b, '\n'); i >= 0 && i+1 < len(b) {
				skip = i + 1
			}
		}
		// The lines of b[skip:], last first.
		lineEnd := len(b)
		for lineEnd > skip {
			i := bytes.LastIndexByte(b[skip:lineEnd-1], '\n')
			lineStart := skip
			if i >= 0 {
				lineStart = skip + i + 1
			}
			text := bytes.TrimRight(b[lineStart:lineEnd], "\r\n")
			if len(text) > MaxGrepLine {
				text = text[:MaxGrepLine]
			}
			if re.Match(text) {
				return FindJSON{Found: true, Offset: from + int64(lineStart), End: from + int64(lineEnd)}, nil
			}
			lineEnd = lineStart
		}
		end = from + int64(skip)
		if skip == 0 {
			end = from
		}
	}
	return FindJSON{Scanned: 0}, nil
}
