package store

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
)

// IngestKind says what happened to an upload (mirrors the FTP server's
// upload events without importing it).
type IngestKind uint8

// Ingest kinds.
const (
	IngestOpened IngestKind = iota + 1
	IngestProgress
	IngestClosed
	IngestFailed
	// IngestSuperseded: the file at Path was kept as VersionPath before
	// a new upload replaced it.
	IngestSuperseded
	// IngestTouched: the file's modification time was set (an agent's
	// MFMT with its node's mtime); its bytes did not change.
	IngestTouched
)

// IngestEvent reports an upload to the index (see Notify).
type IngestEvent struct {
	Kind IngestKind
	// Path is the archive path, "/agent/rel"; VersionPath likewise.
	Path        string
	VersionPath string
	// Account is the FTP account writing the file.
	Account string
	// Offset is where the upload started writing.
	Offset int64
	// Rewrite, on IngestOpened, says the upload starts below the file's
	// end (an admin's REST below the size): bytes the index may have
	// hashed already are being written again.
	Rewrite bool
	Time    time.Time
}

// maxPending bounds the paths waiting for the index's goroutine. Beyond
// it, events are dropped and a reconcile catches up from the disk.
const maxPending = 1 << 16

// pendingPath is everything not yet applied for one archive path:
// progress events coalesce into it.
type pendingPath struct {
	versions    []string
	rewriteFrom int64 // lowest upload offset seen, -1 for none
	closed      bool
	account     string
	first, last time.Time
}

type ingestQueue struct {
	mu       sync.Mutex
	m        map[string]*pendingPath
	order    []string
	overflow bool
	active   map[string]int // open uploads per path
	// rewriting holds, per path, the lowest offset of open uploads that
	// write below the file's end. Every apply of the path until the last
	// of them closes rehashes from there: an apply may run between the
	// upload's opening and its writes, and hash the bytes before they
	// change (the events after it would then carry no rewrite).
	rewriting map[string]int64
	wake      chan struct{}
}

func (q *ingestQueue) init() {
	q.m = map[string]*pendingPath{}
	q.active = map[string]int{}
	q.rewriting = map[string]int64{}
	q.wake = make(chan struct{}, 1)
}

// Notify hands an upload event to the index. It never blocks on disk or
// database work (the FTP server calls it from its transfer goroutines):
// events are coalesced per path and applied by Run.
func (ix *Index) Notify(ev IngestEvent) {
	q := &ix.q
	q.mu.Lock()
	switch ev.Kind {
	case IngestOpened:
		q.active[ev.Path]++
		if from, ok := q.rewriting[ev.Path]; ev.Rewrite && (!ok || ev.Offset < from) {
			q.rewriting[ev.Path] = ev.Offset
		}
	case IngestClosed, IngestFailed:
		if q.active[ev.Path]--; q.active[ev.Path] <= 0 {
			delete(q.active, ev.Path)
		}
	}
	from, rewriting := q.rewriting[ev.Path]
	if q.active[ev.Path] == 0 {
		delete(q.rewriting, ev.Path) // this event is the last to carry it
	}
	p := q.m[ev.Path]
	if p == nil {
		if len(q.m) >= maxPending {
			q.overflow = true
			q.mu.Unlock()
			ix.kick()
			return
		}
		p = &pendingPath{rewriteFrom: -1, first: ev.Time}
		q.m[ev.Path] = p
		q.order = append(q.order, ev.Path)
	}
	switch ev.Kind {
	case IngestSuperseded:
		p.versions = append(p.versions, ev.VersionPath)
	case IngestOpened:
		if p.rewriteFrom < 0 || ev.Offset < p.rewriteFrom {
			p.rewriteFrom = ev.Offset
		}
		p.closed = false
	case IngestClosed, IngestFailed:
		p.closed = true
	}
	if rewriting && (p.rewriteFrom < 0 || from < p.rewriteFrom) {
		p.rewriteFrom = from
	}
	if ev.Account != "" {
		p.account = ev.Account
	}
	p.last = ev.Time
	q.mu.Unlock()
	ix.kick()
}

func (ix *Index) kick() {
	select {
	case ix.q.wake <- struct{}{}:
	default:
	}
}

// uploading reports whether an upload of the archive path is open.
func (ix *Index) uploading(p string) bool {
	ix.q.mu.Lock()
	defer ix.q.mu.Unlock()
	return ix.q.active[p] > 0
}

type request struct {
	reconcile bool
	// mismatch, if set, is "agent/rel" of a file to mark mismatch.
	mismatch string
	done     chan error
}

// Run keeps the index up to date until ctx ends: first a reconcile with the
// disk (then Ready is closed), then upload events as they come and a
// reconcile every ReconcileEvery. On return every event notified before
// ctx ended has been applied and the database is synced; a *FatalError of
// the database ends Run early and is returned.
func (ix *Index) Run(ctx context.Context) (err error) {
	defer RecoverFatal(func(fe *FatalError) { err = fe })
	if err := ix.reconcile(ctx); err != nil && ctx.Err() == nil {
		ix.log.Error("index: reconcile with the archive failed", "err", err)
	}
	ix.readyOnce.Do(func() { close(ix.ready) })
	var tick <-chan time.Time
	if ix.every > 0 {
		t := time.NewTicker(ix.every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			err := ix.drain(context.Background())
			if ferr := ix.db.Flush(); err == nil && ferr != nil {
				err = fmt.Errorf("index flush: %w", ferr)
			}
			return err
		case <-ix.q.wake:
			if err := ix.drain(ctx); err != nil {
				ix.log.Error("index: applying uploads failed", "err", err)
			}
		case <-tick:
			if err := ix.reconcile(ctx); err != nil && ctx.Err() == nil {
				ix.log.Error("index: reconcile with the archive failed", "err", err)
			}
		case r := <-ix.reqs:
			err := ix.drain(ctx)
			switch {
			case err == nil && r.reconcile:
				err = ix.reconcile(ctx)
			case err == nil && r.mismatch != "":
				err = ix.markMismatch(r.mismatch)
			}
			r.done <- err
		}
	}
}

// Flush waits until every event notified before the call is applied. It
// needs Run.
func (ix *Index) Flush(ctx context.Context) error { return ix.request(ctx, false) }

// Reconcile applies pending events, then compares the whole index with the
// disk and waits for it to finish. It needs Run.
func (ix *Index) Reconcile(ctx context.Context) error { return ix.request(ctx, true) }

// MarkMismatch records that bytes of agent's file rel failed a check
// outside the index (the storage tier's segment checksums): the file shows
// mismatch until its bytes are hashed again from scratch. It needs Run.
func (ix *Index) MarkMismatch(ctx context.Context, agent, rel string) error {
	return ix.send(ctx, request{mismatch: agent + "/" + rel, done: make(chan error, 1)})
}

func (ix *Index) markMismatch(p string) error {
	agent, rel, _ := strings.Cut(p, "/")
	w := ix.newWriter()
	e, ok, err := w.get(agent, rel)
	if err != nil || !ok || e.Dir || e.check == checkMismatch {
		return err
	}
	old := e
	e.check = checkMismatch
	e.HasExpected = true
	ix.log.Error("archived file fails a check of its stored bytes; marked mismatch", "agent", agent, "path", rel)
	if err := w.put(&old, &e); err != nil {
		return err
	}
	return w.flush()
}

func (ix *Index) request(ctx context.Context, reconcile bool) error {
	return ix.send(ctx, request{reconcile: reconcile, done: make(chan error, 1)})
}

func (ix *Index) send(ctx context.Context, r request) error {
	select {
	case ix.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain applies the pending events.
func (ix *Index) drain(ctx context.Context) error {
	q := &ix.q
	q.mu.Lock()
	m, order, overflow := q.m, q.order, q.overflow
	q.m, q.order, q.overflow = map[string]*pendingPath{}, nil, false
	q.mu.Unlock()
	w := ix.newWriter()
	var firstErr error
	for _, p := range order {
		if err := ix.apply(w, p, m[p]); err != nil {
			ix.log.Warn("index: cannot index an upload", "path", p, "err", err)
			if firstErr == nil {
				firstErr = err
			}
		}
		if err := w.maybeFlush(); err != nil {
			return err
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	if overflow {
		ix.log.Warn("index: too many uploads queued; catching up from the disk")
		return ix.reconcile(ctx)
	}
	return firstErr
}

// apply indexes what happened to one archive path.
func (ix *Index) apply(w *ixWriter, p string, pp *pendingPath) error {
	agent, rel, ok := archivePath(p)
	if !ok || rel == "" {
		return nil // outside every agent's tree: nothing to index
	}
	w.seen(agent, pp.last, pp.account)
	if archive.IsMeta(rel) {
		if meta, ok := strings.CutPrefix(rel, archive.MetaDir+"/"); ok && pp.closed {
			return ix.applyMeta(w, agent, meta)
		}
		return nil
	}
	for _, v := range pp.versions {
		va, vrel, ok := archivePath(v)
		if !ok || va != agent {
			continue
		}
		if err := w.move(agent, rel, vrel); err != nil {
			return err
		}
		if err := w.refresh(agent, vrel, -1, pp.closed, nil); err != nil {
			return err
		}
	}
	return w.refresh(agent, rel, pp.rewriteFrom, pp.closed, func(e *IndexEntry) {
		if e.FirstUploadNs == 0 && !pp.first.IsZero() {
			e.FirstUploadNs = pp.first.UnixNano()
		}
		if !pp.last.IsZero() {
			e.LastUploadNs = pp.last.UnixNano()
		}
		if pp.account != "" {
			e.Account = pp.account
		}
	})
}

func (e *IndexEntry) resetHash() {
	e.Hashed, e.hashState, e.SHA256, e.check = 0, nil, [32]byte{}, checkNone
}

// hashInto extends e's hash with the file's bytes up to size, resuming
// from the saved state. On the way it compares the hash at the expected
// length with the agent's record.
func (ix *Index) hashInto(e *IndexEntry, f io.ReaderAt, size int64) error {
	h := sha256.New()
	if e.Hashed > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(e.hashState); err != nil {
			e.resetHash()
		}
	}
	off := e.Hashed
	if e.HasExpected && e.check == checkNone && off < e.ExpectedSize && e.ExpectedSize <= size {
		n, err := hashRange(h, f, off, e.ExpectedSize-off)
		off += n
		if err != nil {
			return err
		}
		if off == e.ExpectedSize {
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			ix.setCheck(e, sum)
		}
	}
	if off < size {
		n, err := hashRange(h, f, off, size-off)
		off += n
		if err != nil {
			return err
		}
	}
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	e.Hashed, e.hashState = off, st
	copy(e.SHA256[:], h.Sum(nil))
	return nil
}

// setCheck records the comparison of the hash of the first ExpectedSize
// bytes with the agent's, and logs a mismatch.
func (ix *Index) setCheck(e *IndexEntry, sum [32]byte) {
	if sum == e.ExpectedSHA256 {
		e.check = checkMatch
		return
	}
	e.check = checkMismatch
	ix.log.Error("archived file does not match the SHA-256 its agent recorded",
		"agent", e.Agent, "path", e.Path, "size", e.ExpectedSize,
		"agent_sha256", fmt.Sprintf("%x", e.ExpectedSHA256), "historian_sha256", fmt.Sprintf("%x", sum))
}

var hashBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// hashRange feeds n bytes of f from off into h; a file that became shorter
// ends it early without error.
func hashRange(h io.Writer, f io.ReaderAt, off, n int64) (int64, error) {
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	got, err := io.CopyBuffer(h, io.NewSectionReader(f, off, n), *bp)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return got, err
}
