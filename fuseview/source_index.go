package fuseview

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/syncer-dev/syncer/store"
)

// IndexSource is a Source over the historian's index (store.Index):
// listings and attributes come from Pebble, never from a disk walk, and
// the index's change subscription drives the view's cache invalidation.
// The index keeps no permission bits or owners: directories show as
// r-x for all, files as r-- for all, owned by root. It knows no inode
// numbers either; the view finds a superseded file by the archived file's
// identity when it opens it. A fatal error of the index's database,
// raised in the FUSE server's goroutine that asked, is that request's
// error (EIO), not the end of the process; the index's owner hears of it
// from store.Index.Failed.
type IndexSource struct {
	ix *store.Index
}

var _ Source = (*IndexSource)(nil)

// NewIndexSource adapts ix; the caller keeps running and closing it.
func NewIndexSource(ix *store.Index) *IndexSource { return &IndexSource{ix: ix} }

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
	return indexAttr(e), nil
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
	out := make([]DirEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, DirEntry{Name: e.Name(), Attr: indexAttr(e)})
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

func indexAttr(e store.IndexEntry) Attr {
	if e.Dir {
		return Attr{Mode: fs.ModeDir | 0o555, Size: 4096, MTime: time.Unix(0, e.MtimeNs)}
	}
	return Attr{Mode: 0o444, Size: e.Size, MTime: time.Unix(0, e.MtimeNs)}
}
