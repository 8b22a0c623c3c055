package syncer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/store"
)

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
	f, err := openLog(abs)
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
