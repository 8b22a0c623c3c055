package testkit

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// FreeAddr returns a loopback address ("127.0.0.1:port") that was free a
// moment ago. Another process may take it before the caller binds it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}

// FreePort is FreeAddr's port number.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitListening waits up to 10 s until something accepts on addr, and
// fails the test otherwise.
func WaitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after 10s", addr)
}

// WaitPortFree waits up to 10 s until nothing listens on the loopback
// port any more, so that a restarted server can bind it again, and fails
// the test otherwise.
func WaitPortFree(t testing.TB, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			_ = ln.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("port %d still in use after 10s", port)
}

// LockedBuffer collects a child process's output while the test reads
// it; it is safe for concurrent use. The zero value is empty and keeps
// everything; with Limit > 0 it drops what comes once it holds more
// than Limit bytes (still reporting the write as done, so the child
// never blocks).
type LockedBuffer struct {
	Limit int

	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p (or drops it, past Limit); it never fails.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Limit > 0 && b.buf.Len() > b.Limit {
		return len(p), nil
	}
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
