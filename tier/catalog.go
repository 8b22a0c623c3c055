package tier

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// segment is one sealed segment of a file, as the catalog records it.
type segment struct {
	Key       string  `json:"k"`
	Start     int64   `json:"s"`
	End       int64   `json:"e"`
	SHA256    string  `json:"h"`
	ETag      string  `json:"t,omitempty"`
	Comp      int64   `json:"c"`
	SealedNs  int64   `json:"n"`
	Historian string  `json:"i"`
	Epoch     int64   `json:"p"`
	Frames    []frame `json:"f,omitempty"`
	FileMtime int64   `json:"m,omitempty"`
}

// fileRec is the catalog's record of one file.
type fileRec struct {
	Agent    string    `json:"a"`
	Path     string    `json:"r"`
	Segments []segment `json:"g"`
	// Evicted: bytes below it are no longer on the local disk (holes).
	Evicted int64 `json:"e,omitempty"`
	// Mismatch says a segment of the file failed its check: the bytes it
	// holds are not served.
	Mismatch string `json:"x,omitempty"`
	// Ino is the local file's inode number when it was sealed: a file
	// put in the path's place since (a new upload from the start) is not
	// the one the record describes.
	Ino uint64 `json:"i,omitempty"`
}

// sealed is the end of the sealed prefix.
func (r *fileRec) sealed() int64 {
	if n := len(r.Segments); n > 0 {
		return r.Segments[n-1].End
	}
	return 0
}

// catalog is the tier's Pebble database: 'f' agent 0 rel -> JSON fileRec;
// 'm' agent 0 rel -> stamp of a metadata file shipped to the bucket.
//
// Records read are kept in memory too: a read through the FUSE view asks
// for its file's record at every 128 KiB. A record returned shares its
// Segments array with the memory copy: callers append (put stores a copy
// with no spare capacity) but never change an element in place.
type catalog struct {
	db  *pebble.DB
	mu  sync.RWMutex
	mem map[string]fileRec
}

func openCatalog(dir string) (*catalog, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("open tier catalog %s: %w", dir, err)
	}
	return &catalog{db: db, mem: map[string]fileRec{}}, nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func fileKey(agent, rel string) []byte {
	return append(append([]byte{'f'}, agent...), append([]byte{0}, rel...)...)
}
func metaStampKey(agent, rel string) []byte {
	return append(append([]byte{'m'}, agent...), append([]byte{0}, rel...)...)
}

func (c *catalog) get(agent, rel string) (fileRec, bool, error) {
	c.mu.RLock()
	r, ok := c.mem[agent+"\x00"+rel]
	c.mu.RUnlock()
	if ok {
		return r, true, nil
	}
	v, closer, err := c.db.Get(fileKey(agent, rel))
	if errors.Is(err, pebble.ErrNotFound) {
		return fileRec{Agent: agent, Path: rel}, false, nil
	}
	if err != nil {
		return fileRec{}, false, err
	}
	defer closer.Close()
	if err := json.Unmarshal(v, &r); err != nil {
		return fileRec{}, false, fmt.Errorf("tier catalog %s/%s: %w", agent, rel, err)
	}
	c.remember(&r)
	return r, true, nil
}

func (c *catalog) remember(r *fileRec) {
	m := *r
	m.Segments = slices.Clip(slices.Clone(r.Segments))
	c.mu.Lock()
	c.mem[r.Agent+"\x00"+r.Path] = m
	c.mu.Unlock()
}

func (c *catalog) put(r *fileRec) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := c.db.Set(fileKey(r.Agent, r.Path), b, pebble.Sync); err != nil {
		return err
	}
	c.remember(r)
	return nil
}

func (c *catalog) del(agent, rel string) error {
	c.mu.Lock()
	delete(c.mem, agent+"\x00"+rel)
	c.mu.Unlock()
	return c.db.Delete(fileKey(agent, rel), pebble.Sync)
}

// each calls fn for every file record.
func (c *catalog) each(fn func(*fileRec) error) error {
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'f'}, UpperBound: []byte{'g'}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		var r fileRec
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			continue
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return it.Error()
}

func (c *catalog) empty() bool {
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'f'}, UpperBound: []byte{'g'}})
	if err != nil {
		return false
	}
	defer it.Close()
	return !it.First()
}

func (c *catalog) stamp(agent, rel string) string {
	v, closer, err := c.db.Get(metaStampKey(agent, rel))
	if err != nil {
		return ""
	}
	defer closer.Close()
	return string(v)
}

func (c *catalog) setStamp(agent, rel, s string) error {
	return c.db.Set(metaStampKey(agent, rel), []byte(s), pebble.NoSync)
}

func (c *catalog) close() error { return c.db.Close() }
