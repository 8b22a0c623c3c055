package httpview

import (
	"bytes"
	"context"
	"time"

	"github.com/syncer-dev/syncer/internal/logfmt"
)

// levelHead is how much of a file decides its format for the file view.
const levelHead = 16 << 10

// contentParser detects the format of ct from its first bytes (nothing
// is timed in a binary file).
func contentParser(ctx context.Context, ct *content) *logfmt.Parser {
	head := make([]byte, levelHead)
	n, _ := ct.readAt(ctx, head, 0)
	if bytes.IndexByte(head[:n], 0) >= 0 {
		return logfmt.NewParser(logfmt.Unknown, logfmt.Options{})
	}
	return logfmt.Detect(head[:n], logfmt.Options{Ref: ct.fi.ModTime()})
}

// lineLevels gives each line its level for the file view's colours: the
// level's name, "" for a timed line that names none, "^" for a line
// without a time (it continues the line before: a stack trace's frame
// takes its message's colour). nil when the file has no times at all.
func lineLevels(p *logfmt.Parser, lines []string) []string {
	if p.Format() == logfmt.Unknown || len(lines) == 0 {
		return nil
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		_, lvl, ok := p.Parse([]byte(l))
		switch {
		case !ok:
			out[i] = "^"
		default:
			out[i] = lvl.String()
		}
	}
	return out
}

// liveWithin is how recent a log's last line must be for the file view to
// treat it as live: it opens at its end and follows it (as frontail and
// tail -f do), since the end is what a reader of a live log wants.
const liveWithin = 15 * time.Minute

// isLive reports whether agent's rel is a live log: not compressed, and
// its latest line (in the index's time span) less than liveWithin old.
func (s *Server) isLive(agent, rel string, gz bool) bool {
	if gz {
		return false
	}
	span, err := s.idx.TimeSpan(agent, rel)
	return err == nil && span.Known() && s.now().Sub(span.Last) < liveWithin
}
