package logfmt

import (
	"bytes"
	"math"
	"time"
)

// parseISO reads an ISO 8601 / RFC 3339 timestamp at the start of b:
// YYYY-MM-DD or YYYY/MM/DD, then 'T' or a space, hh:mm:ss, an optional
// fraction after '.' or ',', an optional zone (Z, ±hh:mm, ±hhmm, ±hh,
// the numeric ones also after one space). n is the bytes read. Without a
// zone the time is in loc.
func parseISO(b []byte, loc *time.Location) (t time.Time, n int, ok bool) {
	if len(b) < 19 {
		return time.Time{}, 0, false
	}
	year, ok1 := digits(b[0:4])
	sep := b[4]
	if !ok1 || (sep != '-' && sep != '/') || b[7] != sep {
		return time.Time{}, 0, false
	}
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	if !ok2 || !ok3 || (b[10] != 'T' && b[10] != ' ' && b[10] != 't') {
		return time.Time{}, 0, false
	}
	hour, min, sec, ok4 := clock(b[11:19])
	if !ok4 || month < 1 || month > 12 || day < 1 || day > 31 {
		return time.Time{}, 0, false
	}
	n = 19
	nsec := 0
	if n < len(b) && (b[n] == '.' || b[n] == ',') && n+1 < len(b) && isDigit(b[n+1]) {
		n++
		scale := 100000000
		for n < len(b) && isDigit(b[n]) {
			nsec += int(b[n]-'0') * scale
			scale /= 10
			n++
		}
	}
	zone := loc
	if n < len(b) {
		if b[n] == 'Z' || b[n] == 'z' {
			zone = time.UTC
			n++
		} else if z, zn, ok := numericZone(b[n:]); ok {
			zone = z
			n += zn
		} else if b[n] == ' ' {
			if z, zn, ok := numericZone(b[n+1:]); ok && zn >= 5 {
				zone = z
				n += 1 + zn
			}
		}
	}
	t = time.Date(year, time.Month(month), day, hour, min, sec, nsec, zone)
	if t.Day() != day && sec < 60 {
		return time.Time{}, 0, false // February 30th
	}
	return t, n, true
}

// numericZone reads ±hh:mm, ±hhmm or ±hh.
func numericZone(b []byte) (*time.Location, int, bool) {
	if len(b) < 3 || (b[0] != '+' && b[0] != '-') {
		return nil, 0, false
	}
	h, ok := digits(b[1:3])
	if !ok || h > 14 {
		return nil, 0, false
	}
	m, n := 0, 3
	switch {
	case len(b) >= 6 && b[3] == ':':
		if m, ok = digits(b[4:6]); !ok {
			return nil, 0, false
		}
		n = 6
	case len(b) >= 5 && isDigit(b[3]) && isDigit(b[4]):
		m, _ = digits(b[3:5])
		n = 5
	}
	if n < len(b) && isDigit(b[n]) || m > 59 {
		return nil, 0, false
	}
	off := h*3600 + m*60
	if b[0] == '-' {
		off = -off
	}
	if off == 0 {
		return time.UTC, n, true
	}
	return time.FixedZone("", off), n, true
}

// clock reads hh:mm:ss.
func clock(b []byte) (h, m, s int, ok bool) {
	if len(b) < 8 || b[2] != ':' || b[5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := digits(b[0:2])
	m, ok2 := digits(b[3:5])
	s, ok3 := digits(b[6:8])
	return h, m, s, ok1 && ok2 && ok3 && h < 24 && m < 60 && s <= 60
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

// parseISOLine: a leading timestamp, maybe in brackets; the level is the
// first level word among the next few tokens.
func (p *Parser) parseISOLine(line []byte) (time.Time, Level, bool) {
	b := line
	if len(b) > 0 && b[0] == '[' {
		b = b[1:]
	}
	t, n, ok := parseISO(b, p.loc)
	if !ok {
		return time.Time{}, LevelNone, false
	}
	if n < len(b) && b[n] != ' ' && b[n] != ']' && b[n] != '\t' && b[n] != '|' && b[n] != ':' {
		return time.Time{}, LevelNone, false
	}
	return t, levelAfter(b[n:]), true
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func month3(b []byte) (time.Month, bool) {
	if len(b) < 3 {
		return 0, false
	}
	for i, m := range months {
		if b[0] == m[0] && b[1] == m[1] && b[2] == m[2] {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

// pri reads a syslog "<PRI>" and returns the severity's level.
func pri(b []byte) (Level, int, bool) {
	if len(b) < 3 || b[0] != '<' {
		return LevelNone, 0, false
	}
	i := bytes.IndexByte(b[:min(len(b), 5)], '>')
	if i < 2 {
		return LevelNone, 0, false
	}
	v, ok := digits(b[1:i])
	if !ok || v > 191 {
		return LevelNone, 0, false
	}
	return Level(v%8) + LevelEmerg, i + 1, true
}

// parse3164: "[<PRI>]Mmm dd hh:mm:ss host tag: msg" (dd space-padded).
func (p *Parser) parse3164(line []byte) (time.Time, Level, bool) {
	b := line
	lvl, n, hasPri := pri(b)
	b = b[n:]
	if len(b) < 15 || b[3] != ' ' || b[6] != ' ' {
		return time.Time{}, LevelNone, false
	}
	mon, ok := month3(b)
	if !ok {
		return time.Time{}, LevelNone, false
	}
	dd := b[4:6]
	if dd[0] == ' ' {
		dd = dd[1:]
	}
	day, ok := digits(dd)
	if !ok || day < 1 || day > 31 {
		return time.Time{}, LevelNone, false
	}
	h, m, s, ok := clock(b[7:15])
	if !ok || (len(b) > 15 && b[15] != ' ') {
		return time.Time{}, LevelNone, false
	}
	ref := p.ref.In(p.loc)
	t := time.Date(ref.Year(), mon, day, h, m, s, 0, p.loc)
	if t.After(ref.Add(24 * time.Hour)) {
		t = t.AddDate(-1, 0, 0)
	}
	if !hasPri {
		lvl = levelAfter(skipTag(b[15:]))
	}
	return t, lvl, true
}

// skipTag skips " host tag:" of a syslog line: the level, if any, is in
// the message.
func skipTag(b []byte) []byte {
	if i := bytes.Index(b, []byte(": ")); i >= 0 && i < 96 {
		return b[i+1:]
	}
	return b
}

// parse5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG".
func (p *Parser) parse5424(line []byte) (time.Time, Level, bool) {
	lvl, n, ok := pri(line)
	if !ok || len(line) < n+2 || line[n] != '1' || line[n+1] != ' ' {
		return time.Time{}, LevelNone, false
	}
	t, _, ok := parseISO(line[n+2:], p.loc)
	if !ok {
		return time.Time{}, LevelNone, false
	}
	return t, lvl, true
}

// parseCLF: host ident user [dd/Mon/yyyy:hh:mm:ss ±hhmm] "request" status
// bytes [...]; the level is the status class (5xx error, 4xx warn, info).
func (p *Parser) parseCLF(line []byte) (time.Time, Level, bool) {
	i := bytes.Index(line, []byte(" ["))
	if i < 0 || i > 512 || bytes.Count(line[:i], []byte(" ")) < 2 {
		return time.Time{}, LevelNone, false
	}
	b := line[i+2:]
	if len(b) < 27 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[20] != ' ' || b[26] != ']' {
		return time.Time{}, LevelNone, false
	}
	day, ok1 := digits(b[0:2])
	mon, ok2 := month3(b[3:6])
	year, ok3 := digits(b[7:11])
	h, m, s, ok4 := clock(b[12:20])
	z, zn, ok5 := numericZone(b[21:26])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || zn != 5 || day < 1 || day > 31 {
		return time.Time{}, LevelNone, false
	}
	t := time.Date(year, mon, day, h, m, s, 0, z)
	lvl := LevelInfo
	rest := b[27:]
	if len(rest) > 1 && rest[0] == ' ' && rest[1] == '"' {
		if j := bytes.Index(rest[2:], []byte("\" ")); j >= 0 {
			st := rest[2+j+2:]
			if len(st) >= 3 && isDigit(st[0]) && isDigit(st[1]) && isDigit(st[2]) {
				switch st[0] {
				case '5':
					lvl = LevelError
				case '4':
					lvl = LevelWarn
				}
			}
		}
	}
	return t, lvl, true
}

// parseKV: logfmt and Go slog's text handler: key=value pairs, the time
// under time, ts, t or timestamp, the level under level, lvl or severity.
func (p *Parser) parseKV(line []byte) (time.Time, Level, bool) {
	var t time.Time
	var lvl Level
	found := false
	b := line
	for len(b) > 0 {
		for len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
		eq := bytes.IndexByte(b, '=')
		sp := bytes.IndexByte(b, ' ')
		if eq <= 0 || (sp >= 0 && sp < eq) {
			if sp < 0 {
				break
			}
			b = b[sp:]
			continue
		}
		key := b[:eq]
		b = b[eq+1:]
		var val []byte
		if len(b) > 0 && b[0] == '"' {
			end := 1
			for end < len(b) && b[end] != '"' {
				if b[end] == '\\' {
					end++
				}
				end++
			}
			val = b[1:min(end, len(b))]
			b = b[min(end+1, len(b)):]
		} else {
			sp := bytes.IndexByte(b, ' ')
			if sp < 0 {
				sp = len(b)
			}
			val, b = b[:sp], b[sp:]
		}
		switch string(key) {
		case "time", "ts", "t", "timestamp":
			if !found {
				if tt, ok := timeValue(val, p.loc); ok {
					t, found = tt, true
				}
			}
		case "level", "lvl", "severity":
			if lvl == LevelNone {
				lvl = levelWord(val)
			}
		}
		if found && lvl != LevelNone {
			break
		}
	}
	return t, lvl, found
}

// timeValue reads a time field's value: an ISO 8601 timestamp (nothing
// after it) or Unix seconds, milliseconds, microseconds or nanoseconds.
func timeValue(v []byte, loc *time.Location) (time.Time, bool) {
	if t, n, ok := parseISO(v, loc); ok && n == len(v) {
		return t, true
	}
	f, ok := number(v)
	if !ok || f < 1e8 {
		return time.Time{}, false
	}
	switch {
	case f >= 1e17:
		return time.Unix(0, int64(f)).UTC(), true
	case f >= 1e14:
		return time.UnixMicro(int64(f)).UTC(), true
	case f >= 1e11:
		return time.UnixMilli(int64(f)).UTC(), true
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// number reads a plain decimal number (digits, one optional '.').
func number(v []byte) (float64, bool) {
	if len(v) == 0 || len(v) > 24 {
		return 0, false
	}
	var f float64
	scale := 0.0
	for _, c := range v {
		switch {
		case isDigit(c) && scale == 0:
			f = f*10 + float64(c-'0')
		case isDigit(c):
			f += float64(c-'0') * scale
			scale /= 10
		case c == '.' && scale == 0:
			scale = 0.1
		default:
			return 0, false
		}
	}
	return f, true
}

// levelAfter finds the level in the first tokens after a timestamp: the
// first token in any case ("info", "[error]", "ERROR:"), later ones only
// in capitals or brackets ("[main] ERROR", "- myapp - WARNING -"), so
// that "connection error" in a message is not taken for a level.
func levelAfter(b []byte) Level {
	for i := 0; i < 6 && len(b) > 0; {
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '|') {
			b = b[1:]
		}
		end := bytes.IndexAny(b, " \t")
		if end < 0 {
			end = len(b)
		}
		tok := b[:end]
		b = b[end:]
		if len(tok) == 0 || (len(tok) == 1 && (tok[0] == '-' || tok[0] == ']')) {
			continue
		}
		bracket := tok[0] == '[' || tok[0] == '<' || tok[0] == '('
		tok = bytes.Trim(tok, "[]<>():,")
		if i == 0 || bracket || upper(tok) {
			if l := levelWord(tok); l != LevelNone {
				return l
			}
		}
		i++
	}
	return LevelNone
}

func upper(b []byte) bool {
	for _, c := range b {
		if c >= 'a' && c <= 'z' {
			return false
		}
	}
	return len(b) > 0
}

// levelWord maps a level name, any case, to its Level.
func levelWord(b []byte) Level {
	if len(b) == 0 || len(b) > 11 {
		return LevelNone
	}
	var buf [11]byte
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(b)]) {
	case "emerg", "emergency":
		return LevelEmerg
	case "alert":
		return LevelAlert
	case "crit", "critical", "fatal", "fata", "panic", "dpanic":
		return LevelCrit
	case "err", "error", "erro", "eror", "severe":
		return LevelError
	case "warn", "warning", "wrn":
		return LevelWarn
	case "notice":
		return LevelNotice
	case "info", "inf", "information", "informational":
		return LevelInfo
	case "debug", "dbg", "debu", "fine":
		return LevelDebug
	case "trace", "trc", "finer", "finest":
		return LevelTrace
	}
	return LevelNone
}
