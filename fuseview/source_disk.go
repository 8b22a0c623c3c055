package fuseview

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// DiskSource is a Source read straight from the archive directory: a
// listing is one ReadDir of the backing directory (plus one fstatat per
// entry), every Lookup one lstat. Changes come from fsnotify watches, added
// lazily on the directories that were listed or looked into, because only
// those can be in the kernel's caches. Only directories and regular files
// are shown: a symlink, FIFO or device in the archive is none of the
// agents' doing and is left out (a FIFO would hang a grep -r).
//
// Listings of watched directories are kept until a change is reported in
// them (see listingCache): find and grep -r list every directory on every
// run, and a watched directory cannot change without an event.
type DiskSource struct {
	dir  string // absolute archive root
	root *os.Root
	log  *slog.Logger

	mu       sync.Mutex
	subs     map[int]func(Change)
	nextSub  int
	watcher  *fsnotify.Watcher
	watched  map[string]bool // archive-relative directories with a watch
	listings listingCache
	warned   bool // the watch-limit warning was logged
	closed   bool
	loopDone chan struct{}
}

var _ Source = (*DiskSource)(nil)

// NewDiskSource opens the archive directory root. Close releases it.
func NewDiskSource(root string, log *slog.Logger) (*DiskSource, error) {
	if log == nil {
		log = slog.Default()
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("archive root %s: %w", root, err)
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("archive root: %w", err)
	}
	return &DiskSource{dir: abs, root: r, log: log, subs: map[int]func(Change){}, watched: map[string]bool{}}, nil
}

// Close stops the watches and releases the archive directory. Subscribers
// get no more changes.
func (s *DiskSource) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	w, done := s.watcher, s.loopDone
	s.mu.Unlock()
	if w != nil {
		w.Close()
		<-done
	}
	return s.root.Close()
}

// Agents lists the archive's top-level directories.
func (s *DiskSource) Agents() ([]string, error) {
	ents, err := s.ReadDir("", "")
	if err != nil {
		return nil, err
	}
	var agents []string
	for _, e := range ents {
		if e.IsDir() {
			agents = append(agents, e.Name)
		}
	}
	sort.Strings(agents)
	return agents, nil
}

// rel is the archive-relative path of agent/p ("." for the root).
func rel(agent, p string) string {
	switch {
	case agent == "":
		return "."
	case p == "":
		return agent
	}
	return agent + "/" + p
}

// Lookup stats one file or directory.
func (s *DiskSource) Lookup(agent, p string) (Attr, error) {
	if agent == "" && p == "" {
		fi, err := s.root.Stat(".")
		if err != nil {
			return Attr{}, fmt.Errorf("archive root: %w", err)
		}
		return attrOf(fi), nil
	}
	if err := checkPath(agent, p); err != nil {
		return Attr{}, err
	}
	r := rel(agent, p)
	s.watch(filepath.ToSlash(filepath.Dir(r)))
	fi, err := s.root.Lstat(r)
	if err != nil {
		return Attr{}, fmt.Errorf("lookup %s: %w", r, notExist(err))
	}
	if !shown(fi.Mode()) {
		return Attr{}, fmt.Errorf("lookup %s: not a file or directory: %w", r, ErrNotExist)
	}
	return attrOf(fi), nil
}

// ReadDir lists one directory; agent "" lists the archive root.
func (s *DiskSource) ReadDir(agent, dir string) ([]DirEntry, error) {
	depth := 0
	if agent != "" {
		if err := checkPath(agent, dir); err != nil {
			return nil, err
		}
		depth = 1 + strings.Count(dir, "/")
		if dir != "" {
			depth++
		}
	}
	r := rel(agent, dir)
	s.watch(r)
	s.mu.Lock()
	ents, ok := s.listings.get(r)
	gen := s.listings.gen
	s.mu.Unlock()
	if ok {
		return ents, nil
	}
	f, err := s.root.Open(r)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r, notExist(err))
	}
	defer f.Close()
	ents, err = readDirAttrs(s.root, r, f)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r, notExist(err))
	}
	out := ents[:0]
	for _, e := range ents {
		if validName(e.Name) && !hidden(depth, e.Name) && shown(e.Mode) {
			out = append(out, e)
		}
	}
	s.mu.Lock()
	// Only a watched directory is kept: its changes are reported, and they
	// drop the listing. A change reported while it was read (gen moved)
	// may be missing from it: it is not kept then.
	if s.watched[r] && s.listings.gen == gen {
		s.listings.put(r, out)
	}
	s.mu.Unlock()
	return out, nil
}

// maxListed bounds the entries kept in listings (about 120 bytes each, so
// some 30 MiB). Past it the kept listings are all dropped and gathered
// again: a crude bound, but a tree that large is listed from disk as
// before rather than held in memory.
const maxListed = 1 << 18

// listingCache holds directory listings by archive-relative path. Guarded
// by DiskSource.mu. Callers get copies: they filter listings in place.
type listingCache struct {
	dirs map[string][]DirEntry
	n    int // entries held
	// gen counts the changes reported; a listing read across one is not
	// kept.
	gen uint64
}

func (c *listingCache) get(r string) ([]DirEntry, bool) {
	ents, ok := c.dirs[r]
	if !ok {
		return nil, false
	}
	return append([]DirEntry(nil), ents...), true
}

func (c *listingCache) put(r string, ents []DirEntry) {
	if c.dirs == nil {
		c.dirs = map[string][]DirEntry{}
	}
	c.drop(r)
	if c.n+len(ents) > maxListed {
		c.dropAll()
	}
	c.dirs[r] = append([]DirEntry(nil), ents...)
	c.n += len(ents)
}

// changed drops what a change to r (archive-relative) may have altered:
// the listing of its directory and, if r is a directory that was removed
// or renamed (tree), the listings at and under r.
func (c *listingCache) changed(r string, tree bool) {
	c.gen++
	c.drop(path.Dir(r))
	if !tree {
		return
	}
	for d := range c.dirs {
		if d == r || strings.HasPrefix(d, r+"/") {
			c.drop(d)
		}
	}
}

func (c *listingCache) drop(r string) {
	if ents, ok := c.dirs[r]; ok {
		c.n -= len(ents)
		delete(c.dirs, r)
	}
}

func (c *listingCache) dropAll() {
	c.gen++
	c.dirs, c.n = nil, 0
}

// shown reports whether the view shows a file of this type.
func shown(m fs.FileMode) bool { return m.IsDir() || m.IsRegular() }

// notExist maps "not a directory" (a path through a file) to ErrNotExist
// as well, so callers need test one sentinel.
//
// A path that os.Root refuses because it leads out of the archive (through
// a symlink) does not exist in the view either; os.Root has no exported
// sentinel for it, hence the match on its message.
func notExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) || isENOTDIR(err) || strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("%w (%v)", ErrNotExist, err)
	}
	return err
}

func attrOf(fi fs.FileInfo) Attr {
	a := Attr{Mode: fi.Mode() & (fs.ModeType | fs.ModePerm), Size: fi.Size(), MTime: fi.ModTime()}
	sysAttr(fi, &a)
	if a.IsDir() {
		a.Size = 4096
	}
	return a
}

// Subscribe reports changes under the directories listed or looked into so
// far (and the archive root) to fn.
func (s *DiskSource) Subscribe(fn func(Change)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = fn
	if s.watcher == nil && !s.closed {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			s.log.Warn("fuseview: no change notifications, changes show after the attribute timeout", "err", err)
		} else {
			s.watcher = w
			s.loopDone = make(chan struct{})
			go s.loop(w, s.loopDone)
			s.addWatchLocked(".")
		}
	}
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}

// watch makes sure directory r (archive-relative) is watched once someone
// subscribed.
func (s *DiskSource) watch(r string) {
	if r == "" {
		r = "."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watcher != nil && !s.watched[r] {
		s.addWatchLocked(r)
	}
}

func (s *DiskSource) addWatchLocked(r string) {
	if err := s.watcher.Add(filepath.Join(s.dir, filepath.FromSlash(r))); err != nil {
		if !s.warned && !errors.Is(err, fs.ErrNotExist) && !isENOTDIR(err) {
			s.warned = true
			s.log.Warn("fuseview: cannot watch a directory (raise fs.inotify.max_user_watches?); its changes show after the attribute timeout",
				"dir", r, "err", err)
		}
		return
	}
	s.watched[r] = true
}

func (s *DiskSource) loop(w *fsnotify.Watcher, done chan struct{}) {
	defer close(done)
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			s.event(ev)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// Events may have been lost: no kept listing can be trusted.
			s.mu.Lock()
			s.listings.dropAll()
			s.mu.Unlock()
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Say that anything may have changed.
				s.publish(Change{})
				continue
			}
			s.log.Warn("fuseview: watch error", "err", err)
		}
	}
}

func (s *DiskSource) event(ev fsnotify.Event) {
	r, err := filepath.Rel(s.dir, ev.Name)
	if err != nil || r == "." || strings.HasPrefix(r, "..") {
		return
	}
	r = filepath.ToSlash(r)
	gone := ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
	s.mu.Lock()
	// Before anyone hears of the change, so a listing asked for after the
	// kernel was told is read afresh.
	s.listings.changed(r, gone)
	if gone {
		for d := range s.watched {
			if d == r || strings.HasPrefix(d, r+"/") {
				delete(s.watched, d)
			}
		}
	}
	s.mu.Unlock()
	agent, p, _ := strings.Cut(r, "/")
	if hidden(0, agent) {
		return
	}
	if first, _, _ := strings.Cut(p, "/"); hidden(1, first) {
		return
	}
	s.publish(Change{Agent: agent, Path: p})
}

func (s *DiskSource) publish(c Change) {
	s.mu.Lock()
	fns := make([]func(Change), 0, len(s.subs))
	for _, fn := range s.subs {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
}
