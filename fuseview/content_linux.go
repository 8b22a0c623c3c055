//go:build linux

package fuseview

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/syncer-dev/syncer/internal/archive"
)

// openContent opens the file through Options.Content when it has bytes
// that are not on the local disk. ok is false when the ordinary open
// applies: no Content, or a file whose bytes are all local. Then pin, when
// not nil, is the Content's File of a local file (archive.Local), which
// the ordinary handle keeps open until its release: while it is open the
// tier evicts nothing of the file, so a passthrough descriptor, which the
// kernel reads without asking the daemon, never meets a punched hole.
func (n *node) openContent() (h fs.FileHandle, pin io.Closer, errno syscall.Errno, ok bool) {
	c := n.v.opts.Content
	if c == nil {
		return nil, nil, 0, false
	}
	f, err := c.Open(n.agent, n.rel)
	if err != nil {
		return nil, nil, 0, false // the ordinary open says why
	}
	if _, local := f.(*os.File); local {
		f.Close()
		return nil, nil, 0, false
	}
	if l, local := f.(archive.Local); local && l.IsLocal() {
		return nil, f, 0, false
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, syscall.ENOENT, true
	}
	if st, isStat := fi.Sys().(*syscall.Stat_t); isStat && !n.claimFile(st.Ino, st.Dev) {
		f.Close()
		n.stale.Store(true)
		return nil, nil, syscall.ESTALE, true
	}
	n.v.opens.Add(1)
	return &contentHandle{v: n.v, f: f}, nil, 0, true
}

// contentHandle serves a file with evicted bytes through the daemon.
type contentHandle struct {
	v *view
	f archive.File
}

func (h *contentHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.v.reads.Add(1)
	n, err := h.f.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		h.v.opts.Logger.Error("fuseview: read failed", "err", err)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *contentHandle) Release(ctx context.Context) syscall.Errno {
	return fs.ToErrno(h.f.Close())
}
