package syncer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/syncer-dev/syncer/store"
)

// pusher carries one push through its phases. The walk visits paths in
// the manifest's key order, so the diff is a merge of two sorted streams:
// the directory walk and a manifest iterator (merge, visit). Files whose
// stat matches their entry cost that one lstat; files that need work are
// queued to the workers while the walk goes on. Files whose identity
// changed wait for the walk to end, because a rotation shows up as several
// of them and their order matters: a log's tail must reach its archived
// copy before the new file under its name supersedes that copy on the
// server. The phases after the walk, in order:
//
//   - G: new gzip files, each checked for being a compressed rotation
//     before any entry moves;
//   - A: logs renamed within the matched names (found by inode), one new
//     name per old name;
//   - D: identities that left their names and were not found among the
//     matched files, looked for beside them (follow.go);
//   - B: new files under archived names (the new app.log), after their
//     names' old bytes were completed;
//   - C: rewrites (a file that no longer begins with its archived bytes,
//     copytruncate's app.log), stored as new versions once every new file
//     was looked at, since one may be the copy whose tail must come first;
//     then the gzip files nothing explained, as files of their own.
type pusher struct {
	r    *run
	ctx  context.Context
	jobs chan job
	// workers run jobs; streamed counts the jobs queued by the walk.
	workers, streamed sync.WaitGroup
	// it is the manifest iterator merged with the walk.
	it *store.FileIter
	// Deferred by the walk: bounded by what changed, not by the tree.
	arrivals, idChanged []scanned
	gzNew               []string
	// The two counters every file touches, kept by the merge alone.
	scanned, unchanged int64
}

// scanned is what the walk remembers of a file whose fate depends on other
// files (rotation); everything else goes to the workers at once, so that
// memory stays flat on large trees.
type scanned struct {
	rel   string
	entry store.Entry
	// from, fromEntry: for a renamed log, the path its inode had.
	from      string
	fromEntry store.Entry
}

// execute runs the walk, the workers and the phases of one push.
func (r *run) execute(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var fatalOnce sync.Once
	var fatal error
	r.onFatal = func(err error) {
		fatalOnce.Do(func() { fatal = err; cancel(err) })
	}
	r.targeted, r.sibClaimed = map[string]bool{}, map[string]bool{}
	p := &pusher{r: r, ctx: ctx, jobs: make(chan job, 4*r.a.opts.Parallel)}
	p.startWorkers()
	walkErr := p.walk()
	if walkErr == nil && ctx.Err() == nil {
		p.phase(p.gzipJobs())
		p.phase(p.arrivalJobs())
		p.streamed.Wait()
		p.phase(r.departJobs())
		p.phase(p.replacedJobs())
	}
	p.streamed.Wait()
	if ctx.Err() == nil {
		arrived, later := r.rewriteArrivals()
		p.phase(arrived)
		p.phase(r.rewriteDepartures(later))
		p.phase(p.leftoverJobs())
	}
	p.streamed.Wait()
	close(p.jobs)
	p.workers.Wait()
	if fatal != nil {
		return fatal
	}
	if walkErr != nil {
		return walkErr
	}
	return ctx.Err()
}

func (p *pusher) startWorkers() {
	for range p.r.a.opts.Parallel {
		p.workers.Add(1)
		go func() {
			defer p.workers.Done()
			for j := range p.jobs {
				p.do(j)
			}
		}()
	}
}

// do runs one job on a worker. A fatal error of the manifest's database
// (a *store.FatalError panic) ends the push, not the process; the push's
// goroutine is not there to recover it.
func (p *pusher) do(j job) {
	defer j.wg.Done()
	defer store.RecoverFatal(func(fe *store.FatalError) { p.r.onFatal(fmt.Errorf("%w: %w", ErrManifest, fe)) })
	p.r.do(p.ctx, j)
}

// send queues j, counted in wg (unless the push was cancelled).
func (p *pusher) send(j job, wg *sync.WaitGroup) {
	j.wg = wg
	wg.Add(1)
	select {
	case p.jobs <- j:
	case <-p.ctx.Done():
		wg.Done()
	}
}

// stream queues j while the walk goes on; bytes is what it may send.
func (p *pusher) stream(j job, bytes int64) {
	p.r.plan(bytes)
	p.send(j, &p.streamed)
}

// phase runs the jobs of one phase and waits for them.
func (p *pusher) phase(js []job) {
	var wg sync.WaitGroup
	for _, j := range js {
		if p.ctx.Err() != nil {
			break
		}
		p.r.plan(0)
		p.send(j, &wg)
	}
	wg.Wait()
}

// walk merges the directory walk with the manifest.
func (p *pusher) walk() error {
	r := p.r
	var err error
	if p.it, err = r.a.manifest.Files(); err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	walkErr := r.walk(p.ctx, p.visit)
	if walkErr == nil && p.ctx.Err() == nil {
		p.drainTo("", true)
	}
	r.mu.Lock()
	r.sum.FilesScanned += p.scanned
	r.sum.FilesUnchanged += p.unchanged
	r.mu.Unlock()
	if err := p.it.Close(); err != nil && walkErr == nil {
		walkErr = fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return walkErr
}

// drainTo passes the manifest entries before rel that the walk did not
// visit: gone, no longer matched, or rotated files followed outside the
// matched names (see unvisited).
func (p *pusher) drainTo(rel string, all bool) {
	r, it := p.r, p.it
	for it.Valid() && (all || store.ComparePathString(it.Path(), rel) < 0) {
		if st, err := it.Stat(); err != nil {
			r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
		} else if st.Status != store.StatusGone {
			if e, err := it.Entry(); err != nil {
				r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
			} else if j, ok := r.unvisited(string(it.Path()), e); ok {
				p.stream(j, 0)
			}
		}
		it.Next()
	}
}

// visit is the merge's step for one file of the walk.
func (p *pusher) visit(rel string, fi fs.FileInfo, visitErr error) {
	r, it := p.r, p.it
	p.drainTo(rel, false)
	p.scanned++
	var entry *store.Entry
	if it.Valid() && store.ComparePathString(it.Path(), rel) == 0 {
		defer it.Next()
		if visitErr == nil {
			// The quick check decodes only the stat fields.
			st, err := it.Stat()
			dev, ino := fileID(fi)
			if err == nil && unchangedStatus(st.Status) &&
				st.Size == fi.Size() && st.MtimeNs == fi.ModTime().UnixNano() && st.Dev == dev && st.Ino == ino {
				p.unchanged++
				return
			}
		}
		e, err := it.Entry()
		if err != nil {
			r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
			return
		}
		entry = &e
	}
	if visitErr != nil {
		r.fail(rel, visitErr)
		return
	}
	dev, ino := fileID(fi)
	size, mtime := fi.Size(), fi.ModTime().UnixNano()
	sameFile := entry != nil && (entry.Ino == 0 || ino == 0 || (entry.Dev == dev && entry.Ino == ino))
	switch {
	case entry != nil && (entry.Status == store.StatusPartial || entry.Status == store.StatusRewritePending):
		p.stream(job{kind: jobCheck, rel: rel, entry: entry}, size-entry.Archived)
	case sameFile && unchangedStatus(entry.Status) &&
		entry.Size == size && entry.MtimeNs == mtime && entry.Dev == dev && entry.Ino == ino:
		r.count(&r.sum.FilesUnchanged)
	case sameFile && entry.Status != store.StatusGone && entry.Status != store.StatusCompressed:
		p.stream(job{kind: jobCheck, rel: rel, entry: entry}, size-entry.Archived)
	default:
		p.newIdentity(rel, fi, entry, sameFile)
	}
}

// newIdentity sorts out a file the manifest does not know under rel: a log
// renamed from another name (phase A), a new gzip file (G), a new file
// under an archived name (B), or a new file.
func (p *pusher) newIdentity(rel string, fi fs.FileInfo, entry *store.Entry, sameFile bool) {
	r := p.r
	dev, ino := fileID(fi)
	// The identity that was at rel left it (found in phase A or D).
	leaving := entry != nil && !sameFile && entry.Status != store.StatusGone && entry.Status != store.StatusCompressed
	if from, fe, err := r.a.manifest.LookupInode(dev, ino); err == nil && string(from) != rel {
		// The inode was archived under another name. If that name still
		// holds this inode, this is a hard link: a new file.
		if !r.holds(string(from), dev, ino) && r.sameIdentity(rel, fi, &fe) {
			p.arrivals = append(p.arrivals, scanned{rel: rel, from: string(from), fromEntry: fe})
			if leaving {
				r.departed(departure{rel: rel, entry: *entry, live: entry.Status == store.StatusArchived})
			}
			return
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
		return
	}
	if leaving {
		r.departed(departure{rel: rel, entry: *entry, live: entry.Status == store.StatusArchived})
	}
	switch {
	case isGzip(rel) && (entry == nil || !sameFile || entry.Status == store.StatusGone || entry.Status == store.StatusCompressed):
		p.gzNew = append(p.gzNew, rel)
	case entry == nil:
		p.stream(job{kind: jobNew, rel: rel}, fi.Size())
	case entry.Status == store.StatusGone && sameFile:
		p.stream(job{kind: jobCheck, rel: rel, entry: entry}, fi.Size()-entry.Archived)
	default:
		// A new file under an archived name: it becomes the next version
		// once the one before it is complete.
		p.idChanged = append(p.idChanged, scanned{rel: rel, entry: *entry})
	}
}

// gzipJobs (phase G) check the new gzip files for compressed rotations
// before any entry moves: one may be the compressed form of a log whose
// entry a rotation overwrites in phase A.
func (p *pusher) gzipJobs() []job {
	var js []job
	for _, rel := range p.gzNew {
		js = append(js, job{kind: jobNew, rel: rel, gzOnly: true})
	}
	return js
}

// arrivalJobs (phase A) move the logs renamed within the matched names,
// one new name per old name.
func (p *pusher) arrivalJobs() []job {
	r := p.r
	var js []job
	for _, c := range p.arrivals {
		if !r.claim(c.from) {
			js = append(js, job{kind: jobNew, rel: c.rel})
			continue
		}
		_, statErr := os.Lstat(filepath.Join(r.a.opts.Dir, filepath.FromSlash(c.from)))
		js = append(js, job{kind: jobRotate, rel: c.rel, from: c.from, fromEntry: c.fromEntry,
			fromGone: errors.Is(statErr, fs.ErrNotExist) && !r.targeted[c.from]})
	}
	return js
}

// replacedJobs (phase B) store the new files under archived names. One may
// be a copy of another log (copytruncate onto an existing name).
func (p *pusher) replacedJobs() []job {
	var js []job
	for _, s := range p.idChanged {
		e := s.entry
		js = append(js, job{kind: jobCheck, rel: s.rel, entry: &e, tryCopy: true, final: true})
	}
	return js
}

// leftoverJobs (end of phase C) archive the new gzip files that are
// neither a compressed rotation nor an unseen generation of a log, as files
// of their own.
func (p *pusher) leftoverJobs() []job {
	var js []job
	for _, rel := range p.r.gzLeftover() {
		js = append(js, job{kind: jobNew, rel: rel, asFile: true})
	}
	return js
}
