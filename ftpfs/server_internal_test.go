package ftpfs

import (
	"errors"
	"io"
	"strings"
	"testing"

	ftpserver "github.com/fclairamb/ftpserverlib"
)

// TestTransferHasNoCopyShortcuts: io.Copy must go through Read and Write,
// where the rate limit and the cut check are; a WriterTo on the handle (or
// sendfile/splice on an *os.File) would bypass both, and the ReaderFrom
// (a larger buffer for uploads) must only call Write: a cut transfer takes
// no byte through it.
func TestTransferHasNoCopyShortcuts(t *testing.T) {
	var h ftpserver.FileTransfer = &transfer{}
	cut := errors.New("cut")
	tr := &transfer{upload: true, cutErr: cut}
	if n, err := tr.ReadFrom(strings.NewReader("some data")); n != 0 || !errors.Is(err, cut) {
		t.Errorf("ReadFrom of a cut upload: %d bytes, %v; want 0, the cut", n, err)
	}
	if _, err := (&transfer{}).ReadFrom(strings.NewReader("x")); err == nil {
		t.Error("ReadFrom into a download: no error")
	}
	if _, ok := h.(io.WriterTo); ok {
		t.Error("transfer implements io.WriterTo")
	}
}
