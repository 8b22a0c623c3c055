package ftpfs

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Hello is what syncer's server tells a client that logged in, in its
// reply to PASS: its version and its clock. Other servers tell neither.
type Hello struct {
	// Text is the reply's text as the server sent it ("" when the client
	// did not see it).
	Text string
	// Version is the server's version; "" when it is not syncer's server
	// or did not say.
	Version string
	// Time is the server's clock when it answered; zero when it did not
	// say.
	Time time.Time
}

const helloServer = "syncer historian "

// helloText is syncer's server's reply to a successful PASS.
func helloText(user, version string, now time.Time) string {
	if version == "" {
		version = "unknown"
	}
	return fmt.Sprintf("Logged in as %s; %s%s; time %s", user, helloServer, version, now.UTC().Format(time.RFC3339Nano))
}

// ParseHello reads a reply to PASS; fields it does not find stay empty.
func ParseHello(text string) Hello {
	h := Hello{Text: text}
	for _, part := range strings.Split(text, ";") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, helloServer); ok {
			h.Version = v
		} else if v, ok := strings.CutPrefix(part, "time "); ok {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				h.Time = t
			}
		}
	}
	return h
}

// helloTap sees the control connection's plain text while the client logs
// in (jlaffaye/ftp's debug output, which it places after TLS) and keeps
// only the text of the 230 reply. Everything else, the PASS command
// included, is dropped line by line as it passes; once the login is over
// the tap drops everything at once.
type helloTap struct {
	mu   sync.Mutex
	line []byte
	text string
	done bool
}

func (t *helloTap) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return len(p), nil
	}
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(t.line) < 4096 {
				t.line = append(t.line, rest...)
			}
			break
		}
		t.line = append(t.line, rest[:i]...)
		if l := strings.TrimRight(string(t.line), "\r"); strings.HasPrefix(l, "230 ") {
			t.text = l[4:]
		}
		clear(t.line) // it may have held the PASS command
		t.line = t.line[:0]
		rest = rest[i+1:]
	}
	return len(p), nil
}

// finish stops the tap and returns the 230 reply's text.
func (t *helloTap) finish() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done = true
	clear(t.line)
	t.line = nil
	return t.text
}
