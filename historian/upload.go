package historian

import (
	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/httpview"
	"github.com/syncer-dev/syncer/store"
)

// uploadHook returns the FTP server's OnUpload callback for a historian:
// every upload event goes to the index (which coalesces it and works in
// its own goroutine) and to the metrics. It never blocks the transfer.
func uploadHook(ix *store.Index, m *httpview.Metrics) func(ftpfs.UploadEvent) {
	return func(ev ftpfs.UploadEvent) {
		if m != nil {
			m.ObserveUpload(ev)
		}
		if ix == nil {
			return
		}
		var kind store.IngestKind
		switch ev.Kind {
		case ftpfs.UploadOpened:
			kind = store.IngestOpened
		case ftpfs.UploadProgress:
			kind = store.IngestProgress
		case ftpfs.UploadClosed:
			kind = store.IngestClosed
		case ftpfs.UploadFailed:
			kind = store.IngestFailed
		case ftpfs.UploadSuperseded:
			kind = store.IngestSuperseded
		default:
			return
		}
		ix.Notify(store.IngestEvent{Kind: kind, Path: ev.Path, VersionPath: ev.VersionPath,
			Account: ev.User, Offset: ev.Offset, Time: ev.Time,
			Rewrite: ev.Kind == ftpfs.UploadOpened && ev.Offset < ev.Size})
	}
}
