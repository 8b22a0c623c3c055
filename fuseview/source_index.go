package fuseview

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/syncer-dev/syncer/store"
)

// IndexSource is a Source over the historian's index (store.Index):
// names, types, sizes and mtimes come from Pebble, never from a disk walk,
// and the index's change subscription drives the view's cache
// invalidation.
//
// Permission bits and owners come from the archive on disk: one fstatat
// per entry of a listing, one lstat per lookup. The index does not keep
// them, on purpose: they are what an operator changes with chmod and
// chown on the archive (chmod 700 on an agent's tree), which no upload
// event and no reconcile tells the index about, so a copy in the index
// would go stale exactly when it matters. An entry the disk does not have
// (or has as another type) is shown with no permission bits, owned by
// root: the view never opens more than the archive would.
//
// The index knows no inode numbers; the view finds a superseded file by
// the archived file's identity when it opens it. A fatal error of the
// index's database, raised in the FUSE server's goroutine that asked, is
// that request's error (EIO), not the end of the process; the index's
// owner hears of it from store.Index.Failed.
type IndexSource struct {
	ix   *store.Index
	root *os.Root
}

var _ Source = (*IndexSource)(nil)

// NewIndexSource adapts ix over the archive directory root (where the
// permission bits and owners are read); the caller keeps running and
// closing ix, and closes the IndexSource.
func NewIndexSource(ix *store.Index, root string) (*IndexSource, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("archive root %s: %w", root, err)
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("archive root: %w", err)
	}
	return &IndexSource{ix: ix, root: r}, nil
}

// Close releases the archive directory.
func (s *IndexSource) Close() error { return s.root.Close() }

// Agents returns the agents the index knows.
func (s *IndexSource) Agents() ([]string, error) {
	recs := s.ix.Agents()
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out, nil
}

// Lookup returns one entry's attributes.
func (s *IndexSource) Lookup(agent, p string) (_ Attr, err error) {
	defer store.RecoverFatal(func(fe *store.FatalError) { err = fe })
	if err := checkPath(agent, p); err != nil {
		return Attr{}, err
	}
	e, err := s.ix.Lookup(agent, p)
	if err != nil {
		return Attr{}, indexErr(err)
	}
	a := indexAttr(e)
	var disk Attr
	fi, err := s.root.Lstat(rel(agent, p))
	switch {
	case err == nil:
		disk = attrOf(fi)
	case errors.Is(notExist(err), ErrNotExist):
	default:
		return Attr{}, fmt.Errorf("lookup %s: %w", rel(agent, p), err)
	}
	return withOwner(a, disk), nil
}

// ReadDir lists one directory from the index.
func (s *IndexSource) ReadDir(agent, dir string) (_ []DirEntry, err error) {
	defer store.RecoverFatal(func(fe *store.FatalError) { err = fe })
	if err := checkPath(agent, dir); err != nil {
		return nil, err
	}
	ents, _, err := s.ix.List(agent, dir, "", 0)
	if err != nil {
		return nil, indexErr(err)
	}
	disk, err := s.diskAttrs(rel(agent, dir), ents)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, DirEntry{Name: e.Name(), Attr: withOwner(indexAttr(e), disk[e.Name()])})
	}
	return out, nil
}

// diskAttrs stats the entries of the archive directory r that the index
// lists; a directory the disk does not have gives none.
func (s *IndexSource) diskAttrs(r string, ents []store.IndexEntry) (map[string]Attr, error) {
	f, err := s.root.Open(r)
	if err != nil {
		if errors.Is(notExist(err), ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", r, err)
	}
	defer f.Close()
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	found, err := statEach(s.root, r, f, names)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r, notExist(err))
	}
	out := make(map[string]Attr, len(found))
	for _, d := range found {
		out[d.Name] = d.Attr
	}
	return out, nil
}

// Subscribe forwards the index's changes.
func (s *IndexSource) Subscribe(fn func(Change)) (cancel func()) {
	return s.ix.Subscribe(func(c store.Change) { fn(Change{Agent: c.Agent, Path: c.Path}) })
}

func indexErr(err error) error {
	if errors.Is(err, store.ErrNoEntry) {
		return fmt.Errorf("%w (%v)", ErrNotExist, err)
	}
	return err
}

// indexAttr is the index's part of an entry's attributes: type, size,
// mtime; no permission bits, owned by root.
func indexAttr(e store.IndexEntry) Attr {
	if e.Dir {
		return Attr{Mode: fs.ModeDir, Size: 4096, MTime: time.Unix(0, e.MtimeNs)}
	}
	return Attr{Size: e.Size, MTime: time.Unix(0, e.MtimeNs)}
}

// withOwner adds the permission bits and owners of the archived file disk
// to a, when disk is of a's type (the zero Attr, nothing on disk, is a
// directory for no one and a regular file with no bits). A directory
// takes its time from the disk too: the index keeps none for an agent's
// top directory, which showed as 1970.
func withOwner(a, disk Attr) Attr {
	if disk.Mode.Type() != a.Mode.Type() {
		return a
	}
	a.Mode |= disk.Mode.Perm()
	a.Uid, a.Gid = disk.Uid, disk.Gid
	if a.IsDir() && !disk.MTime.IsZero() {
		a.MTime = disk.MTime
	}
	return a
}
