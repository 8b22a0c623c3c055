//go:build linux

package fuseview

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
)

// notifyBatch is how long changes are gathered before the kernel is told:
// an upload reports a change per write, and the kernel needs to hear of
// each path once. Well under the one second a change may take to show.
const notifyBatch = 30 * time.Millisecond

// notifier turns the Source's changes into kernel cache invalidations:
// the name's dentry (so the next access looks it up again) and the inode's
// attributes and pages (so an open file's fstat sees the new size). Only
// what the kernel may have cached is touched: go-fuse's inode tree mirrors
// the kernel's, so a path that is not in it needs nothing.
type notifier struct {
	root *fs.Inode

	mu      sync.Mutex
	pending map[Change]struct{}
	kick    chan struct{}
}

func newNotifier(root *fs.Inode) *notifier {
	return &notifier{root: root, pending: map[Change]struct{}{}, kick: make(chan struct{}, 1)}
}

// add queues a change; it never blocks, so a Source may call it from its
// event loop.
func (nt *notifier) add(c Change) {
	nt.mu.Lock()
	nt.pending[c] = struct{}{}
	nt.mu.Unlock()
	select {
	case nt.kick <- struct{}{}:
	default:
	}
}

// run applies queued changes until ctx is cancelled.
func (nt *notifier) run(ctx context.Context) {
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-ctx.Done():
			return
		case <-nt.kick:
		}
		t.Reset(notifyBatch)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		nt.mu.Lock()
		batch := nt.pending
		nt.pending = make(map[Change]struct{}, len(batch))
		nt.mu.Unlock()
		for c := range batch {
			nt.apply(c)
		}
	}
}

// apply invalidates what the kernel may hold for one change. Errors are
// ignored: ENOENT only means the kernel had nothing cached.
func (nt *notifier) apply(c Change) {
	if c == (Change{}) {
		nt.invalidateAll(nt.root)
		return
	}
	comps := []string{c.Agent}
	if c.Path != "" {
		comps = append(comps, strings.Split(c.Path, "/")...)
	}
	parent := nt.root
	for _, name := range comps[:len(comps)-1] {
		if parent = parent.GetChild(name); parent == nil {
			return
		}
	}
	name := comps[len(comps)-1]
	parent.NotifyEntry(name)
	if ch := parent.GetChild(name); ch != nil {
		ch.NotifyContent(0, 0)
	}
}

// invalidateAll drops every name, attribute and page below n.
func (nt *notifier) invalidateAll(n *fs.Inode) {
	n.NotifyContent(0, 0)
	for name, ch := range n.Children() {
		n.NotifyEntry(name)
		nt.invalidateAll(ch)
	}
}
