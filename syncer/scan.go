package syncer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/syncer-dev/syncer/store"
)

// jobKind says what the scan found out about a file before opening it.
type jobKind int

const (
	// jobNew: the manifest does not know the path.
	jobNew jobKind = iota
	// jobCheck: the manifest knows the path and the quick check failed (or
	// an upload of it is unfinished).
	jobCheck
	// jobRotate: a path the manifest does not know whose inode was
	// archived under another name that now holds another file or none:
	// a log renamed by rotation.
	jobRotate
	// jobDepart: carry out a departure's plan (follow.go).
	jobDepart
)

// job is one file for a worker.
type job struct {
	kind  jobKind
	rel   string
	entry *store.Entry // manifest entry of rel; nil for jobNew and jobRotate
	// from and fromEntry name the old path of a rotated file; fromGone says
	// that nothing is at the old path any more (its entry moves to rel).
	from      string
	fromEntry store.Entry
	fromGone  bool
	// final marks a job of the last phase: a rewrite found then is stored
	// at once.
	final bool
	// tryCopy: the file may be a copy of another log (checked first).
	tryCopy bool
	// followed: a rotated file outside the matched names, checked for
	// bytes it gained after its rotation.
	followed bool
	// arrived: the rewritten file was found to continue another log.
	arrived bool
	// gzOnly: a new gzip file is only checked for being a compressed
	// rotation (phase G); asFile: it was not, and is archived as a file.
	gzOnly, asFile bool
	// plan is the departure of a jobDepart.
	plan *departPlan
	wg   *sync.WaitGroup
}

// scanned is what the scan remembers of a file whose fate depends on other
// files (rotation); everything else goes to the workers at once, so that
// memory stays flat on large trees.
type scanned struct {
	rel   string
	entry store.Entry
	// from, fromEntry: for a rotation candidate, the path its inode had.
	from      string
	fromEntry store.Entry
}

// execute runs the scan, the workers and the deferred phases of one push.
//
// The walk visits paths in the manifest's key order, so the diff is a merge
// of two sorted streams: the directory walk and a manifest iterator. Files
// whose stat matches their entry cost that one lstat. Files that need work
// are queued to the workers while the walk goes on. Only files whose
// identity changed (new inode, gone, new path with a known inode) wait for
// the walk to end: a rotation (app.log -> app.log.1, new app.log) shows up
// as two of those, and the rotated file's tail must reach the archived copy
// of app.log before the new app.log supersedes it on the server (phases A
// and B). Rewritten files wait for every other file (phase C): a new file
// may be a copy of one (copytruncate, see copiedFrom), and the same holds.
func (r *run) execute(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var fatalOnce sync.Once
	var fatal error
	r.onFatal = func(err error) {
		fatalOnce.Do(func() { fatal = err; cancel(err) })
	}
	r.targeted, r.sibClaimed = map[string]bool{}, map[string]bool{}

	jobs := make(chan job, 4*r.a.opts.Parallel)
	var workers sync.WaitGroup
	for range r.a.opts.Parallel {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				r.do(ctx, j)
				j.wg.Done()
			}
		}()
	}
	var streamed sync.WaitGroup
	send := func(j job, wg *sync.WaitGroup) {
		j.wg = wg
		wg.Add(1)
		select {
		case jobs <- j:
		case <-ctx.Done():
			wg.Done()
		}
	}
	// phase sends the jobs of one phase and waits for them.
	phase := func(js []job) {
		var wg sync.WaitGroup
		for _, j := range js {
			if ctx.Err() != nil {
				break
			}
			r.plan(0)
			send(j, &wg)
		}
		wg.Wait()
	}

	// Deferred: files whose identity changed, and new gzip files (which
	// may be a compressed rotation). They are bounded by what changed,
	// not by the size of the tree.
	var arrivals, idChanged, gzNew []scanned
	// The two counters every file touches are kept by the merge alone and
	// added to the summary after the walk (no lock per file).
	var scannedFiles, unchangedFiles int64
	it, err := r.a.manifest.Files()
	if err != nil {
		close(jobs)
		workers.Wait()
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	// drainTo passes the manifest entries before rel that the walk did not
	// visit: gone, no longer matched, or rotated files followed outside
	// the matched names (see follow.go).
	drainTo := func(rel string, all bool) {
		for it.Valid() && (all || store.ComparePathString(it.Path(), rel) < 0) {
			if st, err := it.Stat(); err != nil {
				r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
			} else if st.Status != store.StatusGone {
				if e, err := it.Entry(); err != nil {
					r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
				} else if j, ok := r.unvisited(string(it.Path()), e); ok {
					r.plan(0)
					send(j, &streamed)
				}
			}
			it.Next()
		}
	}
	visit := func(rel string, fi fs.FileInfo, visitErr error) {
		drainTo(rel, false)
		scannedFiles++
		var entry *store.Entry
		if it.Valid() && store.ComparePathString(it.Path(), rel) == 0 {
			defer it.Next()
			if visitErr == nil {
				// The quick check decodes only the stat fields.
				st, err := it.Stat()
				dev, ino := fileID(fi)
				if err == nil && unchangedStatus(st.Status) &&
					st.Size == fi.Size() && st.MtimeNs == fi.ModTime().UnixNano() && st.Dev == dev && st.Ino == ino {
					unchangedFiles++
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
			r.plan(size - entry.Archived)
			send(job{kind: jobCheck, rel: rel, entry: entry}, &streamed)
			return
		case sameFile && unchangedStatus(entry.Status) &&
			entry.Size == size && entry.MtimeNs == mtime && entry.Dev == dev && entry.Ino == ino:
			r.count(&r.sum.FilesUnchanged)
			return
		case sameFile && entry.Status != store.StatusGone && entry.Status != store.StatusCompressed:
			r.plan(size - entry.Archived)
			send(job{kind: jobCheck, rel: rel, entry: entry}, &streamed)
			return
		}
		// rel holds a file the manifest does not know under this name.
		if from, fe, err := r.a.manifest.LookupInode(dev, ino); err == nil && string(from) != rel {
			// The inode was archived under another name. If that name
			// still holds this inode, this is a hard link: a new file.
			if !r.holds(string(from), dev, ino) && r.sameIdentity(rel, fi, &fe) {
				arrivals = append(arrivals, scanned{rel: rel, from: string(from), fromEntry: fe})
				if entry != nil && entry.Status != store.StatusGone && !sameFile {
					r.departed(departure{rel: rel, entry: *entry, live: entry.Status == store.StatusArchived})
				}
				return
			}
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
			return
		}
		switch {
		case isGzip(rel) && (entry == nil || entry.Status == store.StatusGone || entry.Status == store.StatusCompressed):
			gzNew = append(gzNew, scanned{rel: rel})
		case isGzip(rel) && !sameFile:
			r.departed(departure{rel: rel, entry: *entry, live: entry.Status == store.StatusArchived})
			gzNew = append(gzNew, scanned{rel: rel})
		case entry == nil:
			r.plan(size)
			send(job{kind: jobNew, rel: rel}, &streamed)
		case entry.Status == store.StatusGone && sameFile:
			r.plan(size - entry.Archived)
			send(job{kind: jobCheck, rel: rel, entry: entry}, &streamed)
		default:
			// A new file under an archived name: it becomes the next
			// version once the one before it is complete.
			if entry.Status != store.StatusGone && entry.Status != store.StatusCompressed {
				r.departed(departure{rel: rel, entry: *entry, live: entry.Status == store.StatusArchived})
			}
			idChanged = append(idChanged, scanned{rel: rel, entry: *entry})
		}
	}
	walkErr := r.walk(ctx, visit)
	if walkErr == nil && ctx.Err() == nil {
		drainTo("", true)
	}
	r.mu.Lock()
	r.sum.FilesScanned += scannedFiles
	r.sum.FilesUnchanged += unchangedFiles
	r.mu.Unlock()
	if err := it.Close(); err != nil && walkErr == nil {
		walkErr = fmt.Errorf("%w: %w", ErrManifest, err)
	}

	if walkErr == nil && ctx.Err() == nil {
		// Phase G: new gzip files, before any entry moves: one may be
		// the compressed form of a log whose entry a rotation below
		// overwrites.
		var js []job
		for _, s := range gzNew {
			js = append(js, job{kind: jobNew, rel: s.rel, gzOnly: true})
		}
		phase(js)
		// Phase A: logs renamed within the matched names, one new name
		// per old name.
		js = js[:0]
		for _, c := range arrivals {
			if r.claim(c.from) {
				_, statErr := os.Lstat(filepath.Join(r.a.opts.Dir, filepath.FromSlash(c.from)))
				js = append(js, job{kind: jobRotate, rel: c.rel, from: c.from, fromEntry: c.fromEntry,
					fromGone: errors.Is(statErr, fs.ErrNotExist) && !r.targeted[c.from]})
				continue
			}
			js = append(js, job{kind: jobNew, rel: c.rel})
		}
		phase(js)
		streamed.Wait()
		// Phase D: identities that left their names and were not found
		// among the matched files: looked for beside them.
		phase(r.departJobs())
		// Phase B: new files under archived names (the new app.log after
		// a rotation), after their names' old bytes were completed. One
		// may be a copy of another log (copytruncate onto an existing
		// name).
		js = js[:0]
		for _, s := range idChanged {
			e := s.entry
			js = append(js, job{kind: jobCheck, rel: s.rel, entry: &e, tryCopy: true, final: true})
		}
		phase(js)
	}
	// Phase C: rewrites. A file that no longer begins with its archived
	// bytes is stored as a new version only once every new file has been
	// looked at: a new file may be its copy (copytruncate: app.log copied
	// to app.log.1, app.log truncated), whose tail must reach the archived
	// copy of app.log before the new version supersedes it.
	streamed.Wait()
	if ctx.Err() == nil {
		arrived, later := r.rewriteArrivals()
		phase(arrived)
		phase(r.rewriteDepartures(later))
		// Gzip files that are neither a compressed rotation nor an unseen
		// generation of a log are files of their own.
		var js []job
		for _, rel := range r.gzLeftover() {
			js = append(js, job{kind: jobNew, rel: rel, asFile: true})
		}
		phase(js)
	}
	streamed.Wait()
	close(jobs)
	workers.Wait()
	if fatal != nil {
		return fatal
	}
	if walkErr != nil {
		return walkErr
	}
	return ctx.Err()
}

// sameIdentity reports whether the file at rel (stat fi) is the one
// archived as e, found by its inode: inodes are reused (the copy made by
// copytruncate may get the inode of a rotated file deleted a moment
// before), so its content must begin with e's archived bytes.
func (r *run) sameIdentity(rel string, fi fs.FileInfo, e *store.Entry) bool {
	if e.Status == store.StatusCompressed {
		return fi.Size() == e.Size && fi.ModTime().UnixNano() == e.MtimeNs
	}
	s := &sibling{abs: filepath.Join(r.a.opts.Dir, filepath.FromSlash(rel)), rel: rel, fi: fi}
	return r.continuesFile(s, e)
}

// unchangedStatus reports whether an entry of status s is passed by the
// quick check when the stat is unchanged.
func unchangedStatus(s store.Status) bool {
	return s == store.StatusArchived || s == store.StatusRotated || s == store.StatusCompressed
}

// isGzip reports whether rel names a gzip file.
func isGzip(rel string) bool { return strings.HasSuffix(rel, ".gz") }

// departed records d for the departure phase, or marks its path gone when
// too many files left in one push.
func (r *run) departed(d departure) {
	if !r.addDeparture(d) && d.gone {
		r.markGone(d.rel, d.entry)
	}
}

// unvisited handles a manifest entry whose path the walk did not visit: a
// rotated file followed outside the matched names is checked (a job when
// it grew); a matched log that vanished is a departure; anything else is
// gone (no longer matched), kept in the archive.
func (r *run) unvisited(rel string, e store.Entry) (job, bool) {
	abs := filepath.Join(r.a.opts.Dir, filepath.FromSlash(rel))
	fi, err := os.Lstat(abs)
	followed := (e.Status == store.StatusRotated || e.Status == store.StatusCompressed) && !r.a.match.Match(rel)
	switch {
	case err != nil && followed, err != nil && (e.Status == store.StatusArchived || e.Status == store.StatusRotated || e.Status == store.StatusCompressed):
		r.departed(departure{rel: rel, entry: e, live: e.Status == store.StatusArchived && !followed, gone: true})
		return job{}, false
	case !followed:
		r.markGone(rel, e)
		return job{}, false
	}
	dev, ino := fileID(fi)
	if !fi.Mode().IsRegular() || (e.Ino != 0 && ino != 0 && (dev != e.Dev || ino != e.Ino)) {
		r.departed(departure{rel: rel, entry: e})
		return job{}, false
	}
	if fi.Size() == e.Size && fi.ModTime().UnixNano() == e.MtimeNs {
		return job{}, false
	}
	if e.Status == store.StatusCompressed {
		r.departed(departure{rel: rel, entry: e})
		return job{}, false
	}
	return job{kind: jobCheck, rel: rel, entry: &e, followed: true}, true
}

// departJobs resolves the departures no rotated or copied log took (one
// goroutine, so that two never take the same file) and returns their plans
// as jobs.
func (r *run) departJobs() []job {
	var js []job
	r.departMu.Lock()
	ds := r.departures
	r.departures = nil
	if r.dropped > 0 {
		r.a.log.Warn("too many files left the log directory in one push; the rest were marked gone without looking for rotated copies", "not_searched", r.dropped)
	}
	r.departMu.Unlock()
	var plans []departPlan
	for _, d := range ds {
		if r.isClaimed(d.rel) {
			// A rotated or copied log took the identity; generations
			// between it and the file now under the name are still to
			// be found.
			if d.live {
				if gens := r.generations(d, r.searchDirs(d.rel)); len(gens) > 0 {
					plans = append(plans, departPlan{d: d, resolved: true, keep: true, gens: gens})
				}
			}
			continue
		}
		plans = append(plans, r.resolve(d))
	}
	for _, p := range plans {
		p.keep = p.keep || r.targeted[p.d.rel]
		js = append(js, job{kind: jobDepart, rel: p.d.rel, plan: &p})
	}
	return js
}

// rewriteArrivals starts the rewrites found by this push. A rewritten file
// that now holds another log's continuation (a rename chain where the
// platform has no inode numbers, or a log copied over an existing name) is
// followed as that log: those jobs are returned to run first. The rest are
// returned for rewriteDepartures.
func (r *run) rewriteArrivals() (arrived, later []job) {
	r.claimMu.Lock()
	rewrites := r.rewrites
	r.rewrites = nil
	r.claimMu.Unlock()
	for _, j := range rewrites {
		if rj, ok := r.continuationAt(j.rel); ok {
			arrived = append(arrived, rj)
			j.arrived = true
		}
		later = append(later, j)
	}
	return arrived, later
}

// rewriteDepartures looks for the identity that left each rewritten name
// (copytruncate's copy, when its name is not matched) and stores the file
// under the name as a new version after its tail reached the archive.
func (r *run) rewriteDepartures(later []job) []job {
	var js []job
	for _, j := range later {
		if !j.arrived && r.isHeld(j.rel) {
			r.fail(j.rel, errors.New("new version postponed to the next push: the copy of this log failed to continue its archived bytes"))
			continue
		}
		d := departure{rel: j.rel, entry: *j.entry, live: j.entry.Status == store.StatusArchived, sameFile: true}
		p := departPlan{d: d, resolved: true}
		if !r.isClaimed(j.rel) {
			p = r.resolve(d)
		} else if d.live {
			p.gens = r.generations(d, r.searchDirs(d.rel))
		}
		if !j.arrived {
			jj := j
			p.then = &jj
		}
		p.keep = true
		js = append(js, job{kind: jobDepart, rel: j.rel, plan: &p})
	}
	return js
}

// continuationAt reports whether the file at rel continues the archived
// bytes of another log that left its name, and returns the job that
// follows it as that log (see copiedFrom).
func (r *run) continuationAt(rel string) (job, bool) {
	f, err := os.Open(filepath.Join(r.a.opts.Dir, filepath.FromSlash(rel)))
	if err != nil {
		return job{}, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return job{}, false
	}
	rj, ok, err := r.copiedFrom(rel, &local{f: f, size: fi.Size()})
	if err != nil || !ok {
		return job{}, false
	}
	return rj, true
}

// holds reports whether the file at rel (relative to the log directory) is
// the inode (dev, ino).
func (r *run) holds(rel string, dev, ino uint64) bool {
	fi, err := os.Lstat(filepath.Join(r.a.opts.Dir, filepath.FromSlash(rel)))
	if err != nil {
		return false
	}
	d, i := fileID(fi)
	return d == dev && i == ino
}

// plan tells the progress display about one more file to work on.
func (r *run) plan(bytes int64) {
	if p := r.a.opts.Progress; p != nil {
		p.Planned(1, max(bytes, 0))
	}
}

// markGone records that rel is no longer in the log directory. Its archived
// copy stays on the server: the archive never deletes.
func (r *run) markGone(rel string, e store.Entry) {
	r.count(&r.sum.FilesGone)
	if r.a.opts.DryRun {
		r.dry("gone      %s (stays archived)\n", rel)
		return
	}
	e.Status = store.StatusGone
	e.UpdatedNs = nowNs()
	if err := r.put([]byte(rel), e, false); err != nil {
		r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
	}
	r.a.log.Info("file gone from the log directory, kept in the archive", "path", rel)
}

// walk visits the regular files under the log directory that the matcher
// selects, in store.ComparePaths order: os.ReadDir sorts each directory by
// name and a directory's children are visited right after its name. A file
// that cannot be examined is visited with an error; a directory that
// cannot be read is reported as a failure and skipped.
func (r *run) walk(ctx context.Context, visit func(rel string, fi fs.FileInfo, err error)) error {
	// The directory reads and lstats run in their own goroutine, ahead of
	// the merge with the manifest: on a multi-core machine the system
	// calls of the next directories overlap with the diff of this one.
	batches := make(chan []walkItem, 16)
	// Batches the merge is done with come back for reuse: a scan of an
	// unchanged tree allocates little else, and every byte it allocates
	// costs garbage collection.
	free := make(chan []walkItem, cap(batches)+2)
	var walkErr error
	go func() {
		defer close(batches)
		next := func() []walkItem {
			select {
			case b := <-free:
				return b
			default:
				return make([]walkItem, 0, walkBatch)
			}
		}
		batch := next()
		send := func() {
			select {
			case batches <- batch:
			case <-ctx.Done():
			}
			batch = next()
		}
		walkErr = r.walkFiles(ctx, func(it walkItem) {
			batch = append(batch, it)
			if len(batch) == walkBatch {
				send()
			}
		})
		if len(batch) > 0 {
			send()
		}
	}()
	for b := range batches {
		for _, it := range b {
			if it.dirErr {
				r.count(&r.sum.FilesScanned)
				r.fail(it.rel, it.err)
				continue
			}
			visit(it.rel, it.fi, it.err)
		}
		clear(b) // drop the references to file infos and names
		select {
		case free <- b[:0]:
		default:
		}
	}
	return walkErr // written before batches was closed
}

// walkItem is one file (or unreadable directory) found by walkFiles.
type walkItem struct {
	rel    string
	fi     fs.FileInfo
	err    error
	dirErr bool
}

// walkBatch is how many walk items travel to the merge at once.
const walkBatch = 256

// walkFiles does the walk for walk, handing each item to emit in order.
func (r *run) walkFiles(ctx context.Context, emit func(walkItem)) error {
	visit := func(rel string, fi fs.FileInfo, err error) { emit(walkItem{rel: rel, fi: fi, err: err}) }
	root := r.a.opts.Dir
	rootFi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	// Directories on the current path, to stop symlink loops.
	onPath := map[[2]uint64]bool{}
	// The state directory may lie inside the log directory; its Pebble
	// files (*.log among them) are never archived.
	stateFi, _ := os.Stat(r.a.opts.StateDir)
	var walkDir func(abs, prefix string, fi fs.FileInfo) error
	walkDir = func(abs, prefix string, fi fs.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if dev, ino := fileID(fi); ino != 0 {
			k := [2]uint64{dev, ino}
			if onPath[k] {
				r.a.log.Warn("symlink loop skipped", "dir", prefix)
				return nil
			}
			onPath[k] = true
			defer delete(onPath, k)
		}
		entries, infos, err := readDirStat(abs)
		if err != nil {
			if prefix == "" {
				return fmt.Errorf("read log directory: %w", err)
			}
			emit(walkItem{rel: prefix, err: fmt.Errorf("read directory: %w", unwrapPath(err)), dirErr: true})
			return nil
		}
		for i, de := range entries {
			rel := de.Name()
			if prefix != "" {
				rel = prefix + "/" + rel
			}
			t := de.Type()
			var cfi fs.FileInfo
			if t&fs.ModeSymlink != 0 {
				if !r.a.opts.FollowSymlinks {
					continue
				}
				cfi, err = os.Stat(filepath.Join(abs, de.Name()))
				if err != nil {
					if r.a.match.Match(rel) {
						visit(rel, nil, fmt.Errorf("follow symlink: %w", unwrapPath(err)))
					}
					continue
				}
				t = cfi.Mode().Type()
			}
			if t.IsDir() {
				if r.a.match.Excluded(rel) {
					continue
				}
				if cfi == nil {
					if cfi, err = de.Info(); err != nil {
						continue // vanished
					}
				}
				if stateFi != nil && os.SameFile(cfi, stateFi) {
					continue
				}
				if err := walkDir(filepath.Join(abs, de.Name()), rel, cfi); err != nil {
					return err
				}
				continue
			}
			if !r.a.match.Match(rel) {
				continue
			}
			if cfi == nil {
				if cfi, err = infos[i].fi, infos[i].err; cfi == nil && err == nil {
					cfi, err = de.Info()
				}
				if err != nil {
					visit(rel, nil, fmt.Errorf("stat: %w", unwrapPath(err)))
					continue
				}
			}
			if !cfi.Mode().IsRegular() {
				visit(rel, nil, fmt.Errorf("not a regular file (%s)", cfi.Mode().Type()))
				continue
			}
			visit(rel, cfi, nil)
		}
		return nil
	}
	return walkDir(root, "", rootFi)
}

// statted is the lstat result of one directory entry.
type statted struct {
	fi  fs.FileInfo
	err error
}

// statParallel is how many lstat calls run at once in a large directory.
// The quick check is one lstat per file, so the scan's speed is the speed
// of lstat; on an SSD or the page cache, several in flight go faster than
// one (find does them one at a time).
const statParallel = 4

// unwrapPath drops the absolute path from a *fs.PathError: errors name the
// file relative to the log directory, which the caller adds.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
