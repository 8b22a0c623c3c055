//go:build linux

package fuseview

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// view is the state shared by every node of one mount.
type view struct {
	src  Source
	root *os.Root // the archive root
	// rootFD is the archive root's descriptor (rootDir's): openFile
	// resolves every path beneath it, so no open leaves the archive.
	// noOpenat2 is set when the kernel lacks openat2; opens then go
	// through root.
	rootDir   *os.File
	rootFD    int
	noOpenat2 atomic.Bool
	opts      Options

	// passthrough is whether new file handles offer their fd to the kernel
	// (FUSE passthrough). It starts as "the kernel offered it" and drops to
	// false for good when a read reaches us on a handle that offered it:
	// go-fuse then could not register the backing file.
	passthrough atomic.Bool
	fellBack    sync.Once

	opens, reads atomic.Int64
}

// node is one directory or file of the view: /<agent>/<rel>. The mount
// root has agent "". Names never change (the view has no rename), so a
// node's path is fixed for its life.
type node struct {
	fs.Inode
	v     *view
	agent string
	rel   string
	depth int  // 0 the root, 1 an agent, 2 and more below
	dir   bool // fixed at creation: a name that changes type gets a new node
	// ino and dev identify the archived file the node stands for: from the
	// Source, or from the first open when the Source does not know them. A
	// lookup that finds another file under the same name makes a new node.
	idMu     sync.Mutex
	ino, dev uint64
	// stale is set when an open found another file under the node's name
	// (a superseded file replaced by a new upload): the next lookup makes
	// a new node. Reusing the node would be wrong, not just old: the kernel
	// keeps one passthrough backing file per inode, so a new open would
	// read the superseded bytes.
	stale atomic.Bool
}

// sameFile reports whether the node still stands for the file with
// attributes a.
func (n *node) sameFile(a Attr) bool {
	if n.dir != a.IsDir() || n.stale.Load() {
		return false
	}
	if a.Ino == 0 {
		return true
	}
	n.idMu.Lock()
	defer n.idMu.Unlock()
	return n.ino == a.Ino && n.dev == a.Dev
}

// claimFile checks the identity of a freshly opened file against the
// node's, taking it as the node's if it had none.
func (n *node) claimFile(ino, dev uint64) bool {
	n.idMu.Lock()
	defer n.idMu.Unlock()
	if n.ino == 0 {
		n.ino, n.dev = ino, dev
		return true
	}
	return n.ino == ino && n.dev == dev
}

// childPath is the (agent, path) of name inside n.
func (n *node) childPath(name string) (agent, p string) {
	if n.depth == 0 {
		return name, ""
	}
	return n.agent, joinPath(n.rel, name)
}

// errno maps a Source error to what the kernel is told.
func (v *view) errno(op, agent, p string, err error) syscall.Errno {
	switch {
	case errors.Is(err, ErrNotExist), errors.Is(err, ErrBadPath):
		return syscall.ENOENT
	case errors.Is(err, syscall.EACCES), errors.Is(err, os.ErrPermission):
		return syscall.EACCES
	}
	v.opts.Logger.Warn("fuseview: "+op+" failed", "agent", agent, "path", p, "err", err)
	return syscall.EIO
}

// lookupAttr returns the Source's attributes of agent/p; the mount root's
// come from the archive directory itself.
func (v *view) lookupAttr(agent, p string) (Attr, error) {
	if agent == "" {
		fi, err := v.root.Stat(".")
		if err != nil {
			return Attr{}, err
		}
		return attrOf(fi), nil
	}
	return v.src.Lookup(agent, p)
}

// fillAttr copies a into out. Write bits are dropped: nothing in the view
// can be written, and saying so spares tools a failed attempt.
func (v *view) fillAttr(a Attr, out *fuse.Attr) {
	mode := uint32(a.Mode.Perm()) &^ 0o222
	if a.IsDir() {
		mode |= syscall.S_IFDIR
		out.Nlink = 2
	} else {
		mode |= syscall.S_IFREG
		out.Nlink = 1
	}
	out.Mode = mode
	out.Size = uint64(a.Size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 4096
	mt := a.MTime
	out.SetTimes(&mt, &mt, &mt)
	out.Uid, out.Gid = a.Uid, a.Gid
}

// child returns the node for name in parent with attributes a, reusing the
// existing node when it still stands for the same archived file, so that
// inode numbers stay stable for find and du.
func (v *view) child(ctx context.Context, parent *node, name string, a Attr, out *fuse.EntryOut) *fs.Inode {
	v.fillAttr(a, &out.Attr)
	if ch := parent.GetChild(name); ch != nil {
		if cn, ok := ch.Operations().(*node); ok && cn.sameFile(a) {
			return ch
		}
	}
	agent, p := parent.childPath(name)
	cn := &node{v: v, agent: agent, rel: p, depth: parent.depth + 1, dir: a.IsDir(), ino: a.Ino, dev: a.Dev}
	mode := uint32(syscall.S_IFREG)
	if cn.dir {
		mode = syscall.S_IFDIR
	}
	return parent.NewInode(ctx, cn, fs.StableAttr{Mode: mode})
}

// Lookup finds one name: one Source.Lookup, no directory walk.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.dir || !validName(name) || hidden(n.depth, name) {
		return nil, syscall.ENOENT
	}
	agent, p := n.childPath(name)
	a, err := n.v.src.Lookup(agent, p)
	if err != nil {
		return nil, n.v.errno("lookup", agent, p, err)
	}
	if n.depth == 0 && !a.IsDir() {
		return nil, syscall.ENOENT // only agents' directories live at the top
	}
	return n.v.child(ctx, n, name, a, out), 0
}

// Getattr answers stat and fstat. An fstat on an open file asks the open
// file itself, so a reader that holds a superseded version sees its size.
func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := f.(interface{ handle() *fileHandle }); ok {
		var st unix.Stat_t
		if err := unix.Fstat(h.handle().fd, &st); err != nil {
			return fs.ToErrno(err)
		}
		n.v.fillAttr(attrOfStat(&st), &out.Attr)
		return 0
	}
	a, err := n.v.lookupAttr(n.agent, n.rel)
	if err != nil {
		return n.v.errno("getattr", n.agent, n.rel, err)
	}
	n.v.fillAttr(a, &out.Attr)
	return 0
}

// Statfs reports the archive file system's figures, so df on the mount
// shows the archive's free space.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	d, err := n.v.root.Open(".")
	if err != nil {
		return fs.ToErrno(err)
	}
	defer d.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(d.Fd()), &st); err != nil {
		return fs.ToErrno(err)
	}
	out.Blocks, out.Bfree, out.Bavail = st.Blocks, st.Bfree, st.Bavail
	out.Files, out.Ffree = st.Files, st.Ffree
	out.Bsize, out.Frsize = uint32(st.Bsize), uint32(st.Frsize)
	out.NameLen = uint32(st.Namelen)
	return 0
}

// --- directories ---

// OpendirHandle reads the whole listing once; READDIRPLUS then answers
// every entry's lookup from it (dirHandle.Lookup) without asking again.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if !n.dir {
		return nil, 0, syscall.ENOTDIR
	}
	ents, errno := n.list()
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{n: n, ents: withDots(ents)}, 0, 0
}

// withDots puts "." and ".." before a listing, as every file system lists
// them (ls -a, find); go-fuse answers their lookups itself.
func withDots(ents []DirEntry) []DirEntry {
	dot := Attr{Mode: os.ModeDir}
	return append([]DirEntry{{Name: ".", Attr: dot}, {Name: "..", Attr: dot}}, ents...)
}

// list returns the node's entries, hidden and invalid names left out.
func (n *node) list() ([]DirEntry, syscall.Errno) {
	if n.depth == 0 {
		agents, err := n.v.src.Agents()
		if err != nil {
			return nil, n.v.errno("list agents", "", "", err)
		}
		ents := make([]DirEntry, 0, len(agents))
		for _, ag := range agents {
			if !validName(ag) || hidden(0, ag) {
				continue
			}
			a, err := n.v.src.Lookup(ag, "")
			if err != nil || !a.IsDir() {
				continue // vanished since the listing
			}
			ents = append(ents, DirEntry{Name: ag, Attr: a})
		}
		return ents, 0
	}
	ents, err := n.v.src.ReadDir(n.agent, n.rel)
	if err != nil {
		return nil, n.v.errno("readdir", n.agent, n.rel, err)
	}
	out := ents[:0]
	for _, e := range ents {
		if validName(e.Name) && !hidden(n.depth+1, e.Name) && (e.IsDir() || e.Mode.IsRegular()) {
			out = append(out, e)
		}
	}
	return out, 0
}

// dirHandle is an open directory: a snapshot of its listing. Offsets are
// positions in the snapshot (1-based, 0 is the start).
type dirHandle struct {
	n    *node
	mu   sync.Mutex
	ents []DirEntry
	next int // index of the next entry Readdirent returns
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.next >= len(d.ents) {
		return nil, 0
	}
	e := &d.ents[d.next]
	d.next++
	mode := uint32(syscall.S_IFREG)
	if e.IsDir() {
		mode = syscall.S_IFDIR
	}
	return &fuse.DirEntry{Name: e.Name, Mode: mode, Off: uint64(d.next)}, 0
}

// Seekdir moves to a position; 0 (rewinddir) reads the directory afresh.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 0 {
		ents, errno := d.n.list()
		if errno != 0 {
			return errno
		}
		d.ents = withDots(ents)
	}
	if off > uint64(len(d.ents)) {
		off = uint64(len(d.ents))
	}
	d.next = int(off)
	return 0
}

// Lookup answers READDIRPLUS from the listing: no second Source call.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d.mu.Lock()
	var a Attr
	found := false
	// The name is the one Readdirent produced last.
	if i := d.next - 1; i >= 0 && i < len(d.ents) && d.ents[i].Name == name {
		a, found = d.ents[i].Attr, true
	}
	d.mu.Unlock()
	if !found {
		return d.n.Lookup(ctx, name, out)
	}
	return d.n.v.child(ctx, d.n, name, a, out), 0
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {}

// --- files ---

// writeFlags are the open flags that ask for writing in any way.
const writeFlags = syscall.O_WRONLY | syscall.O_RDWR | syscall.O_APPEND | syscall.O_CREAT | syscall.O_TRUNC

// Open opens the archived file for reading. Opening for write is refused
// here as well as by the read-only mount, so the view stays read-only even
// if it were ever mounted without MS_RDONLY.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&writeFlags != 0 {
		return nil, 0, syscall.EROFS
	}
	if n.dir {
		return nil, 0, syscall.EISDIR
	}
	h, pin, errno, ok := n.openContent()
	if ok {
		return h, fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH, errno
	}
	fh, errno := n.openLocal()
	if errno != 0 {
		if pin != nil {
			pin.Close()
		}
		return nil, 0, errno
	}
	fh.pin = pin
	// KEEP_CACHE keeps pages across opens when reads go through us; the
	// kernel still drops them when the size or mtime changes and when a
	// change notification invalidates the inode. NOFLUSH: there is nothing
	// to flush on close, so the kernel need not ask.
	const fl = fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH
	if n.v.passthrough.Load() {
		return &passthroughHandle{fh}, fl, 0
	}
	return fh, fl, 0
}

// openLocal opens the archived file on the local disk.
func (n *node) openLocal() (*fileHandle, syscall.Errno) {
	// openFile cannot leave the archive root, follows no symlink and
	// does not block on a FIFO (see there); the type check below refuses
	// anything but a regular file.
	fd, err := n.v.openFile(n.agent, n.rel)
	if err != nil {
		return nil, n.v.errno("open", n.agent, n.rel, notExist(err))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fs.ToErrno(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, syscall.ENOENT
	}
	if !n.claimFile(uint64(st.Ino), uint64(st.Dev)) {
		// Another file under this name since the lookup: ESTALE makes the
		// kernel walk the path again with a fresh LOOKUP, which finds the
		// new file as a new node.
		unix.Close(fd)
		n.stale.Store(true)
		return nil, syscall.ESTALE
	}
	n.v.opens.Add(1)
	return &fileHandle{v: n.v, fd: fd}, 0
}

// fileHandle is an open archived file. It holds the bare descriptor, not
// an *os.File: nothing here needs Go's poller or finalizer, and go-fuse
// releases a handle only after the kernel is done with it.
type fileHandle struct {
	v  *view
	fd int
	// pin, when not nil, keeps the tier from evicting the file's bytes
	// while the descriptor is open (see openContent).
	pin io.Closer
}

func (h *fileHandle) handle() *fileHandle { return h }

// testHookRead, when set by a test, runs at the start of every read
// served by the daemon (to hold one up).
var testHookRead atomic.Pointer[func()]

// Read is the plain path: the kernel asks, we splice from the archived file.
func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if hook := testHookRead.Load(); hook != nil {
		(*hook)()
	}
	h.v.reads.Add(1)
	return fuse.ReadResultFd(uintptr(h.fd), off, len(dest)), 0
}

func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	err := unix.Close(h.fd)
	if h.pin != nil {
		h.pin.Close()
	}
	return fs.ToErrno(err)
}

// Lseek supports SEEK_DATA and SEEK_HOLE on the archived file.
func (h *fileHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	n, err := unix.Seek(h.fd, int64(off), int(whence))
	return uint64(n), fs.ToErrno(err)
}

// passthroughHandle offers the archived file's fd to the kernel, which then
// reads it directly (FUSE passthrough): no round trip per read.
type passthroughHandle struct{ *fileHandle }

func (p *passthroughHandle) PassthroughFd() (int, bool) { return p.fd, true }

// Read on a passthrough handle means the kernel did not take the backing
// file; from now on handles stop offering it, and this one reads plainly.
func (p *passthroughHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	p.v.fellBack.Do(func() {
		p.v.passthrough.Store(false)
		p.v.opts.Logger.Warn("fuseview: the kernel did not take a passthrough file; reading through the daemon from now on")
	})
	return p.fileHandle.Read(ctx, dest, off)
}

// timeouts converts the options to go-fuse's pointers.
func timeouts(o Options) (entry, attr, neg *time.Duration) {
	e, a, ng := o.EntryTimeout, o.AttrTimeout, o.NegativeTimeout
	return &e, &a, &ng
}
