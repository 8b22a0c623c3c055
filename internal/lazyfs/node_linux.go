package lazyfs

import (
	"context"
	"path/filepath"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose syncs are recorded and whose new inodes
// start with nothing durable.
type node struct {
	gofs.LoopbackNode
	fs *FS
}

var (
	_ gofs.NodeFsyncer        = (*node)(nil)
	_ gofs.NodeOpendirHandler = (*node)(nil)
	_ gofs.NodeCreater        = (*node)(nil)
	_ gofs.NodeMkdirer        = (*node)(nil)
	_ gofs.NodeMknoder        = (*node)(nil)
	_ gofs.NodeWrapChilder    = (*node)(nil)
	_ gofs.NodeWritever       = (*node)(nil)
	_ gofs.NodeOpener         = (*node)(nil)

	_ gofs.FilePassthroughFder = file{}

	_ gofs.FileFsyncdirer   = (*dirHandle)(nil)
	_ gofs.FileReaddirenter = (*dirHandle)(nil)
	_ gofs.FileReleasedirer = (*dirHandle)(nil)
	_ gofs.FileSeekdirer    = (*dirHandle)(nil)
)

// WrapChild makes every node below the root one of ours.
func (n *node) WrapChild(_ context.Context, ops gofs.InodeEmbedder) gofs.InodeEmbedder {
	if l, ok := ops.(*gofs.LoopbackNode); ok {
		return &node{LoopbackNode: gofs.LoopbackNode{RootData: l.RootData}, fs: n.fs} // fresh: only RootData is set yet
	}
	return ops
}

func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

func (n *node) ino() uint64 {
	if n.IsRoot() {
		return n.fs.rootIno // go-fuse numbers the root 1
	}
	return n.StableAttr().Ino
}

// Fsync records a file's data (fsync and fdatasync alike), or a
// directory's entries when the kernel asks without a directory handle.
func (n *node) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	if n.IsDir() {
		return n.fs.syncDir(n.backingPath(), n.ino())
	}
	if fh == nil {
		return syscall.EBADF
	}
	if s, ok := fh.(gofs.FileFsyncer); ok {
		if errno := s.Fsync(ctx, flags); errno != 0 {
			return errno
		}
	}
	return n.fs.syncFile(n.ino(), n.backingPath())
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	in, fh, ff, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno == 0 {
		// The kernel sends CREATE only for a name it found missing.
		n.fs.fresh(in.StableAttr().Ino)
	}
	return in, noPassthrough(fh), ff, errno
}

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	fh, ff, errno := n.LoopbackNode.Open(ctx, flags)
	return noPassthrough(fh), ff, errno
}

// file is a loopback file whose reads and writes come to the daemon: with
// FUSE passthrough the kernel would write to the backing file itself, and
// Written could not count.
type file struct{ *gofs.LoopbackFile }

func (file) PassthroughFd() (int, bool) { return -1, false }

func noPassthrough(fh gofs.FileHandle) gofs.FileHandle {
	if lf, ok := fh.(*gofs.LoopbackFile); ok {
		return file{lf}
	}
	return fh
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	in, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno == 0 {
		n.fs.fresh(in.StableAttr().Ino)
	}
	return in, errno
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	in, errno := n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
	if errno == 0 {
		n.fs.fresh(in.StableAttr().Ino)
	}
	return in, errno
}

// Writev passes writes through and counts their bytes for Written.
func (n *node) Writev(ctx context.Context, fh gofs.FileHandle, iov [][]byte, off int64) (uint32, syscall.Errno) {
	var w uint32
	var errno syscall.Errno
	if fw, ok := fh.(gofs.FileWritever); ok {
		w, errno = fw.Writev(ctx, iov, off)
	} else if fw, ok := fh.(gofs.FileWriter); ok {
		for _, b := range iov {
			var k uint32
			k, errno = fw.Write(ctx, b, off+int64(w))
			w += k
			if errno != 0 {
				break
			}
		}
	} else {
		return 0, syscall.ENOSYS
	}
	n.fs.wrote(n.Path(n.Root()), off, int64(w))
	return w, errno
}

// OpendirHandle wraps the loopback's directory handle so that fsync of
// the directory is recorded.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	fh, ff, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{ds: fh.(dirStream), n: n}, ff, 0
}

// dirStream is what the loopback's directory handle implements.
type dirStream interface {
	gofs.FileReaddirenter
	gofs.FileReleasedirer
	gofs.FileSeekdirer
	gofs.FileFsyncdirer
}

type dirHandle struct {
	ds dirStream
	n  *node
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	return d.ds.Readdirent(ctx)
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) { d.ds.Releasedir(ctx, flags) }

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return d.ds.Seekdir(ctx, off)
}

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if errno := d.ds.Fsyncdir(ctx, flags); errno != 0 {
		return errno
	}
	return d.n.fs.syncDir(d.n.backingPath(), d.n.ino())
}
