package ftpfs

import (
	"io"
	"testing"

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
