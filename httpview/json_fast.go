package httpview

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The listing of a large directory is the API's hottest reply (a page of
// up to MaxListLimit entries); it is written by hand instead of through
// encoding/json's reflection. The output is what encoding/json would
// produce for ListingJSON.

func appendListingJSON(b []byte, l *ListingJSON) []byte {
	b = append(b, `{"agent":`...)
	b = appendJSONString(b, l.Agent)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, l.Path)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, l.Type)
	b = append(b, `,"entries":[`...)
	for i := range l.Entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEntryJSON(b, &l.Entries[i])
	}
	b = append(b, ']')
	if l.Next != "" {
		b = append(b, `,"next":`...)
		b = appendJSONString(b, l.Next)
	}
	return append(b, '}')
}

func appendEntryJSON(b []byte, e *EntryJSON) []byte {
	b = append(b, `{"agent":`...)
	b = appendJSONString(b, e.Agent)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.Path)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, e.Name)
	if e.NameB64 != "" {
		b = append(b, `,"name_b64":`...)
		b = appendJSONString(b, e.NameB64)
	}
	if e.PathB64 != "" {
		b = append(b, `,"path_b64":`...)
		b = appendJSONString(b, e.PathB64)
	}
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, e.Size, 10)
	b = append(b, `,"mtime":"`...)
	b = e.Mtime.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if e.SHA256 != "" {
		b = append(b, `,"sha256":`...)
		b = appendJSONString(b, e.SHA256)
	}
	if e.Status != "" {
		b = append(b, `,"status":`...)
		b = appendJSONString(b, e.Status)
	}
	if len(e.NameFlags) > 0 {
		b = append(b, `,"name_flags":[`...)
		for i, f := range e.NameFlags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does:
// HTML-sensitive characters and U+2028/U+2029 escaped, invalid UTF-8
// replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
