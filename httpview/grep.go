package httpview

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/internal/pathglob"
	"github.com/syncer-dev/syncer/store"
)

// Bounds of a content search.
const (
	DefaultGrepMatches = 1000
	MaxGrepMatches     = 10000
	DefaultGrepTimeout = 10 * time.Second
	MaxGrepTimeout     = 60 * time.Second
	// MaxGrepLine is the longest line searched; longer lines are searched
	// in their first MaxGrepLine bytes only.
	MaxGrepLine = 1 << 20
	// grepTextMax bounds the text of one result.
	grepTextMax = 4096
)

// GrepMatch is one NDJSON line of /api/v1/grep.
type GrepMatch struct {
	Agent string `json:"agent"`
	Path  string `json:"path"`
	// PathB64 holds the exact bytes of a path that is not UTF-8 (Path then
	// shows it with replacement characters), as in directory listings.
	PathB64 string `json:"path_b64,omitempty"`
	Line    int64  `json:"line"`
	Text    string `json:"text"`
}

// GrepDone is the last NDJSON line of /api/v1/grep.
type GrepDone struct {
	Done    bool   `json:"done"`
	Matches int    `json:"matches"`
	Files   int    `json:"files"`
	Reason  string `json:"reason,omitempty"` // "limit", "timeout" or "" (complete)
}

// grepWorkers is how many files a content search reads at once.
const grepWorkers = 2

// grepJob is one file of a content search: its worker sends the file's
// matches on out, in line order, and closes it.
type grepJob struct {
	e   store.IndexEntry
	out chan GrepMatch
}

// grep answers GET /api/v1/grep?q=REGEX[&agent=ID][&path=GLOB][&max=N]
// [&timeout=DURATION] with NDJSON: one GrepMatch per matching line, then
// one GrepDone. Go's regexp runs in time linear in the input, so no
// pattern can make the server backtrack forever; the search stops at max
// matches, at the timeout, or when the client goes away.
//
// grepWorkers files are searched at once; results come in the order of
// the index walk (files), and in line order within a file, whatever the
// timing.
func (s *Server) grep(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	q := c.Query("q")
	if q == "" {
		apiError(c, http.StatusBadRequest, "q is required (a regular expression)")
		return
	}
	m, err := newLineMatcher(q)
	if err != nil {
		apiError(c, http.StatusBadRequest, "bad regular expression in q: "+err.Error())
		return
	}
	var pathGlob *pathglob.Pattern
	if pg := c.Query("path"); pg != "" {
		if pathGlob, err = compileGlob(pg); err != nil {
			apiError(c, http.StatusBadRequest, "bad glob in path: "+err.Error())
			return
		}
	}
	agent := c.Query("agent")
	if agent != "" && !archive.ValidAgentID(agent) {
		apiError(c, http.StatusBadRequest, "bad agent id")
		return
	}
	maxMatches, ok := intParam(c, "max", DefaultGrepMatches, MaxGrepMatches)
	if !ok {
		return
	}
	timeout := DefaultGrepTimeout
	if t := c.Query("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			apiError(c, http.StatusBadRequest, "timeout must be a positive duration, e.g. 30s")
			return
		}
		timeout = min(d, MaxGrepTimeout)
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), timeout)
	defer cancel()
	v := s.viewerOf(c)

	c.Header("Content-Type", "application/x-ndjson")
	c.Status(http.StatusOK)
	bw := bufio.NewWriterSize(c.Writer, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	done := GrepDone{Done: true}
	lastFlush := time.Now()
	flush := func() {
		_ = bw.Flush()
		c.Writer.Flush()
		lastFlush = time.Now()
	}

	// The walk hands files to the workers and, in the same order, to this
	// goroutine, which writes each file's matches before the next file's.
	// Workers end at the limit (ctx is cancelled), at the timeout, or when
	// the client goes away; all goroutines are gone before grep returns.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	jobs := make(chan *grepJob)
	order := make(chan *grepJob, grepWorkers+1)
	var wg sync.WaitGroup
	var walkErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		defer close(order)
		walkErr = s.idx.Walk(wctx, agent, func(e store.IndexEntry) error {
			if e.Dir || (pathGlob != nil && !pathGlob.Match(e.Path)) || !v.can(fullPath(e.Agent, e.Path), 'r') {
				return nil
			}
			j := &grepJob{e: e, out: make(chan GrepMatch, 64)}
			for _, ch := range []chan *grepJob{order, jobs} {
				select {
				case ch <- j:
				case <-wctx.Done():
					if ch == jobs {
						close(j.out) // it is in order: end it
					}
					return wctx.Err()
				}
			}
			return nil
		})
	}()
	for range grepWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				// One more than max, to tell "limit" from exactly max.
				s.grepFile(wctx, m, j.e, maxMatches+1, func(gm GrepMatch) error {
					select {
					case j.out <- gm:
						return nil
					case <-wctx.Done():
						return wctx.Err()
					}
				})
				close(j.out)
			}
		}()
	}
	limited := false
files:
	for j := range order {
		done.Files++
		for gm := range j.out {
			if done.Matches == maxMatches {
				limited = true
				break files
			}
			done.Matches++
			_ = enc.Encode(gm)
			if time.Since(lastFlush) > 200*time.Millisecond {
				flush()
			}
		}
		if time.Since(lastFlush) > 200*time.Millisecond {
			flush()
		}
	}
	stop()
	// Unblock the walk and the workers (they may wait to send) and wait.
	for j := range order {
		for range j.out {
		}
	}
	wg.Wait()
	switch {
	case limited:
		done.Reason = "limit"
	case c.Request.Context().Err() != nil:
		return // the client went away
	case ctx.Err() != nil:
		done.Reason = "timeout"
	case walkErr != nil && !errors.Is(walkErr, context.Canceled):
		s.log.Warn("grep ended early", "err", walkErr)
		done.Reason = "error"
	}
	_ = enc.Encode(done)
	flush()
}

// grepBlock is the size of the blocks a file is searched in. It must be
// at least MaxGrepLine: a line that does not fit in one block is longer
// than MaxGrepLine and searched in its first MaxGrepLine bytes only.
const grepBlock = MaxGrepLine

var grepBufs = sync.Pool{New: func() any { b := make([]byte, grepBlock); return &b }}

// grepFile reports the lines of one file that match, in order, at most
// limit of them, and stops early when emit fails or ctx ends. Files that
// look binary (a NUL in their first 8 KiB) are skipped.
//
// A line is what lies between two '\n' (or the end of the file); a line
// matches when m's pattern matches its text without the '\r' and '\n' at
// its end, and only the first MaxGrepLine bytes of a longer line count.
// The file is read in blocks of whole lines and searched a block at a time
// (see lineMatcher.searchBlock), with the same results as line by line.
func (s *Server) grepFile(ctx context.Context, m *lineMatcher, e store.IndexEntry, limit int, emit func(GrepMatch) error) {
	f, _, err := s.openArchived(e.Agent, e.Path)
	if err != nil {
		return // gone since it was indexed, or a link out of the root
	}
	defer f.Close()
	pathB64 := ""
	if !utf8.ValidString(e.Path) {
		pathB64 = base64.StdEncoding.EncodeToString([]byte(e.Path))
	}
	n := 0
	_ = m.searchReader(ctx, f, func(line int64, text []byte) error {
		if n == limit {
			return errGrepLimit
		}
		n++
		if len(text) > grepTextMax {
			text = text[:grepTextMax]
		}
		return emit(GrepMatch{Agent: e.Agent, Path: e.Path, PathB64: pathB64, Line: line, Text: validText(text)})
	})
}

var errGrepLimit = errors.New("limit")

// lineMatcher matches a regular expression against lines. The contract of
// every search method: report exactly the lines for which line.Match of
// the pattern on the line's text is true (lineMatcher.matchLine), with
// their 1-based numbers, in order.
type lineMatcher struct {
	line *regexp.Regexp // the pattern, as given: the authority on a line
	// lit is the whole pattern when it is a literal (complete is true):
	// bytes.Index finds a candidate, bytes.Contains decides.
	lit      []byte
	complete bool
	// prefix begins every match when it is not empty: bytes.Index finds
	// the candidate lines, line decides.
	prefix []byte
}

// newLineMatcher compiles pattern (Go regexp syntax, as regexp.Compile)
// and picks how blocks are searched for it.
func newLineMatcher(pattern string) (*lineMatcher, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	m := &lineMatcher{line: re}
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return m, nil // every line goes to re
	}
	if lit, ok := literalOf(tree.Simplify()); ok {
		m.lit, m.complete = []byte(lit), true
		return m, nil
	}
	// Not re.LiteralPrefix's "complete": it is also true for "^abc$".
	// A prefix with U+FFFD is left out: the pattern's U+FFFD also matches
	// invalid UTF-8, which bytes.Index would not find.
	if lit, _ := re.LiteralPrefix(); lit != "" && !strings.ContainsRune(lit, utf8.RuneError) {
		m.prefix = []byte(lit)
	}
	return m, nil
}

// literalOf returns the string re matches when it is one plain literal
// (no case folding, no U+FFFD, which also stands for invalid UTF-8).
func literalOf(re *syntax.Regexp) (string, bool) {
	switch {
	case re.Op == syntax.OpEmptyMatch:
		return "", true
	case re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0:
		for _, r := range re.Rune {
			if r == utf8.RuneError {
				return "", false
			}
		}
		return string(re.Rune), true
	}
	return "", false
}

// matchLine reports whether text, one line without its line end, matches.
func (m *lineMatcher) matchLine(text []byte) bool {
	if m.complete {
		return bytes.Contains(text, m.lit)
	}
	return m.line.Match(text)
}

// lineText is a line's text: without the '\r' and '\n' at its end.
func lineText(line []byte) []byte { return bytes.TrimRight(line, "\r\n") }

// searchReader reads r in blocks of whole lines and reports its matching
// lines (see lineMatcher) until the end, a read error, ctx's end or an
// error of emit (which it returns). An input with a NUL in its first
// 8 KiB is binary and not searched.
func (m *lineMatcher) searchReader(ctx context.Context, r io.Reader, emit func(line int64, text []byte) error) error {
	bp := grepBufs.Get().(*[]byte)
	defer grepBufs.Put(bp)
	buf := *bp
	var lineNo int64
	n, eof, first := 0, false, true
	fill := func() error {
		for n < len(buf) && !eof {
			k, err := r.Read(buf[n:])
			n += k
			if errors.Is(err, io.EOF) {
				eof = true
			} else if err != nil {
				return err
			}
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fill(); err != nil {
			return err
		}
		if first {
			first = false
			if bytes.IndexByte(buf[:min(n, 8192)], 0) >= 0 {
				return nil
			}
		}
		if n == 0 {
			return nil
		}
		end := n
		if !eof {
			end = bytes.LastIndexByte(buf[:n], '\n') + 1
		}
		if end == 0 {
			// A line longer than the buffer: its first MaxGrepLine bytes
			// count, the rest up to its '\n' is skipped.
			lineNo++
			if text := lineText(buf[:MaxGrepLine]); m.matchLine(text) {
				if err := emit(lineNo, text); err != nil {
					return err
				}
			}
			for {
				n = 0
				if err := fill(); err != nil {
					return err
				}
				if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
					n = copy(buf, buf[i+1:n])
					break
				}
				if eof {
					return nil
				}
			}
			if n == 0 && eof {
				return nil
			}
			continue
		}
		if err := m.searchBlock(buf[:end], &lineNo, emit); err != nil {
			return err
		}
		n = copy(buf, buf[end:n])
		if eof && n == 0 {
			return nil
		}
	}
}

// searchBlock reports the matching lines of block, whole lines of which
// only the last may lack its '\n' (at the end of the input); *lineNo is the
// number of lines before the block, and after it the number of lines up to
// the end of the block.
//
// With a literal, or a pattern with a literal prefix (every match begins
// with it), it finds the next occurrence with bytes.Index over the rest of
// the block, decides the line holding it alone, and goes on after that
// line; a line without the literal cannot match, so no line is skipped
// that would match alone. Newlines are counted (bytes.Count) only up to a
// candidate and over what is left after the last one.
//
// Other patterns match line by line: regexp without a literal prefix runs
// its NFA over a block, which measured slower than its backtracker on each
// line (BenchmarkLineMatcher: about 0.7x on a whole block, no better on
// 512-byte windows), so the block form of such patterns was left out.
func (m *lineMatcher) searchBlock(block []byte, lineNo *int64, emit func(line int64, text []byte) error) error {
	var find func(b []byte) int
	switch {
	case m.complete:
		find = func(b []byte) int { return bytes.Index(b, m.lit) }
	case len(m.prefix) > 0:
		find = func(b []byte) int { return bytes.Index(b, m.prefix) }
	default:
		find = func([]byte) int { return 0 } // every line is a candidate
	}
	pos := 0 // a line start
	for pos < len(block) {
		i := find(block[pos:])
		if i < 0 {
			break
		}
		at := pos + i
		if at == len(block) && block[at-1] == '\n' {
			break // an empty match after the last line
		}
		ls := pos + bytes.LastIndexByte(block[pos:at], '\n') + 1
		*lineNo += int64(bytes.Count(block[pos:ls], nl))
		le := len(block)
		if j := bytes.IndexByte(block[at:], '\n'); j >= 0 {
			le = at + j
		}
		*lineNo++
		if text := lineText(block[ls:le]); m.matchLine(text) {
			if err := emit(*lineNo, text); err != nil {
				return err
			}
		}
		pos = le + 1
	}
	if pos < len(block) {
		*lineNo += int64(bytes.Count(block[pos:], nl))
		if block[len(block)-1] != '\n' {
			*lineNo++
		}
	}
	return nil
}

var nl = []byte{'\n'}

// validText makes b a UTF-8 string (invalid bytes become U+FFFD).
func validText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
