package fuseview

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
)

// Sentinel errors at the package boundary; callers test them with errors.Is.
var (
	// ErrNotExist: the agent, file or directory is not in the archive (or is
	// hidden, like an agent's .syncer/ directory).
	ErrNotExist = fs.ErrNotExist
	// ErrUnsupported: the FUSE view needs Linux.
	ErrUnsupported = errors.New("the FUSE view needs Linux")
	// ErrMountpoint: the mount point is missing, not a directory, not empty
	// or already a mount point.
	ErrMountpoint = errors.New("mount point not usable")
	// ErrBadPath: a name with "/", NUL, "." or ".." in it, or not UTF-8.
	ErrBadPath = errors.New("bad archive path")
)

// Attr describes one archived file or directory. Size and MTime are the
// archived file's, exactly.
type Attr struct {
	// Mode holds the type (fs.ModeDir for directories, no type bits for
	// regular files) and the permission bits of the archived file.
	Mode  fs.FileMode
	Size  int64
	MTime time.Time
	// Uid and Gid own the archived file (0, root, when the Source does not
	// know).
	Uid, Gid uint32
	// Ino identifies the archived file (with Dev); 0 when the Source does
	// not know it. A name whose Ino changes (a file superseded by a new
	// upload) becomes a new inode in the view, so readers that hold the old
	// file open keep reading the old bytes.
	Ino, Dev uint64
}

// IsDir reports whether a is a directory.
func (a Attr) IsDir() bool { return a.Mode.IsDir() }

// DirEntry is one name in a directory listing with its attributes.
type DirEntry struct {
	Name string
	Attr
}

// Change says that something at Agent/Path appeared, grew, was replaced or
// vanished. Path is "" for the agent's own directory. The zero Change means
// that anything may have changed (events were lost): the view then drops
// everything it has cached.
type Change struct {
	Agent, Path string
}

// Source is what the view is built from: the list of agents, directory
// listings and attributes. File contents never come from a Source: the view
// opens <root>/<agent>/<path> itself, confined to the archive root.
//
// Paths are relative to the agent's directory, "/"-separated, clean, without
// a leading slash; "" is the agent's directory. Implementations are safe for
// concurrent use.
type Source interface {
	// Agents returns the agent ids, the top-level directories of the archive.
	Agents() ([]string, error)
	// Lookup returns the attributes of one file or directory, or an error
	// wrapping ErrNotExist when it is absent.
	Lookup(agent, path string) (Attr, error)
	// ReadDir lists a directory: names, types, sizes and mtimes, in any order.
	// It returns an error wrapping ErrNotExist when dir is absent.
	ReadDir(agent, dir string) ([]DirEntry, error)
	// Subscribe calls fn for every change from now on, from one goroutine
	// at a time, until cancel is called. A Source may report a change more
	// than once and may report changes that did not alter anything; it must
	// not miss a change to a path that Lookup or ReadDir has returned (or a
	// change in a directory it has listed), within a fraction of a second.
	Subscribe(fn func(Change)) (cancel func())
}

// Options tune a mount. The zero value is usable.
type Options struct {
	// EntryTimeout and AttrTimeout bound how long the kernel trusts a name
	// and its attributes without asking again (default 1s). Changes reported
	// by the Source invalidate them at once; the timeouts only bound what a
	// missed notification can cost.
	EntryTimeout, AttrTimeout time.Duration
	// NegativeTimeout bounds how long "no such file" is trusted (default 1s).
	NegativeTimeout time.Duration
	// AllowOther lets every local user read the view; the kernel still
	// checks the archived files' permission bits (default_permissions).
	AllowOther bool
	// NoPassthrough serves every read through the FUSE daemon even when
	// the kernel offers passthrough (for comparisons and debugging).
	NoPassthrough bool
	// PollSpin is how long the daemon keeps polling for the next request
	// after it has served one, before it sleeps (default 50µs; negative:
	// it sleeps at once). In a burst of requests, grep -r opening file
	// after file, the next request is taken without waking a sleeping
	// thread, which costs tens of microseconds on a virtual machine; an
	// idle mount spends nothing, as the daemon sleeps once PollSpin passes.
	// With one CPU to run on, the default is not to spin: the spinning
	// would only keep the reader of the answer from running.
	PollSpin time.Duration
	// FsName is shown as the mount's source in /proc/mounts (default "syncer").
	FsName string
	// Logger receives mount, unmount and error messages (default slog.Default()).
	Logger *slog.Logger
	// Debug logs every FUSE request (very verbose).
	Debug bool
	// Content, if set, is asked first for every open: a file it returns
	// as an *os.File (all its bytes on the local disk) is served as
	// without it (passthrough when the kernel offers it); any other file
	// (bytes evicted to the historian's storage tier) is served by the
	// daemon through it, a failed read answering EIO.
	Content archive.Opener
}

func (o Options) withDefaults() Options {
	if o.EntryTimeout <= 0 {
		o.EntryTimeout = time.Second
	}
	if o.AttrTimeout <= 0 {
		o.AttrTimeout = time.Second
	}
	if o.NegativeTimeout <= 0 {
		o.NegativeTimeout = time.Second
	}
	if o.PollSpin == 0 && runtime.NumCPU() > 1 {
		o.PollSpin = 50 * time.Microsecond
	}
	if o.FsName == "" {
		o.FsName = "syncer"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// validName reports whether name can be one path component of the view. It
// is checked on every name coming from the kernel or a Source before it is
// joined into a path, because a "/" or ".." would let a lookup walk out of
// the directory it names (the archive root is also opened with os.Root, so
// this is the first of two fences).
// Names are archived byte for byte, UTF-8 or not, so the view takes
// archive.ValidName's rule and no stricter one: a name the view refused
// would be missing from find and grep -r without a word.
func validName(name string) bool {
	return archive.ValidName(name)
}

// hidden reports whether the name at this depth is left out of the view:
// the agents' .syncer/ metadata (depth 1, inside an agent) and anything at
// the archive root that is not an agent (depth 0, e.g. a .syncer there).
func hidden(depth int, name string) bool {
	return (depth == 0 || depth == 1) && name == archive.MetaDir
}

// checkPath validates an agent-relative path: "" or clean components.
func checkPath(agent, p string) error {
	if !validName(agent) || hidden(0, agent) {
		return fmt.Errorf("agent %q: %w", agent, ErrBadPath)
	}
	if p == "" {
		return nil
	}
	for i, c := range strings.Split(p, "/") {
		if !validName(c) {
			return fmt.Errorf("path %q: %w", p, ErrBadPath)
		}
		if i == 0 && hidden(1, c) {
			return fmt.Errorf("%s/%s: %w", agent, p, ErrNotExist)
		}
	}
	return nil
}

// joinPath joins an agent-relative directory and a name.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
