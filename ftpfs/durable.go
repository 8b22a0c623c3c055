package ftpfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
)

// Durability of uploads (SPEC: "Durable confirmations"). The 226 goes out
// after transfer.Close, and the agent advances its manifest on it and never
// sends those bytes again, so Close returns only when
//
//  1. the file's data is on stable storage (fdatasync: it also writes the
//     size and whatever else is needed to read the data back), and then
//  2. every directory whose entries the upload changed is too (fsync of the
//     directory): the new file's name, and for a STOR that kept the old
//     content as a version, the version's name and the removal of the old
//     one, and the names of directories made (MKD) since the last round.
//
// Data first, names second: a name that is durable always reaches data that
// is, so a crash never leaves a confirmed file shorter than confirmed.
//
// The flushes are batched (group commit, as databases batch their log's
// fsyncs): uploads that close while a round is running wait for the next
// one, which fdatasyncs all their files in parallel and fsyncs each
// directory once. N parallel uploads then cost about one round each
// instead of N serial fsync latencies. Writeback is started while the
// upload is received (startWriteback, every writebackEvery bytes), so the
// final fdatasync of a large file has little left to write.
//
// There is one flusher at a time: the upload that finds none running leads
// the rounds itself until its own is done (no hand-off for an upload
// alone), then a goroutine takes over while uploads wait.

// writebackEvery is how many bytes an upload receives between two requests
// to the kernel to start writing them back (Linux: sync_file_range).
const writebackEvery = 8 << 20

// flushParallel bounds the fdatasyncs and directory fsyncs in flight in one
// round: enough to keep a device's queue full, few enough threads.
const flushParallel = 32

// flusher batches the flushes that make uploads durable.
type flusher struct {
	root *os.Root

	mu      sync.Mutex
	running bool
	waiting []*flushReq
	dirty   map[string]struct{} // directories whose entries changed, not yet fsynced
}

// flushReq is one upload waiting for its round.
type flushReq struct {
	f    *os.File // nil: only the dirty directories
	dirs []string // directories (relative to the archive root) this upload changed
	err  error
	done chan struct{}
}

func newFlusher(root *os.Root) *flusher {
	return &flusher{root: root, dirty: map[string]struct{}{}}
}

// dirChanged records that the entries of the directory at archive path
// dir ("/a/b") changed: the next round fsyncs it.
func (fl *flusher) dirChanged(dir string) {
	fl.mu.Lock()
	fl.dirty[rootRel(dir)] = struct{}{}
	fl.mu.Unlock()
}

// ancestorsChanged records dir's parent and every directory above it as
// changed: MkdirAll may have made any of them.
func (fl *flusher) ancestorsChanged(dir string) {
	fl.mu.Lock()
	for d := path.Clean(dir); d != "/" && d != "."; {
		d = path.Dir(d)
		fl.dirty[rootRel(d)] = struct{}{}
	}
	fl.mu.Unlock()
}

// rootRel turns an archive path ("/a/b") into a path relative to the
// archive root ("a/b", "." for "/").
func rootRel(p string) string {
	r := strings.TrimPrefix(path.Clean("/"+p), "/")
	if r == "" {
		return "."
	}
	return r
}

// sync waits until f's data and then the directories at archive paths
// dirs, and every directory changed before the call, are on stable
// storage. f may be nil.
func (fl *flusher) sync(f *os.File, dirs ...string) error {
	r := &flushReq{f: f, done: make(chan struct{})}
	for _, d := range dirs {
		r.dirs = append(r.dirs, rootRel(d))
	}
	fl.mu.Lock()
	fl.waiting = append(fl.waiting, r)
	lead := !fl.running
	fl.running = true
	fl.mu.Unlock()
	if lead {
		// No round is running: this upload runs them itself, no
		// hand-off to another goroutine, until its own is done.
		fl.lead(r)
	}
	<-r.done
	return r.err
}

// lead does rounds until mine is done; then, if uploads wait, a goroutine
// carries on (lead(nil): until none waits), else no round runs.
func (fl *flusher) lead(mine *flushReq) {
	if mine == nil {
		for fl.roundOnce() {
		}
		return
	}
	for {
		select {
		case <-mine.done:
			fl.mu.Lock()
			if len(fl.waiting) == 0 {
				fl.running = false
				fl.mu.Unlock()
				return
			}
			fl.mu.Unlock()
			go fl.lead(nil)
			return
		default:
		}
		if !fl.roundOnce() {
			return
		}
	}
}

// roundOnce takes every waiting upload and makes them durable in one
// round. It reports false, and stops leading, when none was waiting.
func (fl *flusher) roundOnce() bool {
	fl.mu.Lock()
	batch := fl.waiting
	fl.waiting = nil
	if len(batch) == 0 {
		fl.running = false
		fl.mu.Unlock()
		return false
	}
	for _, r := range batch {
		for _, d := range r.dirs {
			fl.dirty[d] = struct{}{}
		}
	}
	dirs := make([]string, 0, len(fl.dirty))
	for d := range fl.dirty {
		dirs = append(dirs, d)
	}
	clear(fl.dirty)
	fl.mu.Unlock()
	fl.round(batch, dirs)
	return true
}

// round makes one batch durable: all files' data in parallel, then all
// directories in parallel. A directory that fails to sync fails every
// upload of the batch that named it, and stays dirty for the next round.
func (fl *flusher) round(batch []*flushReq, dirs []string) {
	sem := make(chan struct{}, flushParallel)
	var wg sync.WaitGroup
	for _, r := range batch {
		if r.f == nil {
			continue
		}
		if len(batch) == 1 {
			// Alone in its round: no goroutine.
			if err := datasync(r.f); err != nil {
				r.err = fmt.Errorf("sync data: %w", err)
			}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := datasync(r.f); err != nil {
				r.err = fmt.Errorf("sync data: %w", err)
			}
		}()
	}
	wg.Wait()
	dirErr := make([]error, len(dirs))
	for i, d := range dirs {
		if len(dirs) == 1 {
			dirErr[i] = fl.syncDir(d)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			dirErr[i] = fl.syncDir(d)
		}()
	}
	wg.Wait()
	failed := map[string]error{}
	for i, d := range dirs {
		if dirErr[i] != nil {
			failed[d] = dirErr[i]
			fl.dirChanged(d)
		}
	}
	for _, r := range batch {
		if r.err == nil {
			if len(failed) > 0 && r.f == nil {
				// A bare request covers every dirty directory.
				for _, err := range failed {
					r.err = errors.Join(r.err, err)
				}
			}
			for _, d := range r.dirs {
				if err := failed[d]; err != nil {
					r.err = errors.Join(r.err, err)
				}
			}
		}
		close(r.done)
	}
}

// syncDir fsyncs the directory dir. A directory that is gone has no
// entries left to keep: its removal is its parent's business.
func (fl *flusher) syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		// Its file systems cannot fsync a directory; a new name is
		// written with the file's own flush.
		return nil
	}
	d, err := fl.root.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
