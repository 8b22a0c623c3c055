//go:build linux

package fuseview

import "github.com/hanwen/go-fuse/v2/fs"

// The go-fuse interfaces the view implements. Each write interface is
// implemented only to answer EROFS (node_ro_linux.go). Left out on
// purpose: NodeGetxattrer and NodeListxattrer (xattrs are disabled at
// mount, the archive has none worth showing), NodeReadlinker (symlinks are
// not shown), NodeFsyncer and NodeFlusher (nothing to flush: files are
// opened with FOPEN_NOFLUSH), locks (the kernel's local locks suffice for
// a read-only view).
var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)

	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeSetxattrer     = (*node)(nil)
	_ fs.NodeRemovexattrer  = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)

	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileLookuper     = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)

	_ fs.FileReader   = (*fileHandle)(nil)
	_ fs.FileReleaser = (*fileHandle)(nil)
	_ fs.FileLseeker  = (*fileHandle)(nil)

	_ fs.FilePassthroughFder = (*passthroughHandle)(nil)

	_ fs.FileReader   = (*contentHandle)(nil)
	_ fs.FileReleaser = (*contentHandle)(nil)
)
