package ftpfs

import (
	"io"
	"testing"

	ftpserver "github.com/fclairamb/ftpserverlib"
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
