package tier

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/syncer-dev/syncer/internal/archive"
)

// Open opens agent's archived file rel: a plain local file when none of
// its bytes are evicted, otherwise a file that reads the evicted prefix
// from its segments (through the cache) and the rest from the disk. Reads
// of bytes whose segment fails its check fail with an error wrapping
// ErrCorrupt and syscall.EIO, and mark the file mismatch in the index.
func (t *Tier) Open(agent, rel string) (archive.File, error) {
	if !archive.ValidAgentID(agent) || !archive.ValidRel(rel) || rel == "" {
		return nil, fmt.Errorf("open %s/%s: %w", agent, rel, fs.ErrNotExist)
	}
	f, err := t.root.Open(agent + "/" + rel)
	if err != nil {
		return nil, err
	}
	// Under evictMu shared, a file found all local is pinned before an
	// eviction can start: its bytes stay on the disk while it is open.
	t.evictMu.RLock()
	defer t.evictMu.RUnlock()
	rec, ok, err := t.cat.get(agent, rel)
	if err != nil {
		f.Close()
		return nil, err
	}
	local := !ok || (rec.Evicted == 0 && rec.Mismatch == "")
	if !local {
		if ino, err := inode(f); err != nil || (rec.Ino != 0 && ino != rec.Ino) {
			local = true // another file in the sealed one's place: all local
		}
	}
	if local {
		key := agent + "/" + rel
		t.pin(key, 1)
		return &localFile{File: f, t: t, key: key}, nil
	}
	return &file{t: t, f: f, agent: agent, rel: rel}, nil
}

// pin adds d to the count of open local Files of key.
func (t *Tier) pin(key string, d int) {
	t.pinMu.Lock()
	defer t.pinMu.Unlock()
	if t.pins == nil {
		t.pins = map[string]int{}
	}
	if t.pins[key] += d; t.pins[key] <= 0 {
		delete(t.pins, key)
	}
}

// pinned reports whether a local File of key is open.
func (t *Tier) pinned(key string) bool {
	t.pinMu.Lock()
	defer t.pinMu.Unlock()
	return t.pins[key] > 0
}

// localFile is an archived file with all its bytes on the disk, pinned
// there until it is closed (archive.Local).
type localFile struct {
	*os.File
	t    *Tier
	key  string
	once sync.Once
}

var _ archive.Local = (*localFile)(nil)

func (f *localFile) IsLocal() bool { return true }

func (f *localFile) Close() error {
	f.once.Do(func() { f.t.pin(f.key, -1) })
	return f.File.Close()
}

// file is an archived file with evicted bytes.
type file struct {
	t          *Tier
	f          *os.File
	agent, rel string
	mu         sync.Mutex // Read and Seek's offset
	off        int64
	fmu        sync.Mutex // the frame state below: ReadAt may run concurrently
	// The last frame decoded, for sequential reads.
	lastKey  string
	lastData []byte
	// A segment read whole in order (a cat, a grep, the index's hash) is
	// checked against its SHA-256 as well as frame by frame: seqKey is
	// the segment, seqNext the frame expected next, seqHash the hash of
	// the frames before it.
	seqKey  string
	seqNext int
	seqHash hash.Hash
	// The frame read before, to tell a sequential reader (read ahead).
	prevSeg   string
	prevFrame int
}

var _ archive.File = (*file)(nil)

func (f *file) Stat() (fs.FileInfo, error) { return f.f.Stat() }
func (f *file) Close() error               { return f.f.Close() }

func (f *file) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (f *file) Seek(off int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekCurrent:
		off += f.off
	case io.SeekEnd:
		fi, err := f.f.Stat()
		if err != nil {
			return 0, err
		}
		off += fi.Size()
	}
	if off < 0 {
		return 0, errors.New("seek before the start")
	}
	f.off = off
	return off, nil
}

// ReadAt reads the evicted part from segments, the rest from the disk.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	t := f.t
	t.evictMu.RLock()
	defer t.evictMu.RUnlock()
	rec, _, err := t.cat.get(f.agent, f.rel)
	if err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) && off+int64(n) < rec.Evicted {
		pos := off + int64(n)
		want := p[n:min(int64(len(p)), int64(n)+rec.Evicted-pos)]
		m, err := f.readSealed(&rec, want, pos)
		n += m
		if err != nil {
			return n, err
		}
	}
	if n == len(p) {
		return n, nil
	}
	m, err := f.f.ReadAt(p[n:], off+int64(n))
	return n + m, err
}

// readSealed fills p from the segments of rec at off (all below Evicted).
func (f *file) readSealed(rec *fileRec, p []byte, off int64) (int, error) {
	if rec.Mismatch != "" {
		return 0, f.t.corrupt(rec, fmt.Errorf("%w: %s", ErrCorrupt, rec.Mismatch))
	}
	i := sort.Search(len(rec.Segments), func(i int) bool { return rec.Segments[i].End > off })
	if i == len(rec.Segments) || rec.Segments[i].Start > off {
		return 0, fmt.Errorf("read %s/%s at %d: no segment holds it: %w", rec.Agent, rec.Path, off, syscall.EIO)
	}
	s := &rec.Segments[i]
	if s.Frames == nil {
		frames, err := f.t.seekTable(context.Background(), s)
		if err != nil {
			return 0, f.t.corrupt(rec, err)
		}
		// A copy: the array is shared with the catalog's memory.
		rec.Segments = slices.Clone(rec.Segments)
		s = &rec.Segments[i]
		s.Frames = frames
		_ = f.t.cat.put(rec)
	}
	rel := off - s.Start
	var foff, coff int64
	for j, fr := range s.Frames {
		if rel < foff+int64(fr.Decomp) {
			data, err := f.frame(s, j, coff)
			if err != nil {
				return 0, f.t.corrupt(rec, err)
			}
			return copy(p, data[rel-foff:]), nil
		}
		foff += int64(fr.Decomp)
		coff += int64(fr.Comp)
	}
	return 0, f.t.corrupt(rec, fmt.Errorf("%w: %s holds %d bytes, not %d", ErrCorrupt, s.Key, foff, s.End-s.Start))
}

// frame returns frame j of s (compressed at coff), checked.
func (f *file) frame(s *segment, j int, coff int64) ([]byte, error) {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	ck := frameKey(s, j)
	if f.lastKey == ck {
		return f.lastData, nil
	}
	fr := s.Frames[j]
	data, ok := f.t.cache.get(ck, fr)
	if !ok && f.t.awaitFetch(ck) {
		data, ok = f.t.cache.get(ck, fr)
	}
	if !ok {
		comp, err := f.t.b.getRange(context.Background(), s.Key, s.ETag, coff, int64(fr.Comp))
		if err != nil {
			return nil, err
		}
		f.t.m.frameFetches.Inc()
		if data, err = decodeFrame(comp, fr); err != nil {
			return nil, fmt.Errorf("%s frame %d: %w", s.Key, j, err)
		}
		f.t.cache.put(ck, data)
	}
	f.lastKey, f.lastData = ck, data
	if j == 0 || (f.prevSeg == s.Key && f.prevFrame == j-1) {
		f.t.readAhead(s, j+1)
	}
	f.prevSeg, f.prevFrame = s.Key, j
	if err := f.followSegment(s, j, data); err != nil {
		return nil, err
	}
	return data, nil
}

// readAheadFrames is how many frames a sequential reader has fetched
// ahead of it (16 MiB): a grep over an evicted file waits for the store
// once per few MiB, not once per frame.
const readAheadFrames = 32

// readAheadRefill: the read-ahead is topped up only when fewer than this
// many frames ahead of the reader are cached or being fetched, so that it
// fetches runs of frames in few large GETs instead of one small GET per
// frame the reader passes (each GET costs the store a request's work).
const readAheadRefill = readAheadFrames / 2

// readAheadChunk frames go in one GET (2 MiB); the chunks of a read-ahead
// are fetched, and decoded, at once.
const readAheadChunk = 4

// readAhead fetches in the background the frames of s from `from` up to
// from+readAheadFrames that are neither cached nor being fetched, once
// fewer than readAheadRefill frames ahead are.
func (t *Tier) readAhead(s *segment, from int) {
	end := min(from+readAheadFrames, len(s.Frames))
	t.fetchMu.Lock()
	defer t.fetchMu.Unlock()
	for from < end && (t.fetching[frameKey(s, from)] != nil || t.cache.has(frameKey(s, from))) {
		from++
	}
	if from == end || (end-from < readAheadFrames-readAheadRefill && end < len(s.Frames)) {
		return
	}
	seg := *s
	for from < end {
		// The next run of missing frames, in chunks.
		to := from
		for to < end && to-from < readAheadChunk && t.fetching[frameKey(s, to)] == nil && !t.cache.has(frameKey(s, to)) {
			to++
		}
		if to > from {
			t.fetchChunk(&seg, from, to, nil)
			from = to
		} else {
			from++
		}
	}
}

// fetchChunk fetches frames [from,to) of seg in one range GET into the
// cache, in the background, and calls done (if not nil) when it is over;
// fetchMu is held.
func (t *Tier) fetchChunk(s *segment, from, to int, done2 func()) {
	done := make(chan struct{})
	for j := from; j < to; j++ {
		t.fetching[frameKey(s, j)] = done
	}
	seg := *s
	t.fetchWG.Add(1)
	go func() {
		defer t.fetchWG.Done()
		if done2 != nil {
			defer done2()
		}
		defer func() {
			t.fetchMu.Lock()
			for j := from; j < to; j++ {
				delete(t.fetching, frameKey(&seg, j))
			}
			t.fetchMu.Unlock()
			close(done)
		}()
		var coff int64
		for _, fr := range seg.Frames[:from] {
			coff += int64(fr.Comp)
		}
		var n int64
		for _, fr := range seg.Frames[from:to] {
			n += int64(fr.Comp)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		comp, err := t.b.getRange(ctx, seg.Key, seg.ETag, coff, n)
		if err != nil {
			return // the reader's own fetch reports it
		}
		t.m.frameFetches.Inc()
		var off int64
		for j := from; j < to; j++ {
			fr := seg.Frames[j]
			data, err := decodeFrame(comp[off:off+int64(fr.Comp)], fr)
			if err != nil {
				return
			}
			t.cache.put(frameKey(&seg, j), data)
			off += int64(fr.Comp)
		}
	}()
}

// awaitFetch waits for a read-ahead that is fetching key, and says
// whether there was one.
func (t *Tier) awaitFetch(key string) bool {
	t.fetchMu.Lock()
	ch := t.fetching[key]
	t.fetchMu.Unlock()
	if ch == nil {
		return false
	}
	<-ch
	return true
}

func frameKey(s *segment, j int) string { return s.Key + "#" + strconv.Itoa(j) }

// followSegment feeds frame j of s to the whole-segment hash when the
// frames come in order from the first, and checks the hash at the last.
func (f *file) followSegment(s *segment, j int, data []byte) error {
	switch {
	case j == 0:
		f.seqKey, f.seqNext, f.seqHash = s.Key, 0, sha256.New()
	case f.seqKey != s.Key || j != f.seqNext:
		f.seqKey = ""
		return nil
	}
	f.seqHash.Write(data)
	f.seqNext = j + 1
	if f.seqNext < len(s.Frames) {
		return nil
	}
	f.seqKey = ""
	if got := hex.EncodeToString(f.seqHash.Sum(nil)); got != s.SHA256 {
		return fmt.Errorf("%w: %s: its bytes hash to %s, not the recorded %s", ErrCorrupt, s.Key, got, s.SHA256)
	}
	return nil
}

// corrupt marks rec's file mismatch (in the catalog and the index) when
// err is a failed check, and returns err as an I/O error.
func (t *Tier) corrupt(rec *fileRec, err error) error {
	if errors.Is(err, ErrCorrupt) {
		if rec.Mismatch == "" {
			rec.Mismatch = err.Error()
			if cerr := t.cat.put(rec); cerr != nil {
				t.log.Error("tier: cannot record a mismatch", "err", cerr)
			}
			t.log.Error("tier: a segment fails its check; the file is marked mismatch and its sealed bytes are not served",
				"agent", rec.Agent, "path", rec.Path, "err", err)
			t.m.corrupt.Inc()
		}
		if ix := t.ix.Load(); ix != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			go func() {
				defer cancel()
				_ = ix.MarkMismatch(ctx, rec.Agent, rec.Path)
			}()
		}
	}
	return fmt.Errorf("read %s/%s: %w (%w)", rec.Agent, rec.Path, err, syscall.EIO)
}

// seekTable fetches and parses the seek table of s (a segment recovered
// from a listing).
func (t *Tier) seekTable(ctx context.Context, s *segment) ([]frame, error) {
	if s.Comp < footerSize {
		return nil, fmt.Errorf("%w: %s: %d bytes", ErrCorrupt, s.Key, s.Comp)
	}
	foot, err := t.b.getRange(ctx, s.Key, s.ETag, s.Comp-footerSize, footerSize)
	if err != nil {
		return nil, err
	}
	n, err := seekTableLen(foot)
	if err != nil || int64(n) > s.Comp {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, s.Key, err)
	}
	tb, err := t.b.getRange(ctx, s.Key, s.ETag, s.Comp-int64(n), int64(n))
	if err != nil {
		return nil, err
	}
	frames, err := parseSeekTable(tb)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, s.Key, err)
	}
	return frames, nil
}

// frameCache is a bounded directory of decompressed frames, least
// recently used out first. It starts empty at every start.
type frameCache struct {
	dir   string
	limit int64
	mu    sync.Mutex
	size  int64
	lru   *list.List // of *cacheItem, most recent first
	items map[string]*list.Element
	// The most recent frames are kept in memory as well (memFrames of
	// them): a sequential reader takes what the read-ahead just fetched
	// without reading it back from the disk.
	mem     map[string][]byte
	memKeys []string // ring, oldest at memNext
	memNext int
	writing map[string]bool // frames being written to the disk
	wg      sync.WaitGroup
}

const memFrames = 64

type cacheItem struct {
	key  string
	size int64
}

func newFrameCache(dir string, limit int64) (*frameCache, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &frameCache{dir: dir, limit: limit, lru: list.New(), items: map[string]*list.Element{},
		mem: map[string][]byte{}, memKeys: make([]string, memFrames), writing: map[string]bool{}}, nil
}

func (c *frameCache) path(key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16]))
}

// get returns a cached frame, checked again against fr (a cache file
// damaged on disk is dropped, and the frame fetched anew).
func (c *frameCache) get(key string, fr frame) ([]byte, bool) {
	c.mu.Lock()
	if b, ok := c.mem[key]; ok {
		c.mu.Unlock()
		return b, true // checked when it was decoded, never written since
	}
	e, ok := c.items[key]
	if ok {
		c.lru.MoveToFront(e)
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	b, err := os.ReadFile(c.path(key))
	if err != nil || len(b) != int(fr.Decomp) || uint32(xxhash.Sum64(b)) != fr.Sum {
		c.drop(key)
		return nil, false
	}
	return b, true
}

func (c *frameCache) put(key string, data []byte) {
	c.mu.Lock()
	if _, ok := c.mem[key]; !ok {
		delete(c.mem, c.memKeys[c.memNext])
		c.memKeys[c.memNext] = key
		c.memNext = (c.memNext + 1) % len(c.memKeys)
		c.mem[key] = data
	}
	if int64(len(data)) > c.limit || c.writing[key] {
		c.mu.Unlock()
		return
	}
	c.writing[key] = true
	c.mu.Unlock()
	// To the disk in the background: the reader has its bytes already
	// (the memory copy serves until the file is there).
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.persist(key, data)
	}()
}

func (c *frameCache) persist(key string, data []byte) {
	defer func() {
		c.mu.Lock()
		delete(c.writing, key)
		c.mu.Unlock()
	}()
	if err := os.WriteFile(c.path(key), data, 0o600); err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.lru.PushFront(&cacheItem{key, int64(len(data))})
	c.size += int64(len(data))
	for c.size > c.limit {
		old := c.lru.Back()
		it := old.Value.(*cacheItem)
		c.lru.Remove(old)
		delete(c.items, it.key)
		c.size -= it.size
		_ = os.Remove(c.path(it.key))
	}
}

func (c *frameCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.mem, key)
	if e, ok := c.items[key]; ok {
		c.size -= e.Value.(*cacheItem).size
		c.lru.Remove(e)
		delete(c.items, key)
		_ = os.Remove(c.path(key))
	}
}

func (c *frameCache) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[key]
	_, inMem := c.mem[key]
	return ok || inMem
}

func (c *frameCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
