package httpview

import (
	"context"
	"encoding/base64"
	"net/http"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// grepByTime answers a content search with since, until or order=time:
// the matching lines of every file in [since, until), ordered by time
// across agents (as /api/v1/timeline orders them), each GrepMatch with
// its time and level, then a GrepDone. Files the index shows wholly
// outside the range are not read, and neither are files with no time at
// all: a search in time order finds only lines that have a time (or
// follow one). Results stream as the merge produces them.
func (s *Server) grepByTime(c *gin.Context, g *grepRequest) {
	tq, ok := s.parseTimeline(c)
	if !ok {
		return
	}
	tq.q = g.m
	tq.max, tq.timeout = g.max, g.timeout
	ctx, cancel := context.WithTimeout(c.Request.Context(), tq.timeout)
	defer cancel()
	c.Header("Content-Type", "application/x-ndjson")
	c.Status(http.StatusOK)
	out := newNDJSONOut(c)
	done := s.runTimeline(ctx, tq, s.viewerOf(c), func(l TimelineLine) {
		t := l.Time
		out.write(GrepMatch{Agent: l.Agent, Path: l.Path, PathB64: pathB64Of(l.Path), NameFlags: nameFlags(l.Path), Line: l.LineNo, Text: l.Text, Time: &t, Level: l.Level})
	})
	if c.Request.Context().Err() != nil {
		return
	}
	gd := GrepDone{Done: true, Matches: done.Lines, Files: done.Opened, Reason: done.Reason}
	if done.Lines >= tq.max && done.Cursor != "" {
		gd.Reason = "limit"
	}
	out.write(gd)
	out.flush()
}

// pathB64Of is a path's exact bytes for a path that is not UTF-8, ""
// otherwise (see GrepMatch.PathB64).
func pathB64Of(p string) string {
	if utf8.ValidString(p) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(p))
}
