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
	fi, err := lstatLog(abs)
	followed := (e.Status == store.StatusRotated || e.Status == store.StatusCompressed) && !r.a.match.Match(rel)
	switch {
	case err != nil && unchangedStatus(e.Status): // archived, rotated or compressed
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
	f, err := openLog(filepath.Join(r.a.opts.Dir, filepath.FromSlash(rel)))
	if err != nil {
		return job{}, false
	}
	defer f.Close()
	loc, err := openLocal(f)
	if err != nil {
		return job{}, false
	}
	rj, ok, err := r.copiedFrom(rel, loc)
	if err != nil || !ok {
		return job{}, false
	}
	return rj, true
}

// holds reports whether the file at rel (relative to the log directory) is
// the inode (dev, ino).
func (r *run) holds(rel string, dev, ino uint64) bool {
	fi, err := lstatLog(filepath.Join(r.a.opts.Dir, filepath.FromSlash(rel)))
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
	root := r.a.opts.Dir
	rootFi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	w := &fileWalk{r: r, ctx: ctx, emit: emit, onPath: map[[2]uint64]bool{}}
	// The state directory may lie inside the log directory; its Pebble
	// files (*.log among them) are never archived.
	w.stateFi, _ = os.Stat(r.a.opts.StateDir)
	return w.dir(root, "", rootFi)
}

// fileWalk is one walk of the log directory by walkFiles: depth first,
// in name order, into symlinked files and directories when the options
// say so.
type fileWalk struct {
	r    *run
	ctx  context.Context
	emit func(walkItem)
	// onPath holds the directories on the current path, to stop symlink
	// loops.
	onPath map[[2]uint64]bool
	// stateFi is the state directory (nil if it does not exist yet).
	stateFi fs.FileInfo
}

func (w *fileWalk) visit(rel string, fi fs.FileInfo, err error) {
	w.emit(walkItem{rel: rel, fi: fi, err: err})
}

// dir walks the directory abs, fi its stat, prefix its path relative to
// the log directory ("" for the log directory itself).
func (w *fileWalk) dir(abs, prefix string, fi fs.FileInfo) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if dev, ino := fileID(fi); ino != 0 {
		k := [2]uint64{dev, ino}
		if w.onPath[k] {
			w.r.a.log.Warn("symlink loop skipped", "dir", prefix)
			return nil
		}
		w.onPath[k] = true
		defer delete(w.onPath, k)
	}
	entries, infos, err := readDirStat(abs)
	if err != nil {
		if prefix == "" {
			return fmt.Errorf("read log directory: %w", err)
		}
		w.emit(walkItem{rel: prefix, err: fmt.Errorf("read directory: %w", unwrapPath(err)), dirErr: true})
		return nil
	}
	for i, de := range entries {
		if err := w.entry(abs, prefix, de, infos[i]); err != nil {
			return err
		}
	}
	return nil
}

// entry walks one entry de of the directory abs (info is its lstat, if
// readDirStat took it): a directory is descended into, a matched regular
// file visited.
func (w *fileWalk) entry(abs, prefix string, de fs.DirEntry, info statted) error {
	r := w.r
	rel := de.Name()
	if prefix != "" {
		rel = prefix + "/" + rel
	}
	t := de.Type()
	var cfi fs.FileInfo
	var err error
	if t&fs.ModeSymlink != 0 {
		if !r.a.opts.FollowSymlinks {
			return nil
		}
		cfi, err = os.Stat(filepath.Join(abs, de.Name()))
		if err != nil {
			if r.a.match.Match(rel) {
				w.visit(rel, nil, fmt.Errorf("follow symlink: %w", unwrapPath(err)))
			}
			return nil
		}
		t = cfi.Mode().Type()
	}
	if t.IsDir() {
		return w.subdir(abs, rel, de, cfi)
	}
	if !r.a.match.Match(rel) {
		return nil
	}
	if cfi == nil {
		if cfi, err = info.fi, info.err; cfi == nil && err == nil {
			cfi, err = de.Info()
		}
		if err != nil {
			w.visit(rel, nil, fmt.Errorf("stat: %w", unwrapPath(err)))
			return nil
		}
	}
	if !cfi.Mode().IsRegular() {
		w.visit(rel, nil, fmt.Errorf("not a regular file (%s)", cfi.Mode().Type()))
		return nil
	}
	// A candidate: on Windows its current size and identity come from a
	// handle (fileid_windows.go); elsewhere cfi is already that.
	if cfi, err = identify(filepath.Join(abs, de.Name()), cfi); err != nil {
		w.visit(rel, nil, fmt.Errorf("stat: %w", unwrapPath(err)))
		return nil
	}
	w.visit(rel, cfi, nil)
	return nil
}

// subdir walks the directory de of abs (rel), unless it is excluded or
// the state directory; cfi is its stat when a symlink was followed to it.
func (w *fileWalk) subdir(abs, rel string, de fs.DirEntry, cfi fs.FileInfo) error {
	if w.r.a.match.Excluded(rel) {
		return nil
	}
	if cfi == nil {
		var err error
		if cfi, err = de.Info(); err != nil {
			return nil // vanished
		}
	}
	if w.stateFi != nil && os.SameFile(cfi, w.stateFi) {
		return nil
	}
	return w.dir(filepath.Join(abs, de.Name()), rel, cfi)
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
