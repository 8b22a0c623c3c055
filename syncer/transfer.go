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
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/store"
)

// ErrRemoteMismatch is returned when the server's size after a transfer is
// not the size that was sent: the manifest is not advanced and the next
// push resumes from the server's size.
var ErrRemoteMismatch = errors.New("server size differs after upload")

// local is a log file opened for a transfer, with its stat taken from the
// open descriptor: the bytes sent are exactly [0, size) of this file, even
// if it grows meanwhile (the next push sends the rest).
type local struct {
	f     *os.File
	size  int64
	mtime int64
	dev   uint64
	ino   uint64
}

// plan is how a file is brought up to date on the server.
type plan int

const (
	planUnchanged     plan = iota // content equal to the archived bytes
	planNew                       // not archived yet (or resuming its first upload)
	planAppend                    // archived bytes are a prefix: send the tail
	planRewrite                   // anything else: store a new version from 0
	planResumeRewrite             // a new version was begun by an earlier push
)

func (p plan) String() string {
	return [...]string{"unchanged", "new", "append", "rewrite", "rewrite"}[p]
}

// do processes one job; failures of the file are recorded, failures of the
// manifest end the push.
func (r *run) do(ctx context.Context, j job) {
	if p := r.a.opts.Progress; p != nil {
		defer p.FileDone()
	}
	if ctx.Err() != nil {
		return
	}
	err := r.process(ctx, j)
	switch {
	case err == nil:
	case errors.Is(err, ErrManifest), IsConnectError(err):
		// Without the manifest nothing can be recorded; without the server
		// every other file would fail the same way.
		r.onFatal(err)
	case ctx.Err() != nil:
		// Cut by cancellation: not a failure of the file. The manifest
		// holds what the server confirmed; the next push resumes.
		r.a.log.Info("transfer cut", "path", j.rel, "err", err)
	default:
		r.fail(j.rel, err)
	}
}

// process brings the file of one job up to date: it is classified (what
// is it to the archive?), settled if nothing is to be sent now, and
// uploaded (or, in a dry run, described).
func (r *run) process(ctx context.Context, j job) error {
	if j.kind == jobDepart {
		return r.depart(ctx, *j.plan)
	}
	abs := filepath.Join(r.a.opts.Dir, filepath.FromSlash(j.rel))
	f, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("open: %w", unwrapPath(err))
	}
	defer f.Close()
	loc, err := openLocal(f)
	if err != nil {
		return err
	}
	fj := &fileJob{r: r, j: j, loc: loc, remote: j.rel}
	if done, err := fj.classify(ctx); done || err != nil {
		return err
	}
	if done, err := fj.settle(); done || err != nil {
		return err
	}
	if r.a.opts.DryRun {
		fj.dryRun()
		return nil
	}
	return fj.upload(ctx)
}

// fileJob is the processing of one job's local file: what the file is
// (its plan, its manifest entry, the remote path it is archived under),
// then what is done about it. A phase that returns done has dealt with
// the file (or failed).
type fileJob struct {
	r      *run
	j      job
	loc    *local
	e      *store.Entry // the manifest's entry of a checked file, else nil
	remote string
	p      plan
}

// classify decides the plan of the file by the kind of its job; a rotated
// file, a gzip or a copy may be dealt with on the way.
func (fj *fileJob) classify(ctx context.Context) (done bool, err error) {
	switch fj.j.kind {
	case jobRotate:
		return fj.classifyRotated(ctx)
	case jobNew:
		return fj.classifyNew(ctx)
	case jobCheck:
		return fj.classifyCheck(ctx)
	}
	return false, nil
}

// classifyRotated: a file that took the place of an archived one.
func (fj *fileJob) classifyRotated(ctx context.Context) (done bool, err error) {
	r, j, loc := fj.r, fj.j, fj.loc
	if j.fromEntry.Status == store.StatusCompressed {
		if ok, err := r.moveCompressed(ctx, j, loc); err != nil || ok {
			return true, err
		}
		fj.p = planNew
		return false, nil
	}
	if ok, err := continues(loc, &j.fromEntry); err != nil {
		return true, err
	} else if ok {
		return true, r.rotate(ctx, j, loc)
	}
	fj.p = planNew // same inode, other content: the inode was reused
	return false, nil
}

// classifyNew: a file the manifest does not know.
func (fj *fileJob) classifyNew(ctx context.Context) (done bool, err error) {
	r, j, loc := fj.r, fj.j, fj.loc
	if isGzip(j.rel) && !j.asFile {
		if ok, err := r.compressedForm(ctx, j.rel, loc); err != nil || ok {
			return true, err
		}
		if j.gzOnly {
			r.stashGzip(j.rel)
			return true, nil
		}
	}
	if ok, err := r.followCopy(ctx, j, loc); err != nil || ok {
		return true, err
	}
	fj.p = planNew
	return false, nil
}

// classifyCheck: a file the manifest knows, compared with its entry.
func (fj *fileJob) classifyCheck(ctx context.Context) (done bool, err error) {
	r, j, loc := fj.r, fj.j, fj.loc
	if j.tryCopy {
		if ok, err := r.followCopy(ctx, j, loc); err != nil || ok {
			return true, err
		}
	}
	e := j.entry
	fj.e = e
	if len(e.Remote) > 0 {
		fj.remote = string(e.Remote)
	}
	switch e.Status {
	case store.StatusPartial:
		fj.p = planNew
	case store.StatusRewritePending:
		fj.p = planResumeRewrite
	default:
		p, err := compare(loc, e)
		if err != nil {
			return true, err
		}
		if p == planAppend && e.Archived == 0 && e.Status == store.StatusArchived && !j.final {
			// An empty log that grew: nothing archived tells its content
			// apart, so a truncation since the last push (copytruncate
			// right after a push that found it empty) cannot be seen.
			// It goes through the rewrite phase, which archives the
			// rotated generations written since first; stored from 0,
			// it sends what an append would.
			p = planRewrite
		}
		fj.p = p
	}
	return false, nil
}

// settle deals with the plans that send nothing now, and archives a
// rotated file that no longer continues its copy under its own name.
func (fj *fileJob) settle() (done bool, err error) {
	r, j, e := fj.r, fj.j, fj.e
	if fj.p == planUnchanged {
		return true, r.touch(j.rel, fj.loc, e)
	}
	if j.followed && fj.p != planAppend {
		// A rotated file outside the matched names that changed other
		// than by growing is no longer the archived log: not followed.
		r.a.log.Info("rotated log rewritten; no longer followed", "path", j.rel)
		return true, r.forget(job{from: j.rel, fromGone: true})
	}
	if fj.p == planRewrite && !j.final {
		// Stored after the new files of this push, one of which may be
		// its copy (see execute).
		r.deferRewrite(j)
		return true, nil
	}
	if e != nil && e.Status == store.StatusRotated && fj.p != planAppend {
		// A rotated file that changed other than by growing no longer
		// continues the archived copy it was recorded under: it is archived
		// under its own name from now on.
		fj.p, fj.remote = planNew, j.rel
	}
	return false, nil
}

// dryRun says what would be sent.
func (fj *fileJob) dryRun() {
	n := fj.loc.size
	if fj.p == planAppend {
		n -= fj.e.Archived
	}
	fj.r.dry("%-9s %s (%d bytes)\n", fj.p, fj.j.rel, n)
	fj.r.countPlan(fj.p)
}

// upload carries out the plan over a connection of the pool.
func (fj *fileJob) upload(ctx context.Context) error {
	r, e := fj.r, fj.e
	c, err := r.getConn(ctx)
	if err != nil {
		return err
	}
	t := &transfer{r: r, c: c, loc: fj.loc, rel: fj.j.rel, remote: fj.remote, entry: e}
	err = t.run(ctx, fj.p)
	r.conns.Put(c, err)
	if err != nil {
		return err
	}
	if t.outcome == planRewrite && e != nil && e.Archived == 0 && e.Status == store.StatusArchived {
		t.outcome = planAppend // an empty log that grew (see classifyCheck)
	}
	r.countPlan(t.outcome)
	return nil
}

// connWait bounds the wait for a connection: while the server is down the
// pool keeps redialling, and a file should fail (and be retried by the next
// push) rather than hang the push.
const connWait = 30 * time.Second

func (r *run) getConn(ctx context.Context) (Conn, error) {
	gctx, cancel := context.WithTimeout(ctx, connWait)
	defer cancel()
	c, err := r.conns.Get(gctx)
	if err != nil {
		if gctx.Err() != nil && ctx.Err() == nil && !IsConnectError(err) {
			err = fmt.Errorf("%w: no connection within %s: %w", ftpfs.ErrUnreachable, connWait, err)
		}
		return nil, err
	}
	return c, nil
}

func (r *run) countPlan(p plan) {
	switch p {
	case planNew:
		r.count(&r.sum.FilesNew)
	case planAppend:
		r.count(&r.sum.FilesAppended)
	case planRewrite, planResumeRewrite:
		r.count(&r.sum.FilesRewritten)
	case planUnchanged:
		r.count(&r.sum.FilesUnchanged)
	}
}

// touch records a new stat for a file whose content is what was archived
// (touched, or replaced by an identical copy).
func (r *run) touch(rel string, loc *local, e *store.Entry) error {
	r.countPlan(planUnchanged)
	if r.a.opts.DryRun {
		return nil
	}
	ne := *e
	if ne.Status == store.StatusGone {
		ne.Status = store.StatusArchived
		if len(ne.Remote) > 0 && string(ne.Remote) != rel {
			ne.Status = store.StatusRotated
		}
	}
	ne.Size, ne.MtimeNs, ne.Dev, ne.Ino, ne.UpdatedNs = loc.size, loc.mtime, loc.dev, loc.ino, nowNs()
	if err := r.put([]byte(rel), ne, false); err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return nil
}

// compare decides how a file relates to its archived bytes, reading only the
// two fingerprinted blocks unless the size is unchanged (then the whole file
// is hashed: a same-size rewrite must not pass for unchanged).
func compare(loc *local, e *store.Entry) (plan, error) {
	ok, err := continues(loc, e)
	if err != nil || !ok {
		return planRewrite, err
	}
	if loc.size > e.Archived {
		return planAppend, nil
	}
	h, err := resumeHash(e.HashState)
	if err != nil {
		return planRewrite, nil
	}
	whole := sha256.New()
	if _, err := io.Copy(whole, io.NewSectionReader(loc.f, 0, loc.size)); err != nil {
		return planRewrite, fmt.Errorf("read: %w", unwrapPath(err))
	}
	if bytes.Equal(whole.Sum(nil), h.Sum(nil)) {
		return planUnchanged, nil
	}
	return planRewrite, nil
}

// continues reports whether the file still begins with the archived bytes
// of e, as far as the fingerprints tell: at least as long, same head, same
// block before the archived offset.
func continues(loc *local, e *store.Entry) (bool, error) {
	if loc.size < e.Archived {
		return false, nil
	}
	head, err := fingerprint(loc.f, 0, e.HeadLen)
	if err != nil || head != e.Head {
		return false, err
	}
	return sameArchivedBlock(loc, e)
}

// sameArchivedBlock reports whether the block before e's archived offset
// is unchanged in loc (which holds at least e.Archived bytes).
func sameArchivedBlock(loc *local, e *store.Entry) (bool, error) {
	n := min(store.FingerprintSpan, e.Archived)
	block, err := fingerprint(loc.f, e.Archived-n, n)
	if err != nil {
		return false, err
	}
	return block == e.Block, nil
}

// fingerprint hashes n bytes of f at off.
func fingerprint(f io.ReaderAt, off, n int64) ([store.FingerprintSize]byte, error) {
	var out [store.FingerprintSize]byte
	h := sha256.New()
	got, err := io.Copy(h, io.NewSectionReader(f, off, n))
	if err != nil {
		return out, fmt.Errorf("read: %w", unwrapPath(err))
	}
	if got != n {
		return out, fmt.Errorf("read: file shrank while reading")
	}
	copy(out[:], h.Sum(nil))
	return out, nil
}

// resumeHash returns a SHA-256 continuing from a marshalled state (a fresh
// one for an empty state).
func resumeHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if len(state) == 0 {
		return h, nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restore hash state: %w", err)
	}
	return h, nil
}

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
func (t *transfer) run(ctx context.Context, p plan) error {
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
	return t.commit(h)
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

// setFingerprints fills the head and block fingerprints of e for the first
// e.Archived bytes of loc.
func setFingerprints(e *store.Entry, loc *local) error {
	e.HeadLen = store.HeadLenFor(e.Archived)
	var err error
	if e.Head, err = fingerprint(loc.f, 0, e.HeadLen); err != nil {
		return err
	}
	n := min(store.FingerprintSpan, e.Archived)
	e.Block, err = fingerprint(loc.f, e.Archived-n, n)
	return err
}

// openLocal takes the stat of an open file for a transfer.
func openLocal(f *os.File) (*local, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	loc := &local{f: f, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	loc.dev, loc.ino = fileID(fi)
	return loc, nil
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
