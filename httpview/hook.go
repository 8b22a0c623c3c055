package httpview

import (
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/store"
)

// UploadHook returns the FTP server's OnUpload callback for a historian:
// every upload event goes to the index (which coalesces it and works in
// its own goroutine) and to the metrics. It never blocks the transfer.
func UploadHook(ix *store.Index, m *Metrics) func(activity.UploadEvent) {
	return func(ev activity.UploadEvent) {
		if m != nil {
			m.ObserveUpload(ev)
		}
		if ix == nil {
			return
		}
		var kind store.IngestKind
		switch ev.Kind {
		case activity.UploadOpened:
			kind = store.IngestOpened
		case activity.UploadProgress:
			kind = store.IngestProgress
		case activity.UploadClosed:
			kind = store.IngestClosed
		case activity.UploadFailed:
			kind = store.IngestFailed
		case activity.UploadSuperseded:
			kind = store.IngestSuperseded
		default:
			return
		}
		ix.Notify(store.IngestEvent{Kind: kind, Path: ev.Path, VersionPath: ev.VersionPath,
			Account: ev.User, Offset: ev.Offset, Time: ev.Time,
			Rewrite: ev.Kind == activity.UploadOpened && ev.Offset < ev.Size})
	}
}
