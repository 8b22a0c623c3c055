package syncer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/store"
)

// ErrRemoteMismatch is returned when the server's size after a transfer is
// not the size that was sent: the manifest is not advanced and the next
// push resumes from the server's size.
var ErrRemoteMismatch = errors.New("server size differs after upload")

// transfer brings one remote file up to date with one local file over one
// connection.
type transfer struct {
	r      *run
	c      Conn
	loc    *local
	rel    string // local path relative to the log directory
	remote string // server path relative to the agent's tree
	entry  *store.Entry
	// outcome is what was done, for the summary.
	outcome plan
	// status is the status the entry gets once the bytes are confirmed.
	status store.Status
	// from is the offset the last transfer started at.
	from int64
	// noEntry: the local file has no manifest entry (a rotated log outside
	// the log directory, read for its tail only).
	noEntry bool
}

func (t *transfer) rpath() string { return t.r.remotePath(t.remote) }

// remoteSize returns the server's size of the remote file; exists is false
// if there is none.
func (t *transfer) remoteSize(ctx context.Context) (size int64, exists bool, err error) {
	size, err = t.c.Size(ctx, t.rpath())
	if isNotFound(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return size, true, nil
}

// run executes plan p. Every branch asks the server's size first and
// trusts the server over the manifest: bytes the server already holds are
// not sent again (after checking that the block before its size equals the
// local bytes there), and a remote file that is not a prefix of the local
// one is superseded by a new version, never appended to.
//
// A restart offset the server refuses as below the end of its file means
// the server's size grew between SIZE and STOR: the bytes of an older
// upload of the same file (a run killed a moment ago, its connection not
// yet closed on the server) were still landing, and the STOR waited for
// them. run then starts over once from a fresh SIZE, which now sees them.
func (t *transfer) run(ctx context.Context, p plan) error {
	err := t.runOnce(ctx, p)
	if errors.Is(err, ftpfs.ErrOffset) && ctx.Err() == nil {
		t.r.a.log.Info("the server's copy grew while this upload started (an older upload was still landing); resuming from its new size",
			"path", t.rel, "err", err)
		err = t.runOnce(ctx, p)
	}
	return err
}

func (t *transfer) runOnce(ctx context.Context, p plan) error {
	t.outcome = p
	t.status = store.StatusArchived
	if t.remote != t.rel {
		t.status = store.StatusRotated
	}
	if err := t.c.MkdirAll(ctx, path.Dir(t.rpath())); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	rs, exists, err := t.remoteSize(ctx)
	if err != nil {
		return err
	}
	switch p {
	case planAppend:
		e := t.entry
		if exists && rs == e.Archived {
			ok := true
			if t.status == store.StatusRotated {
				// The copy under the old name may have been superseded by
				// a new file that happens to have the same size.
				if ok, err = t.sameBlock(ctx, rs); err != nil {
					return err
				}
			}
			if h, herr := resumeHash(e.HashState); ok && herr == nil {
				return t.send(ctx, rs, h)
			}
		}
		if t.status == store.StatusRotated {
			// A newer file took the name of the copy this rotated file
			// continues: the copy is one of the server's versions.
			if ok, err := t.locateVersion(ctx, e); err != nil {
				return err
			} else if ok {
				h, err := resumeHash(e.HashState)
				if err != nil {
					return err
				}
				return t.send(ctx, e.Archived, h)
			}
			// Gone from the server: archive it under its own name.
			return t.ownName(ctx)
		}
		if exists && rs <= t.loc.size {
			return t.adopt(ctx, rs, exists)
		}
		return t.newVersion(ctx, rs, exists)
	case planNew:
		if t.entry == nil || t.entry.Status != store.StatusPartial {
			if err := t.record(store.StatusPartial, 0, false); err != nil {
				return err
			}
		}
		if !exists || rs == 0 {
			return t.send(ctx, 0, sha256.New())
		}
		if rs <= t.loc.size {
			return t.adopt(ctx, rs, exists)
		}
		return t.newVersion(ctx, rs, exists)
	case planResumeRewrite:
		if exists && rs != t.entry.OldSize && rs > 0 && rs <= t.loc.size {
			return t.adopt(ctx, rs, exists)
		}
		return t.newVersion(ctx, rs, exists)
	default:
		return t.newVersion(ctx, rs, exists)
	}
}

// adopt continues after rs bytes the server holds but the manifest cannot
// vouch for (an upload cut before it was recorded): if the server's block
// before rs equals the local bytes there, hash the local [0, rs) and send
// the rest; otherwise store a new version.
func (t *transfer) adopt(ctx context.Context, rs int64, exists bool) error {
	ok, err := t.sameBlock(ctx, rs)
	if err != nil {
		return err
	}
	if !ok {
		return t.newVersion(ctx, rs, exists)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(t.loc.f, 0, rs)); err != nil {
		return fmt.Errorf("read: %w", unwrapPath(err))
	}
	return t.send(ctx, rs, h)
}

// sameBlock reports whether the server's bytes just before rs equal the
// local file's.
func (t *transfer) sameBlock(ctx context.Context, rs int64) (bool, error) {
	n := min(store.FingerprintSpan, rs)
	if n == 0 {
		return true, nil
	}
	want := make([]byte, n)
	if _, err := t.loc.f.ReadAt(want, rs-n); err != nil {
		return false, fmt.Errorf("read: %w", unwrapPath(err))
	}
	var got bytes.Buffer
	if _, err := t.c.Retrieve(ctx, t.rpath(), &got, rs-n); err != nil {
		return false, fmt.Errorf("read back: %w", err)
	}
	if got.Len() < int(n) {
		// A data connection cut after the server's last write ends like
		// the file's end: a short read says nothing about the bytes, and
		// taking it for different content would store a needless new
		// version. Retried by the next push.
		return false, fmt.Errorf("read back: %d of the server's last %d bytes arrived", got.Len(), n)
	}
	return bytes.Equal(got.Bytes()[:n], want), nil
}

// newVersion stores the whole file from offset 0: the server keeps what it
// had as a superseded version. The manifest says "rewrite pending" first
// (durably), so that a push cut in the middle knows the new version had
// begun (see store.StatusRewritePending).
func (t *transfer) newVersion(ctx context.Context, rs int64, exists bool) error {
	old := int64(-1)
	if exists {
		old = rs
	}
	if t.outcome == planAppend {
		t.outcome = planRewrite
	}
	if err := t.record(store.StatusRewritePending, old, true); err != nil {
		return err
	}
	return t.send(ctx, 0, sha256.New())
}

// record writes an interim entry before a transfer starts.
func (t *transfer) record(st store.Status, oldSize int64, sync bool) error {
	e := store.Entry{}
	if t.entry != nil {
		e = *t.entry
	}
	e.Status, e.OldSize, e.Archived, e.HashState = st, oldSize, 0, nil
	e.Size, e.MtimeNs, e.Dev, e.Ino, e.UpdatedNs = t.loc.size, t.loc.mtime, t.loc.dev, t.loc.ino, nowNs()
	e.Remote = nil
	if t.remote != t.rel {
		e.Remote = []byte(t.remote)
	}
	if t.noEntry {
		return nil
	}
	if err := t.r.put([]byte(t.rel), e, sync); err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	en := e
	t.entry = &en
	return nil
}

// send streams local [from, size) to the server at offset from, hashing it
// on the way into h (which holds the hash of [0, from)), checks the
// server's size and then advances the manifest.
func (t *transfer) send(ctx context.Context, from int64, h hash.Hash) error {
	t.from = from
	src := io.TeeReader(io.NewSectionReader(t.loc.f, from, t.loc.size-from), h)
	if p := t.r.a.opts.Progress; p != nil {
		src = &progressReader{r: src, p: p}
	}
	if from < t.loc.size || from == 0 {
		n, err := t.c.Store(ctx, t.rpath(), src, from)
		t.r.sent.Add(n)
		if err != nil {
			return fmt.Errorf("upload from byte %d: %w", from, err)
		}
	}
	got, err := t.c.Size(ctx, t.rpath())
	if err != nil {
		return fmt.Errorf("check size: %w", err)
	}
	if got != t.loc.size {
		return fmt.Errorf("%w: server has %d bytes, sent up to %d", ErrRemoteMismatch, got, t.loc.size)
	}
	t.touch(ctx)
	return t.commit(h)
}

// modTimer is a Conn that can set a file's modification time (MFMT);
// *ftpfs.Client is one.
type modTimer interface {
	SetModTime(ctx context.Context, p string, t time.Time) error
}

// touch gives the archived copy the local file's modification time, so
// that the archive dates each log by its node (ls -lt, find -mtime, the
// viewer), not by its upload. Best effort: a server that refuses or lacks
// MFMT is told once per push and keeps upload times.
func (t *transfer) touch(ctx context.Context) {
	mt, ok := t.c.(modTimer)
	if !ok || t.r.noModTime.Load() {
		return
	}
	err := mt.SetModTime(ctx, t.rpath(), time.Unix(0, t.loc.mtime))
	switch {
	case err == nil:
	case errors.Is(err, ftpfs.ErrNotSupported) || errors.Is(err, ftpfs.ErrPermission):
		if !t.r.noModTime.Swap(true) {
			t.r.a.log.Info("the server does not take the files' times; archived files keep their upload times", "err", err)
		}
	default:
		t.r.a.log.Debug("file time not set", "path", t.rel, "err", err)
	}
}

// commit records the confirmed file in the manifest, durably: the server
// has the bytes, so the manifest must not forget them.
func (t *transfer) commit(h hash.Hash) error {
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("save hash state: %w", err)
	}
	e := store.Entry{}
	if t.entry != nil {
		e = *t.entry
	}
	if t.from == 0 {
		e.Versions++
	}
	e.Status = t.status
	e.Size, e.MtimeNs, e.Dev, e.Ino = t.loc.size, t.loc.mtime, t.loc.dev, t.loc.ino
	e.Archived, e.HashState, e.OldSize = t.loc.size, state, 0
	e.Remote = nil
	if t.remote != t.rel {
		e.Remote = []byte(t.remote)
	}
	if err := setFingerprints(&e, t.loc); err != nil {
		return err
	}
	e.UpdatedNs = nowNs()
	// The commit entry first: a crash between the two leaves an entry
	// for bytes the server holds (true, and sent again harmlessly), never
	// a recorded file whose SHA-256 the historian never learns.
	if t.noEntry {
		t.r.record(t.remote, t.remote, t.loc.size, t.from, h.Sum(nil))
		t.r.archived(t.remote, t.loc.size, t.from)
		return nil
	}
	t.r.record(t.rel, t.remote, t.loc.size, t.from, h.Sum(nil))
	if err := t.r.put([]byte(t.rel), e, true); err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	t.r.archived(t.rel, t.loc.size, t.from)
	return nil
}

// progressReader reports bytes as they are read for the upload.
type progressReader struct {
	r io.Reader
	p Progress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.p.Sent(int64(n))
	}
	return n, err
}

func nowNs() int64 { return time.Now().UnixNano() }
