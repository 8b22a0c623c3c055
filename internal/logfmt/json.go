package logfmt

import (
	"bytes"
	"time"
)

// parseJSON reads a JSON object's top-level time field (time, ts,
// timestamp, @timestamp, t: an ISO string or Unix seconds/ms/µs/ns) and
// level (level, lvl, severity, log.level: a name, or bunyan/pino's numbers
// 10 trace ... 60 fatal). It scans without allocating and without decoding
// what it skips.
func (p *Parser) parseJSON(line []byte) (time.Time, Level, bool) {
	b := bytes.TrimLeft(line, " \t")
	if len(b) == 0 || b[0] != '{' {
		return time.Time{}, LevelNone, false
	}
	var t time.Time
	var lvl Level
	found := false
	i := 1
	for {
		i = skipWS(b, i)
		if i >= len(b) || b[i] != '"' {
			break
		}
		ks, ke, ok := jsonString(b, i)
		if !ok {
			break
		}
		key := b[ks:ke]
		i = skipWS(b, ke+1)
		if i >= len(b) || b[i] != ':' {
			break
		}
		i = skipWS(b, i+1)
		vs := i
		if i, ok = skipValue(b, i); !ok {
			break
		}
		val := b[vs:i]
		switch string(key) {
		case "time", "ts", "timestamp", "@timestamp", "t":
			if !found {
				if len(val) > 1 && val[0] == '"' {
					val = val[1 : len(val)-1]
				}
				if tt, ok := timeValue(val, p.loc); ok {
					t, found = tt, true
				}
			}
		case "level", "lvl", "severity", "log.level":
			if lvl == LevelNone {
				if len(val) > 1 && val[0] == '"' {
					lvl = levelWord(val[1 : len(val)-1])
				} else if n, ok := digits(val); ok {
					lvl = pinoLevel(n)
				}
			}
		}
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ',' {
			break
		}
		i++
	}
	return t, lvl, found
}

func pinoLevel(n int) Level {
	switch {
	case n >= 60:
		return LevelCrit
	case n >= 50:
		return LevelError
	case n >= 40:
		return LevelWarn
	case n >= 30:
		return LevelInfo
	case n >= 20:
		return LevelDebug
	case n >= 10:
		return LevelTrace
	}
	return LevelNone
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// jsonString returns the bounds of the string's contents starting at the
// quote at b[i]: b[s:e], b[e] the closing quote.
func jsonString(b []byte, i int) (s, e int, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return i + 1, j, true
		}
	}
	return 0, 0, false
}

// skipValue returns the index after the JSON value at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		_, e, ok := jsonString(b, i)
		return e + 1, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				_, e, ok := jsonString(b, j)
				if !ok {
					return j, false
				}
				j = e
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return len(b), false
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ' ' && b[j] != ']' {
		j++
	}
	return j, j > i
}
