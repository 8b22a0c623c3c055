package httpview

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/gobwas/glob"

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
	Line  int64  `json:"line"`
	Text  string `json:"text"`
}

// GrepDone is the last NDJSON line of /api/v1/grep.
type GrepDone struct {
	Done    bool   `json:"done"`
	Matches int    `json:"matches"`
	Files   int    `json:"files"`
	Reason  string `json:"reason,omitempty"` // "limit", "timeout" or "" (complete)
}

// grep answers GET /api/v1/grep?q=REGEX[&agent=ID][&path=GLOB][&max=N]
// [&timeout=DURATION] with NDJSON: one GrepMatch per matching line, then
// one GrepDone. Go's regexp runs in time linear in the input, so no
// pattern can make the server backtrack forever; the search stops at max
// matches, at the timeout, or when the client goes away.
func (s *Server) grep(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	q := c.Query("q")
	if q == "" {
		apiError(c, http.StatusBadRequest, "q is required (a regular expression)")
		return
	}
	re, err := regexp.Compile(q)
	if err != nil {
		apiError(c, http.StatusBadRequest, "bad regular expression in q: "+err.Error())
		return
	}
	var pathGlob *glob.Pattern
	if pg := c.Query("path"); pg != "" {
		if pathGlob, err = compileGlob(pg); err != nil {
			apiError(c, http.StatusBadRequest, "bad glob in path: "+err.Error())
			return
		}
	}
	agent := c.Query("agent")
	if agent != "" && !store.ValidAgentID(agent) {
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
	errLimit := errors.New("limit")
	lastFlush := time.Now()
	flush := func() {
		_ = bw.Flush()
		c.Writer.Flush()
		lastFlush = time.Now()
	}
	walkErr := s.idx.Walk(ctx, agent, func(e store.IndexEntry) error {
		if e.Dir || (pathGlob != nil && !pathGlob.Match(e.Path)) || !v.can(fullPath(e.Agent, e.Path), 'r') {
			return nil
		}
		done.Files++
		err := s.grepFile(ctx, re, e, func(m GrepMatch) error {
			if done.Matches == maxMatches {
				return errLimit
			}
			done.Matches++
			return enc.Encode(m)
		})
		if time.Since(lastFlush) > 200*time.Millisecond {
			flush()
		}
		return err
	})
	switch {
	case errors.Is(walkErr, errLimit):
		done.Reason = "limit"
	case c.Request.Context().Err() != nil:
		return // the client went away
	case errors.Is(walkErr, context.DeadlineExceeded) || ctx.Err() != nil:
		done.Reason = "timeout"
	case walkErr != nil:
		s.log.Warn("grep ended early", "err", walkErr)
		done.Reason = "error"
	}
	_ = enc.Encode(done)
	flush()
}

// grepFile reports the lines of one file that match re. Files that look
// binary (a NUL in their first block) are skipped.
func (s *Server) grepFile(ctx context.Context, re *regexp.Regexp, e store.IndexEntry, emit func(GrepMatch) error) error {
	f, _, err := s.openArchived(e.Agent, e.Path)
	if err != nil {
		return nil // gone since it was indexed, or a link out of the root
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	if head, _ := br.Peek(8192); bytes.IndexByte(head, 0) >= 0 {
		return nil
	}
	var long []byte
	var lineNo int64
	for {
		line, err := br.ReadSlice('\n')
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
			lineNo++
			if lineNo%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			text := bytes.TrimRight(line, "\r\n")
			if re.Match(text) {
				if len(text) > grepTextMax {
					text = text[:grepTextMax]
				}
				if err := emit(GrepMatch{Agent: e.Agent, Path: e.Path, Line: lineNo, Text: validText(text)}); err != nil {
					return err
				}
			}
		}
		if err == io.EOF {
			return ctx.Err()
		}
		if err != nil {
			return nil
		}
	}
}

// validText makes b a UTF-8 string (invalid bytes become U+FFFD).
func validText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
