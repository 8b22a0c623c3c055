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
	wg    *sync.WaitGroup
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

	// Deferred: rotation candidates and files whose inode changed. Both
	// are bounded by what changed, not by the size of the tree.
	var rotCands, idChanged []scanned
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
	// visit: they are gone. They are marked at once, so a tree that lost a
	// million files costs no memory; a rotated file found later still finds
	// its old entry through the inode index.
	drainTo := func(rel string, all bool) {
		for it.Valid() && (all || store.ComparePathString(it.Path(), rel) < 0) {
			if st, err := it.Stat(); err != nil {
				r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
			} else if st.Status != store.StatusGone {
				if e, err := it.Entry(); err != nil {
					r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
				} else {
					r.markGone(string(it.Path()), e)
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
				if err == nil && (st.Status == store.StatusArchived || st.Status == store.StatusRotated) &&
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
		switch {
		case entry == nil:
			if from, fe, err := r.a.manifest.LookupInode(dev, ino); err == nil && string(from) != rel {
				// The inode was archived under another name. If that name
				// still holds this inode, this is a hard link: a new file.
				if !r.holds(string(from), dev, ino) {
					rotCands = append(rotCands, scanned{rel: rel, from: string(from), fromEntry: fe})
					return
				}
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				r.onFatal(fmt.Errorf("%w: %w", ErrManifest, err))
				return
			}
			r.plan(size)
			send(job{kind: jobNew, rel: rel}, &streamed)
		case (entry.Status == store.StatusArchived || entry.Status == store.StatusRotated) &&
			entry.Size == size && entry.MtimeNs == mtime && entry.Dev == dev && entry.Ino == ino:
			r.count(&r.sum.FilesUnchanged)
		case entry.Ino != 0 && ino != 0 && (entry.Dev != dev || entry.Ino != ino) &&
			entry.Status != store.StatusPartial && entry.Status != store.StatusRewritePending:
			idChanged = append(idChanged, scanned{rel: rel, entry: *entry})
		default:
			r.plan(size - entry.Archived)
			send(job{kind: jobCheck, rel: rel, entry: entry}, &streamed)
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
		// Phase A: rotations, one new name per old name.
		var rotations sync.WaitGroup
		for _, c := range rotCands {
			if r.claim(c.from) {
				_, statErr := os.Lstat(filepath.Join(r.a.opts.Dir, filepath.FromSlash(c.from)))
				r.plan(0)
				send(job{kind: jobRotate, rel: c.rel, from: c.from, fromEntry: c.fromEntry,
					fromGone: errors.Is(statErr, fs.ErrNotExist)}, &rotations)
				continue
			}
			r.plan(0)
			send(job{kind: jobNew, rel: c.rel}, &streamed)
		}
		rotations.Wait()
		// Phase B: files whose inode changed (the new file at a rotated
		// log's old name among them) after their old bytes were completed.
		for _, s := range idChanged {
			e := s.entry
			r.plan(0)
			send(job{kind: jobCheck, rel: s.rel, entry: &e}, &streamed)
		}
	}
	// Phase C: rewrites. A file that no longer begins with its archived
	// bytes is stored as a new version only once every new file has been
	// looked at: a new file may be its copy (copytruncate: app.log copied
	// to app.log.1, app.log truncated), whose tail must reach the archived
	// copy of app.log before the new version supersedes it.
	streamed.Wait()
	if ctx.Err() == nil {
		var rewrites sync.WaitGroup
		for _, j := range r.rewrites {
			if r.held[j.rel] {
				r.fail(j.rel, errors.New("new version postponed to the next push: the copy of this log failed to continue its archived bytes"))
				continue
			}
			r.plan(0)
			send(j, &rewrites)
		}
		rewrites.Wait()
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
