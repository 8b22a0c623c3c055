package httpview

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
)

// content is an archived file as the file view reads it: the bytes of a
// plain file, the decompressed stream of a .gz file. Offsets are into
// that content. Reading a plain file at any offset costs the bytes read;
// a .gz file has to be decompressed from its start, so its offsets cost
// their distance from 0 (bounded by the request's deadline).
type content struct {
	f     archive.File
	fi    fs.FileInfo
	gz    bool
	key   string
	cache *lineCache
}

func isGz(rel string) bool { return strings.HasSuffix(rel, ".gz") }

// openContent opens agent's rel through the archive root (no escape by
// symbolic link; see openArchived).
func (s *Server) openContent(agent, rel string) (*content, error) {
	f, fi, err := s.openArchived(agent, rel)
	if err != nil {
		return nil, err
	}
	return &content{f: f, fi: fi, gz: isGz(rel), key: agent + "/" + rel, cache: s.ui.lines}, nil
}

func (ct *content) Close() error { return ct.f.Close() }

// reader returns the content from off on.
func (ct *content) reader(ctx context.Context, off int64) (io.Reader, error) {
	if !ct.gz {
		return io.NewSectionReader(ct.f, off, ct.fi.Size()-off), nil
	}
	zr, err := gzip.NewReader(io.NewSectionReader(ct.f, 0, ct.fi.Size()))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", ct.key, err)
	}
	if _, err := copyCtx(ctx, io.Discard, zr, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return zr, nil
}

// readAt reads up to len(p) bytes of content at off; n < len(p) only at
// the end of the content.
func (ct *content) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	if !ct.gz {
		n, err := ct.f.ReadAt(p, off)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return n, err
	}
	r, err := ct.reader(ctx, off)
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(r, p)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	return n, err
}

// size is the content's length: the file's size, or for .gz the
// decompressed length (decompressing it all once; remembered while the
// file is unchanged).
func (ct *content) size(ctx context.Context) (int64, error) {
	if !ct.gz {
		return ct.fi.Size(), nil
	}
	li := ct.cache.get(ct)
	li.mu.Lock()
	defer li.mu.Unlock()
	if li.gzSize >= 0 {
		return li.gzSize, nil
	}
	r, err := ct.reader(ctx, 0)
	if err != nil {
		return 0, err
	}
	n, err := copyCtx(ctx, io.Discard, r, -1)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	li.gzSize = n
	return n, nil
}

// binary reports whether the content looks binary: a NUL in its first
// 8 KiB (as grep and less decide).
func (ct *content) binary(ctx context.Context) bool {
	head := make([]byte, 8192)
	n, _ := ct.readAt(ctx, head, 0)
	return bytes.IndexByte(head[:n], 0) >= 0
}

// copyCtx copies n bytes (all if n < 0) from r to w, stopping when ctx
// ends.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader, n int64) (int64, error) {
	buf := make([]byte, 256<<10)
	var done int64
	for n < 0 || done < n {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		want := int64(len(buf))
		if n >= 0 {
			want = min(want, n-done)
		}
		m, err := r.Read(buf[:want])
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return done, werr
			}
			done += int64(m)
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// markStep is the distance between remembered line counts: finding line
// N, or the number of the line at offset O, reads at most this many bytes
// once the file has been counted that far.
const markStep = 1 << 20

// lineIndex remembers, for one file, how many lines start before each
// multiple of markStep, so line numbers in the middle of a large file
// cost one pass over it, once.
type lineIndex struct {
	mu sync.Mutex
	// fp is a hash of the file's first bytes: a file rewritten under the
	// same name (the archive keeps the old one as a version) starts
	// differently, and its marks are dropped.
	fp [32]byte
	// marks[i] is the number of '\n' in content[0, i*markStep).
	marks  []int64
	gzSize int64
	used   time.Time
}

// lineCache holds the line indexes of recently viewed files.
type lineCache struct {
	mu sync.Mutex
	m  map[string]*lineIndex
}

const lineCacheMax = 256

func newLineCache() *lineCache { return &lineCache{m: map[string]*lineIndex{}} }

func fingerprint(ct *content) [32]byte {
	head := make([]byte, 4096)
	n, _ := ct.f.ReadAt(head, 0)
	h := sha256.New()
	fmt.Fprintf(h, "%v\x00", ct.gz)
	h.Write(head[:n])
	if ct.gz {
		// A .gz file is not appended to: its size and time identify it.
		fmt.Fprintf(h, "\x00%d\x00%d", ct.fi.Size(), ct.fi.ModTime().UnixNano())
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// get returns ct's line index, a fresh one if the file changed.
func (lc *lineCache) get(ct *content) *lineIndex {
	fp := fingerprint(ct)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	li := lc.m[ct.key]
	if li != nil && li.fp == fp && (ct.gz || int64(len(li.marks)-1)*markStep <= ct.fi.Size()) {
		li.used = time.Now()
		return li
	}
	if len(lc.m) >= lineCacheMax {
		var oldest string
		var t time.Time
		for k, v := range lc.m {
			if oldest == "" || v.used.Before(t) {
				oldest, t = k, v.used
			}
		}
		delete(lc.m, oldest)
	}
	li = &lineIndex{fp: fp, marks: []int64{0}, gzSize: -1, used: time.Now()}
	lc.m[ct.key] = li
	return li
}

// extend counts lines on from the last mark until the marks cover
// offset upTo (or enough returns true), or until the content ends or ctx
// does (the marks made so far stay for the next request).
func (li *lineIndex) extend(ctx context.Context, ct *content, upTo int64, enough func() bool) error {
	start := int64(len(li.marks)-1) * markStep
	if start+markStep > upTo || (enough != nil && enough()) {
		return nil
	}
	r, err := ct.reader(ctx, start)
	if err != nil {
		return err
	}
	buf := make([]byte, markStep)
	for start+markStep <= upTo {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, buf)
		if n < markStep {
			return nil // the end of the content: no full step left
		}
		li.marks = append(li.marks, li.marks[len(li.marks)-1]+int64(bytes.Count(buf, []byte{'\n'})))
		start += markStep
		if err != nil || (enough != nil && enough()) {
			return nil
		}
	}
	return nil
}

// lineAt returns the number (1-based) of the line that starts at off.
func (ct *content) lineAt(ctx context.Context, off int64) (int64, error) {
	if off == 0 {
		return 1, nil
	}
	li := ct.cache.get(ct)
	li.mu.Lock()
	defer li.mu.Unlock()
	if err := li.extend(ctx, ct, off, nil); err != nil {
		return 0, err
	}
	i := min(int(off/markStep), len(li.marks)-1)
	base := int64(i) * markStep
	buf := make([]byte, off-base)
	n, err := ct.readAt(ctx, buf, base)
	if err != nil {
		return 0, err
	}
	return li.marks[i] + int64(bytes.Count(buf[:n], []byte{'\n'})) + 1, nil
}

// lineStart returns the offset where line (1-based) starts; past the last
// line it returns the content's end and false.
func (ct *content) lineStart(ctx context.Context, line int64) (int64, bool, error) {
	if line <= 1 {
		return 0, true, nil
	}
	want := line - 1 // newlines before the line
	li := ct.cache.get(ct)
	li.mu.Lock()
	defer li.mu.Unlock()
	// Extend the marks until one passes the line (or the content ends).
	if err := li.extend(ctx, ct, 1<<62, func() bool { return li.marks[len(li.marks)-1] >= want }); err != nil {
		return 0, false, err
	}
	i := len(li.marks) - 1
	for i > 0 && li.marks[i] >= want {
		i--
	}
	off := int64(i) * markStep
	seen := li.marks[i]
	r, err := ct.reader(ctx, off)
	if err != nil {
		return 0, false, err
	}
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		n, rerr := r.Read(buf)
		chunk := buf[:n]
		for len(chunk) > 0 {
			j := bytes.IndexByte(chunk, '\n')
			if j < 0 {
				off += int64(len(chunk))
				break
			}
			off += int64(j + 1)
			chunk = chunk[j+1:]
			if seen++; seen == want {
				return off, true, nil
			}
		}
		if rerr != nil {
			return off, false, nil
		}
	}
}
