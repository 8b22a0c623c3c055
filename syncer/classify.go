package syncer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/syncer-dev/syncer/store"
)

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

// openLocal takes the stat of an open file for a transfer.
func openLocal(f *os.File) (*local, error) {
	fi, err := statOpen(f)
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
