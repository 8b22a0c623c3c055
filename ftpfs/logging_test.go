package ftpfs

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestQuietDisconnects: ftpserverlib's warnings about connections the
// peer closed are DEBUG; its other warnings stay WARN.
func TestQuietDisconnects(t *testing.T) {
	var buf lockedBuf
	log := slog.New(quietDisconnects{slog.NewTextHandler(&buf, nil)}).With("component", "ftpserverlib")
	peer := []error{
		errors.New("tls: failed to send closeNotify alert (but connection was closed anyway): write tcp 127.0.0.1:2121->127.0.0.1:5000: write: broken pipe"),
		fmt.Errorf("close: %w", net.ErrClosed),
		&net.OpError{Op: "write", Err: syscall.EPIPE},
		&net.OpError{Op: "read", Err: syscall.ECONNRESET},
	}
	for _, err := range peer {
		log.Warn("Problem disconnecting client on end", "err", err)
	}
	log.Warn("Unknown command", "command", "XYZ")
	log.Warn("Problem closing a transfer", "err", errors.New("disk quota exceeded"))
	out := buf.String()
	if n := strings.Count(out, "level=WARN"); n != 2 || strings.Contains(out, "closeNotify") || strings.Contains(out, "broken pipe") {
		t.Errorf("want only the 2 real warnings, got:\n%s", out)
	}
}

// TestActivitySummary: single logins and uploads are DEBUG; the summary
// sums them up at INFO, and says nothing for a quiet period.
func TestActivitySummary(t *testing.T) {
	var buf lockedBuf
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var a activityCounts
	a.summarize(log, time.Minute)
	if buf.String() != "" {
		t.Fatalf("a quiet minute logged: %s", buf.String())
	}
	a.login("node1")
	a.login("node2")
	a.login("node1")
	a.uploads.Add(7)
	a.uploadBytes.Add(4096)
	a.summarize(log, time.Minute)
	want := "msg=activity period=1m0s uploads=7 bytes=4096 upload_failures=0 logins=3 accounts=2"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("summary %q, want %q", buf.String(), want)
	}
	a.summarize(log, time.Minute)
	if strings.Count(buf.String(), "msg=activity") != 1 {
		t.Errorf("counts not reset: %s", buf.String())
	}
}
