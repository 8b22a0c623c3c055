package syncer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/syncer-dev/syncer/store"
)

// This file follows rotated logs within the matched names: a log renamed
// (found by inode) or copied (found by its head fingerprint) continues its
// archived copy, which gets only the tail. follow.go looks beyond them.

// rotate handles a file renamed by log rotation (app.log -> app.log.1): its
// first bytes are archived already, under the old name. Only its tail (what
// was written after the last push, typically just before the rename) is
// sent, appended to the archived copy of the old name; the new name is
// recorded as rotated, pointing at that copy, and is never uploaded again.
// When the old name now holds a new file, that file is stored afterwards
// as a new version of the old name (phase B of execute), so the server
// keeps the complete rotated log as the superseded version of the old name.
func (r *run) rotate(ctx context.Context, j job, loc *local) error {
	fe := j.fromEntry
	remote := j.from
	if len(fe.Remote) > 0 {
		remote = string(fe.Remote)
	}
	t := &transfer{r: r, loc: loc, rel: j.rel, remote: remote, entry: &fe, outcome: planAppend}
	t.status = store.StatusRotated
	if remote == j.rel {
		t.status = store.StatusArchived
	}
	r.a.log.Info("rotated log recognised", "path", j.rel, "was", j.from, "archived_as", remote)
	if r.a.opts.DryRun {
		r.dry("%-9s %s (was %s, %d bytes)\n", "rotated", j.rel, j.from, loc.size-fe.Archived)
		r.count(&r.sum.FilesRotated)
		return nil
	}
	if err := r.continueRotated(ctx, t); err != nil {
		return err
	}
	if t.outcome != planAppend {
		// The old copy could not be continued: archived under its own
		// name instead.
		r.countPlan(t.outcome)
		return r.forget(j)
	}
	r.count(&r.sum.FilesRotated)
	return r.forget(j)
}

// continueRotated brings the archived copy t.remote up to date with the
// rotated file t.loc, which continues t.entry's archived bytes: the tail is
// appended (see runRotated), or, with nothing new, the entry moves to
// t.rel without any network.
func (r *run) continueRotated(ctx context.Context, t *transfer) error {
	if t.loc.size > t.entry.Archived {
		c, err := r.getConn(ctx)
		if err != nil {
			return err
		}
		t.c = c
		err = t.runRotated(ctx)
		r.conns.Put(c, err)
		return err
	}
	if t.noEntry {
		return nil
	}
	e := *t.entry
	e.Status, e.Size, e.MtimeNs, e.Dev, e.Ino, e.UpdatedNs = t.status, t.loc.size, t.loc.mtime, t.loc.dev, t.loc.ino, nowNs()
	e.Remote = nil
	if t.status == store.StatusRotated {
		e.Remote = []byte(t.remote)
	}
	if err := r.put([]byte(t.rel), e, true); err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return nil
}

// followCopy checks whether the file at j.rel is a copy of a log that left
// its name (see copiedFrom) and, if so, archives it as that log's rotated
// file.
func (r *run) followCopy(ctx context.Context, j job, loc *local) (bool, error) {
	rj, ok, err := r.copiedFrom(j.rel, loc)
	if err != nil || !ok {
		return false, err
	}
	if err := r.rotate(ctx, rj, loc); err != nil {
		// The old log must not be superseded before the copy's tail
		// reached it: its rewrite waits for the next push.
		r.holdRewrite(rj.from)
		return true, err
	}
	return true, nil
}

// runRotated appends the rotated file's tail to the copy archived under its
// old name, provided the server still holds exactly that copy; otherwise
// the file is archived under its own name.
func (t *transfer) runRotated(ctx context.Context) error {
	rs, exists, err := t.remoteSize(ctx)
	if err != nil {
		return err
	}
	if exists && rs == t.entry.Archived {
		if ok, err := t.sameBlock(ctx, rs); err != nil {
			return err
		} else if ok {
			h, err := resumeHash(t.entry.HashState)
			if err == nil {
				return t.send(ctx, rs, h)
			}
		}
	}
	if ok, err := t.locateVersion(ctx, t.entry); err != nil {
		return err
	} else if ok {
		h, err := resumeHash(t.entry.HashState)
		if err != nil {
			return err
		}
		return t.send(ctx, t.entry.Archived, h)
	}
	t.entry = nil
	return t.ownName(ctx)
}

// ownName archives a rotated file whose archived copy the server no longer
// holds under its own name: nothing is lost, its bytes may be archived
// twice.
func (t *transfer) ownName(ctx context.Context) error {
	if t.noEntry {
		return fmt.Errorf("archived copy %s not found on the server: the rotated log's tail was not archived", t.remote)
	}
	t.r.a.log.Warn("archived copy of a rotated log not found on the server; archiving it under its own name", "path", t.rel, "copy", t.remote)
	t.remote, t.status, t.outcome = t.rel, store.StatusArchived, planNew
	return t.run(ctx, planNew)
}

// copyCandidates bounds how many archived files with the same head a new
// file is compared with.
const copyCandidates = 16

// copiedFrom recognises a new file that is a copy of an archived log whose
// own path no longer continues its archived bytes: logrotate's copytruncate
// (app.log copied to app.log.1, then app.log truncated), or a log copied
// elsewhere and its original deleted. The copy holds the archived bytes and
// what was written after the last push; it is archived as a rotated log
// (see rotate): its tail is appended to the archived copy, so that every
// byte is archived once and in the version it was written to. A copy of a
// log that still continues at its own path is an ordinary new file.
//
// The copy is found by its head fingerprint (store.FindByHead) and checked
// like a renamed log, by the block before the archived offset too.
func (r *run) copiedFrom(rel string, loc *local) (job, bool, error) {
	head := make([]byte, min(loc.size, store.FingerprintSpan))
	if _, err := loc.f.ReadAt(head, 0); err != nil {
		return job{}, false, fmt.Errorf("read: %w", unwrapPath(err))
	}
	found, err := r.a.manifest.FindByHead(head, loc.size, copyCandidates)
	if err != nil {
		return job{}, false, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	for _, m := range found {
		from := string(m.Path)
		if from == rel {
			continue
		}
		// FindByHead matched the head and the size already.
		if ok, err := sameArchivedBlock(loc, &m.Entry); err != nil {
			return job{}, false, err
		} else if !ok {
			continue
		}
		gone, moved := r.leftBehind(from, &m.Entry)
		if !moved || !r.claim(from) {
			continue
		}
		r.a.log.Info("copied log recognised", "path", rel, "copy_of", from)
		return job{kind: jobRotate, rel: rel, from: from, fromEntry: m.Entry, fromGone: gone}, true, nil
	}
	return job{}, false, nil
}

// leftBehind reports whether the file at from no longer continues the
// archived bytes of its entry e (moved), and whether nothing is there at
// all (gone). A file that cannot be checked counts as still there: the copy
// is then archived as a new file, which loses nothing.
func (r *run) leftBehind(from string, e *store.Entry) (gone, moved bool) {
	f, err := openLog(filepath.Join(r.a.opts.Dir, filepath.FromSlash(from)))
	if errors.Is(err, fs.ErrNotExist) {
		return true, true
	}
	if err != nil {
		return false, false
	}
	defer f.Close()
	fi, err := statOpen(f)
	if err != nil || !fi.Mode().IsRegular() {
		return false, false
	}
	ok, err := continues(&local{f: f, size: fi.Size()}, e)
	return false, err == nil && !ok
}

// forget drops the old path's entry once a rotated file has taken it over
// and nothing is left at the old path.
func (r *run) forget(j job) error {
	if !j.fromGone {
		return nil
	}
	r.dirty.Store(true)
	b := r.a.manifest.NewBatch()
	if err := b.Delete([]byte(j.from)); err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	if err := b.Commit(false); err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return nil
}
