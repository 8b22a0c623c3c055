package syncer

// Carrying out a departure's plan: the tail, unseen generations, what
// cannot be resolved.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"

	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/store"
)

// depart carries out a departure's plan (see departPlan).
func (r *run) depart(ctx context.Context, p departPlan) error {
	d := p.d
	e := d.entry
	remote := d.rel
	if len(e.Remote) > 0 {
		remote = string(e.Remote)
	}
	var err error
	switch p.kind {
	case foundNone:
		if p.resolved {
			break
		}
		switch lost := e.Size - e.Archived; {
		case e.Archived == 0 && d.sameFile:
			// An empty log that grew (see process): nothing left it.
		case lost > 0 && e.Status != store.StatusCompressed:
			r.unrecoverable(d.rel, lost, "rotated log left the node before its last bytes were archived")
		case d.live && !d.gone:
			// A new file took the name, or the file was truncated in
			// place, and the log it was is nowhere: rotated more often
			// than pushed (the oldest kept name deleted since), deleted
			// before the rotation, or truncated without a copy. What it
			// gained after the last push is lost, if anything; how much
			// cannot be known.
			why := "rotated log not found on the node (rotated again, or deleted, before this push): lines written to it after its last push, if any, are lost"
			if d.sameFile {
				why = "log truncated or rewritten in place and no copy of it found on the node: lines written to it after its last push, if any, are lost"
			}
			r.unrecoverable(d.rel, 0, why)
			r.recordGap(d.rel, remote, &e)
		case d.live:
			r.a.log.Info("log left the node, kept in the archive", "path", d.rel)
		default:
			r.a.log.Debug("rotated log left the node", "path", d.rel)
		}
	case foundFile, foundGzip:
		err = r.takeTail(ctx, p, remote)
	case foundGzipNo:
		r.a.log.Info("compressed rotation recognised", "path", p.to.display(), "of", d.rel)
		if !r.a.opts.DryRun && p.to.rel != "" {
			if err := r.putCompressed(p.to, e, remote, false); err != nil {
				return err
			}
		}
	}
	if err != nil {
		return err
	}
	for _, g := range p.gens {
		if err := r.generation(ctx, g, remote); err != nil {
			return err
		}
	}
	if p.then != nil {
		return r.process(ctx, *p.then)
	}
	if d.gone && !p.keep && !r.a.opts.DryRun {
		// A log that vanished stays archived and is marked gone; one that
		// moved is followed under its new name, and its old name is
		// forgotten.
		if d.live && p.kind == foundNone {
			r.markGone(d.rel, e)
		} else if err := r.forget(job{from: d.rel, fromGone: true}); err != nil {
			return err
		}
	} else if !d.live && !d.gone && !p.keep && !r.a.opts.DryRun && !r.a.match.Match(d.rel) {
		// A followed file whose name now holds something else: drop it.
		if err := r.forget(job{from: d.rel, fromGone: true}); err != nil {
			return err
		}
	}
	return nil
}

// takeTail appends what the found file holds beyond the archived bytes to
// the archived copy and follows the file from now on.
func (r *run) takeTail(ctx context.Context, p departPlan, remote string) error {
	s := p.to
	gz := p.kind == foundGzip
	loc, err := r.openSibling(s, gz)
	if err != nil {
		return err
	}
	defer loc.f.Close()
	f := loc.f
	e := p.d.entry
	if ok, err := continues(loc, &e); err != nil || !ok {
		r.a.log.Warn("rotated log changed while it was read; not archived from it", "path", s.display(), "log", p.d.rel)
		return err
	}
	if gz {
		// The whole archived prefix must hash as recorded.
		h, herr := resumeHash(e.HashState)
		whole := sha256.New()
		if _, err := io.Copy(whole, io.NewSectionReader(f, 0, e.Archived)); err != nil || herr != nil || string(whole.Sum(nil)) != string(h.Sum(nil)) {
			// Its head and length matched, the bytes in between do not:
			// the tail cannot be placed after the archived copy.
			r.unrecoverable(p.d.rel, loc.size-e.Archived, "compressed rotation does not hold the archived bytes; its tail is not archived")
			return nil
		}
	}
	rel := s.rel // "" outside the log directory: tail only, nothing followed
	name := s.display()
	lvl := slog.LevelInfo
	if loc.size == e.Archived {
		lvl = slog.LevelDebug // a rotated file renamed on: nothing to send
	}
	r.a.log.Log(ctx, lvl, "rotated log recognised", "path", name, "was", p.d.rel, "archived_as", remote, "tail", loc.size-e.Archived)
	if r.a.opts.DryRun {
		r.dry("%-9s %s (was %s, %d bytes)\n", "rotated", name, p.d.rel, loc.size-e.Archived)
		r.count(&r.sum.FilesRotated)
		return nil
	}
	t := &transfer{r: r, loc: loc, rel: rel, remote: remote, entry: &e, outcome: planAppend, noEntry: rel == ""}
	t.status = store.StatusRotated
	if err := r.continueRotated(ctx, t); err != nil {
		return err
	}
	r.count(&r.sum.FilesRotated)
	if gz && rel != "" {
		return r.markCompressed(s)
	}
	return nil
}

// generation archives g, a version of the log at remote that the agent
// never saw, as the log's next version, and follows it.
func (r *run) generation(ctx context.Context, g *sibling, remote string) error {
	_, gz := rotatedName(path.Base(remote), g.name)
	r.a.log.Info("unseen generation of a rotated log archived as a version", "path", g.display(), "log", remote)
	if r.a.opts.DryRun {
		r.dry("%-9s %s (as a version of %s, %d bytes)\n", "version", g.display(), remote, g.fi.Size())
		return nil
	}
	loc, err := r.openSibling(g, gz)
	if err != nil {
		return err
	}
	defer loc.f.Close()
	c, err := r.getConn(ctx)
	if err != nil {
		return err
	}
	t := &transfer{r: r, c: c, loc: loc, rel: g.rel, remote: remote, noEntry: g.rel == ""}
	err = t.run(ctx, planRewrite)
	r.conns.Put(c, err)
	if err != nil {
		return err
	}
	r.count(&r.sum.FilesNew)
	if gz && g.rel != "" {
		return r.markCompressed(g)
	}
	return nil
}

// unrecoverable reports a log whose last bytes the agent cannot archive:
// n bytes it saw and could not send, or 0 when how many is unknown.
func (r *run) unrecoverable(rel string, n int64, why string) {
	r.mu.Lock()
	r.sum.FilesUnrecoverable++
	r.sum.BytesUnrecoverable += n
	r.mu.Unlock()
	attrs := []any{"path", rel}
	if n > 0 {
		attrs = append(attrs, "bytes_lost", n)
	} else {
		attrs = append(attrs, "bytes_lost", "unknown")
	}
	r.a.log.Warn(why, attrs...)
}

// recordGap tells the historian that the archived copy of e at remote (as
// the agent archived it) lacks lines written on the node, so that it is not
// shown as plainly verified.
func (r *run) recordGap(rel, remote string, e *store.Entry) {
	h, err := resumeHash(e.HashState)
	if err != nil || r.a.opts.DryRun {
		return
	}
	r.recordFile(CommitFile{Path: rel, Size: e.Archived, SHA256: hex.EncodeToString(h.Sum(nil)), From: e.Archived, Gap: true}, rel, remote)
}

// locateVersion points t at the server's superseded version of its remote
// file that holds exactly the archived bytes of e (a newer file took the
// name since: the new app.log after a rotation), if there is one.
func (t *transfer) locateVersion(ctx context.Context, e *store.Entry) (bool, error) {
	dir, base := path.Split(t.remote)
	rdir := t.r.a.treeRoot()
	if dir != "" {
		rdir = t.r.remotePath(strings.TrimSuffix(dir, "/"))
	}
	entries, err := t.c.List(ctx, rdir)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("list versions: %w", err)
	}
	var names []string
	for _, en := range entries {
		if !en.Dir && en.Size == e.Archived && strings.HasPrefix(en.Name, base+archive.VersionMarker) {
			names = append(names, en.Name)
		}
	}
	slices.Sort(names)
	saved := t.remote
	for _, name := range slices.Backward(names) {
		t.remote = dir + name
		ok, err := t.sameBlock(ctx, e.Archived)
		if err != nil || ok {
			if err != nil {
				t.remote = saved
			}
			return ok, err
		}
	}
	t.remote = saved
	return false, nil
}
