// Package logfmt reads the time and level of log lines in the common
// formats: RFC 3339 / ISO 8601 timestamps at the start of a line (with or
// without a zone; Python logging's default "2006-01-02 15:04:05,000",
// log4j/logback patterns, Go's log package "2006/01/02 15:04:05", nginx's
// error log), syslog RFC 3164 and RFC 5424, nginx/Apache common and
// combined access logs, Go slog's text handler and logfmt (time=, ts=, t=),
// and JSON lines with a time field (slog's JSON handler, zap, logrus,
// bunyan, Elastic's @timestamp).
//
// A file's format is decided once, from its first lines (Detect); a Parser
// then reads each line in that format. A line without a time (a stack
// trace's frames, a wrapped message) belongs to the line before it: the
// Parser reports it as not timed, and callers give it the previous line's
// time and level.
//
// # Times without a zone
//
// A timestamp without a zone (Python's default, log4j's, Go's log package,
// RFC 3164 syslog) is read in Options.Location, UTC when nil: the archive
// does not know the zone of the node that wrote the file, and UTC is what
// the viewer shows by default. RFC 3164 has no year either: it is taken
// from Options.Ref (the file's mtime), and a date more than a day after
// Ref is read as the year before (a December line in a January file).
//
// No Go library in reach does this: the module proxy serves no date-guessing
// library (araddon/dateparse and go-logfmt are not served), and those that
// exist parse one value at a time, with no notion of a file's format or of
// a level, and allocate per call.
package logfmt

import (
	"bytes"
	"time"
)

// Level is a line's severity, in syslog's order (Emerg is the most
// severe); LevelNone means the line names none.
type Level uint8

// Levels. Syslog's eight severities plus Trace; the common names map onto
// them (FATAL, PANIC and CRITICAL to Crit, WARNING to Warn, SEVERE to Error).
const (
	LevelNone Level = iota
	LevelEmerg
	LevelAlert
	LevelCrit
	LevelError
	LevelWarn
	LevelNotice
	LevelInfo
	LevelDebug
	LevelTrace
)

var levelNames = [...]string{"", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace"}

// String is the level's lower-case name ("error", "warn", ...), "" for
// LevelNone.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return ""
}

// ParseLevel reads a level name as users type it or logs write it
// (case-insensitive: "ERROR", "err", "warning", "fatal", "5" for a syslog
// severity digit is not accepted); ok is false for anything else.
func ParseLevel(s string) (Level, bool) {
	l := levelWord([]byte(s))
	return l, l != LevelNone
}

// AtLeast reports whether l is as severe as min or more (LevelNone is
// below every level).
func (l Level) AtLeast(min Level) bool {
	return l != LevelNone && l <= min
}

// Format is a log line format.
type Format uint8

// Formats, as Detect names them.
const (
	Unknown    Format = iota
	ISO               // a leading RFC 3339 / ISO 8601 timestamp (Python, log4j, logback, Go log, nginx error log)
	Syslog3164        // "<PRI>Mmm dd hh:mm:ss host tag: msg", PRI optional (rsyslog's files)
	Syslog5424        // "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG"
	CLF               // nginx/Apache common and combined: host ident user [dd/Mon/yyyy:hh:mm:ss zone] "req" status bytes
	KV                // Go slog text, logfmt: time=... level=...
	JSON              // one JSON object a line with a time field
)

var formatNames = [...]string{"unknown", "iso8601", "syslog-rfc3164", "syslog-rfc5424", "clf", "logfmt", "json"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "unknown"
}

// Options are what a Parser needs besides the line.
type Options struct {
	// Location is the zone of times that carry none; nil is UTC.
	Location *time.Location
	// Ref is the file's mtime: the year of RFC 3164 dates. Zero is now.
	Ref time.Time
}

// Parser reads lines of one format. The zero Parser reads nothing.
type Parser struct {
	f   Format
	loc *time.Location
	ref time.Time
}

// NewParser returns a Parser for lines of format f.
func NewParser(f Format, o Options) *Parser {
	p := &Parser{f: f, loc: o.Location, ref: o.Ref}
	if p.loc == nil {
		p.loc = time.UTC
	}
	if p.ref.IsZero() {
		p.ref = time.Now()
	}
	return p
}

// Format is the format the Parser reads.
func (p *Parser) Format() Format { return p.f }

// detectLines is how many lines Detect looks at.
const detectLines = 64

// Detect decides the format of a file from its head (its first bytes; a
// partial last line is ignored unless it is the only one): the format that
// reads a time from the most of the first detectLines non-empty lines, the
// earlier of the list above on a tie. A head with no timed line is Unknown;
// its Parser reads nothing.
func Detect(head []byte, o Options) *Parser {
	var counts [JSON + 1]int
	lines := 0
	probe := NewParser(Unknown, o)
	for len(head) > 0 && lines < detectLines {
		i := bytes.IndexByte(head, '\n')
		var line []byte
		if i < 0 {
			if lines > 0 {
				break
			}
			line, head = head, nil
		} else {
			line, head = head[:i], head[i+1:]
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		lines++
		for f := ISO; f <= JSON; f++ {
			probe.f = f
			if _, _, ok := probe.Parse(line); ok {
				counts[f]++
			}
		}
	}
	best := Unknown
	for f := ISO; f <= JSON; f++ {
		if counts[f] > counts[best] {
			best = f
		}
	}
	probe.f = best
	return probe
}

// Parse reads line's time and level (line without its newline). ok is
// false when the line carries no time in the Parser's format: it belongs
// to the line before it. The level may be LevelNone on a timed line.
func (p *Parser) Parse(line []byte) (t time.Time, lvl Level, ok bool) {
	t, lvl, ok = p.parse(line)
	if !ok {
		return time.Time{}, LevelNone, false
	}
	return t, lvl, true
}

func (p *Parser) parse(line []byte) (time.Time, Level, bool) {
	switch p.f {
	case ISO:
		return p.parseISOLine(line)
	case Syslog3164:
		return p.parse3164(line)
	case Syslog5424:
		return p.parse5424(line)
	case CLF:
		return p.parseCLF(line)
	case KV:
		return p.parseKV(line)
	case JSON:
		return p.parseJSON(line)
	}
	return time.Time{}, LevelNone, false
}

// Time is Parse without the level.
func (p *Parser) Time(line []byte) (time.Time, bool) {
	t, _, ok := p.Parse(line)
	return t, ok
}
