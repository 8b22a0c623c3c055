package ftpfs

import (
	"io"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// TestTransferHasNoCopyShortcuts: io.Copy must go through Read and Write,
// where the rate limit and the cut check are; a ReaderFrom or WriterTo on
// the handle (or sendfile/splice on an *os.File) would bypass both.
func TestTransferHasNoCopyShortcuts(t *testing.T) {
	var h ftpserver.FileTransfer = &transfer{}
	if _, ok := h.(io.ReaderFrom); ok {
		t.Error("transfer implements io.ReaderFrom")
	}
	if _, ok := h.(io.WriterTo); ok {
		t.Error("transfer implements io.WriterTo")
	}
}

func TestBurstFor(t *testing.T) {
	tests := []struct {
		rate accounts.Rate
		want int
	}{
		{1, 1},
		{1000, 1000},
		{100 << 10, 4 << 10},
		{1 << 20, 32 << 10},
		{1 << 30, 256 << 10},
	}
	for _, tt := range tests {
		if got := burstFor(tt.rate); got != tt.want {
			t.Errorf("burstFor(%d) = %d, want %d", tt.rate, got, tt.want)
		}
	}
}

func TestLoginGuard(t *testing.T) {
	g := newLoginGuard(3, time.Minute, 2*time.Minute)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < 2; i++ {
		if until := g.fail("10.0.0.1", now); !until.IsZero() {
			t.Fatalf("banned after %d failures", i+1)
		}
	}
	if _, ok := g.banned("10.0.0.1", now); ok {
		t.Fatal("banned too early")
	}
	// Failures outside the window do not count.
	if until := g.fail("10.0.0.1", now.Add(61*time.Second)); !until.IsZero() {
		t.Fatal("old failures counted")
	}
	g.fail("10.0.0.1", now.Add(62*time.Second))
	until := g.fail("10.0.0.1", now.Add(63*time.Second))
	if until.IsZero() {
		t.Fatal("not banned after 3 failures in the window")
	}
	if _, ok := g.banned("10.0.0.1", now.Add(64*time.Second)); !ok {
		t.Fatal("ban not in force")
	}
	if _, ok := g.banned("10.0.0.2", now.Add(64*time.Second)); ok {
		t.Fatal("another address banned")
	}
	if _, ok := g.banned("10.0.0.1", until); ok {
		t.Fatal("ban did not expire")
	}
	off := newLoginGuard(-1, time.Minute, 2*time.Minute)
	for i := 0; i < 10; i++ {
		if !off.fail("10.0.0.1", now).IsZero() {
			t.Fatal("disabled guard banned")
		}
	}
}
