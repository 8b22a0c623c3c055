package historian

import (
	"strings"
	"sync"

	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/store"
)

// uploadCounter is what the upload glue counts into (httpview.Metrics).
type uploadCounter interface {
	Received(agent string, n int64)
	FileReceived(agent string)
	UploadFailed(agent string)
}

// uploads is the FTP server's OnUpload callback for a historian: every
// upload event goes to the index (which coalesces it and works in its own
// goroutine) and to the metrics. It never blocks the transfer.
type uploads struct {
	ix *store.Index
	m  uploadCounter

	mu      sync.Mutex
	written map[string]int64 // bytes reported so far per open upload path
	// superseded, if set, hears of every file renamed to a version before
	// a new upload takes its place (the storage tier moves its record);
	// set before the FTP server starts.
	superseded func(path, version string)
}

func newUploads(ix *store.Index, m uploadCounter) *uploads {
	return &uploads{ix: ix, m: m, written: map[string]int64{}}
}

// event is the OnUpload callback; the FTP server calls it from its
// transfer goroutines.
func (u *uploads) event(ev activity.UploadEvent) {
	if u.m != nil {
		u.count(ev)
	}
	if u.ix == nil {
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
		if u.superseded != nil {
			u.superseded(ev.Path, ev.VersionPath)
		}
	case activity.UploadTouched:
		kind = store.IngestTouched
	default:
		return
	}
	u.ix.Notify(store.IngestEvent{Kind: kind, Path: ev.Path, VersionPath: ev.VersionPath,
		Account: ev.User, Offset: ev.Offset, Time: ev.Time,
		Rewrite: ev.Kind == activity.UploadOpened && ev.Offset < ev.Size})
}

// count turns the running totals of the events (Written is per transfer)
// into bytes received, and counts uploads completed and failed, per agent.
func (u *uploads) count(ev activity.UploadEvent) {
	agent, _, _ := strings.Cut(strings.TrimPrefix(ev.Path, "/"), "/")
	if agent == "" {
		agent = "/"
	}
	u.mu.Lock()
	prev := u.written[ev.Path]
	delta := ev.Written - prev
	switch ev.Kind {
	case activity.UploadOpened:
		u.written[ev.Path] = ev.Written
		delta = ev.Written
	case activity.UploadProgress:
		u.written[ev.Path] = ev.Written
	case activity.UploadClosed, activity.UploadFailed:
		delete(u.written, ev.Path)
	default:
		delta = 0
	}
	u.mu.Unlock()
	u.m.Received(agent, delta)
	switch ev.Kind {
	case activity.UploadClosed:
		u.m.FileReceived(agent)
	case activity.UploadFailed:
		u.m.UploadFailed(agent)
	}
}
