package syncer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/syncer-dev/syncer/store"
)

// This file follows a log's identity after it left its name: the rotated
// file's tail (what was written after the last push, typically just before
// the rotation) must reach the archived copy of the log before the new file
// under the name becomes the next version, even when the rotated name is not
// matched by --include (the default `**/*.log` matches app.log, not
// app.log.1). Such files are read for that tail only, never archived for
// themselves.
//
// A departure is an archived identity that left its path in this push: its
// path is gone, holds another file (rename and create), or no longer begins
// with the archived bytes (copytruncate). The agent looks for it among the
// files beside that path and in the --olddir directories:
//
//  1. by device and inode (a rename), checking the fingerprints, since
//     inodes are reused;
//  2. by content, among rotated names of the log (a copy: copytruncate);
//  3. inside rotated names that are gzip files (compress): the head of the
//     decompressed stream must match, and the hash of the archived bytes
//     too before a tail is taken from it.
//
// A rotated file found by 1 or 2 is followed from then on: its manifest
// entry (status rotated) stays under its new name, matched or not, and
// bytes it gains later (a writer that reopens only on a signal, as nginx
// does) are appended to the archived copy, which is located among the
// server's superseded versions if a newer file took its name. A gzip file
// found by 3 is recorded as compressed. Rotated names that none of these
// explain and that were written after the log's last archived write are
// generations the agent never saw (several rotations between two pushes):
// they are archived, oldest first, as versions of the log, before the file
// now under the name.
//
// What cannot be resolved exactly is logged at WARN and counted in the
// summary (files_unrecoverable, bytes_unrecoverable): a log whose name now
// holds a new file while the log itself is nowhere on the node (rotated
// more often than pushed, its tail gone with it: the commit record marks
// its archived copy as having a gap), or a compressed rotation that does
// not hold the archived bytes.

// departure is an archived identity that left its path this push.
type departure struct {
	rel   string
	entry store.Entry
	// live: rel is a matched log archived under its own name (not a
	// followed rotated file): unseen generations are looked for.
	live bool
	// gone: nothing is at rel any more.
	gone bool
	// sameFile: rel still holds the same inode, rewritten in place
	// (copytruncate): the inode cannot be searched for.
	sameFile bool
}

// sibling is a regular file beside a departed log or in an old directory.
type sibling struct {
	abs  string
	rel  string // relative to the log directory; "" outside it
	name string
	fi   fs.FileInfo
	dev  uint64
	ino  uint64
}

// How a departure was resolved.
type foundKind int

const (
	foundNone   foundKind = iota
	foundFile             // a plain file continuing the archived bytes
	foundGzip             // a gzip file whose stream continues them
	foundGzipNo           // a gzip file holding exactly the archived bytes (no tail)
)

// departPlan is what the workers do for one departure, in order: take the
// tail from the file it was found in, archive unseen generations, then
// (rewrites) store the file now under the name as a new version.
type departPlan struct {
	d    departure
	kind foundKind
	to   *sibling
	gens []*sibling
	then *job // the rewrite of d.rel, stored last
	keep bool // d.rel is written by another plan of this push: do not drop it
	// resolved: a rotated or copied log took the identity already.
	resolved bool
}

// compressedExt are the suffixes of compressed rotations; only gzip is read.
var compressedExt = []string{".gz", ".bz2", ".xz", ".zst", ".Z"}

// rotatedName reports whether name is a rotated form of the log named base:
// base, a separator ('.', '-' or '_'), then a suffix of digits and the
// characters of dates and times ("1", "20261203", "2026-12-03_10-00-00"),
// optionally followed by a compression suffix (gz reports ".gz"). These are
// the names logrotate (numbered, dateext) and Python's RotatingFileHandler
// and TimedRotatingFileHandler give.
func rotatedName(base, name string) (ok, gz bool) {
	if len(name) < len(base)+2 || !strings.HasPrefix(name, base) {
		return false, false
	}
	rest := name[len(base):]
	if c := rest[0]; c != '.' && c != '-' && c != '_' {
		return false, false
	}
	rest = rest[1:]
	for _, ext := range compressedExt {
		if r, ok := strings.CutSuffix(rest, ext); ok {
			if ext != ".gz" {
				return false, false // bz2, xz, zst: not read
			}
			rest, gz = r, true
			break
		}
	}
	if rest == "" || rest[0] < '0' || rest[0] > '9' {
		return false, false
	}
	for _, c := range rest {
		if (c < '0' || c > '9') && !strings.ContainsRune("-_.T:+", c) {
			return false, false
		}
	}
	return true, gz
}

// searchDirs are the absolute directories where a log at rel may have gone:
// its own directory and the old directories.
func (r *run) searchDirs(rel string) []string {
	dir := filepath.Join(r.a.opts.Dir, filepath.FromSlash(path.Dir(rel)))
	out := []string{dir}
	for _, od := range r.a.opts.OldDirs {
		if !filepath.IsAbs(od) {
			od = filepath.Join(dir, od)
		}
		if od = filepath.Clean(od); !slices.Contains(out, od) {
			out = append(out, od)
		}
	}
	return out
}

// display names s in logs and dry runs: relative to the log directory
// when it is inside it.
func (s *sibling) display() string {
	if s.rel != "" {
		return s.rel
	}
	return s.abs
}

// siblingDir is one listed directory: its files, and those with an inode
// number by inode.
type siblingDir struct {
	files []*sibling
	byIno map[[2]uint64]*sibling
}

// siblings lists the regular files of dir, once per push.
func (r *run) siblings(dir string) []*sibling { return r.siblingDir(dir).files }

// siblingByIno returns the file of dir with that device and inode.
func (r *run) siblingByIno(dir string, dev, ino uint64) *sibling {
	return r.siblingDir(dir).byIno[[2]uint64{dev, ino}]
}

func (r *run) siblingDir(dir string) *siblingDir {
	if sd, ok := r.sibCache[dir]; ok {
		return sd
	}
	if r.sibCache == nil {
		r.sibCache = map[string]*siblingDir{}
	}
	var out []*sibling
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.a.log.Warn("cannot list a rotated log's directory", "dir", dir, "err", err)
	}
	relDir, rerr := filepath.Rel(r.a.opts.Dir, dir)
	inside := rerr == nil && relDir != ".." && !strings.HasPrefix(relDir, ".."+string(filepath.Separator))
	for _, de := range entries {
		if !de.Type().IsRegular() {
			continue
		}
		abs := filepath.Join(dir, de.Name())
		fi, err := de.Info()
		if err == nil {
			fi, err = identify(abs, fi) // the identity, on Windows from a handle
		}
		if err != nil {
			continue
		}
		s := &sibling{abs: abs, name: de.Name(), fi: fi}
		s.dev, s.ino = fileID(fi)
		if inside {
			s.rel = filepath.ToSlash(filepath.Join(relDir, de.Name()))
			if r.a.match.Match(s.rel) && !r.gzLeft[s.rel] {
				continue // the walk looks at matched files
			}
		}
		out = append(out, s)
	}
	sd := &siblingDir{files: out, byIno: map[[2]uint64]*sibling{}}
	for _, s := range out {
		if s.ino != 0 {
			sd.byIno[[2]uint64{s.dev, s.ino}] = s
		}
	}
	r.sibCache[dir] = sd
	return sd
}

// known reports whether s is a file the manifest follows already: its
// inode is recorded and it still begins with that entry's archived bytes
// (inodes are reused: the new app.log may get the inode of a rotated file
// deleted in the same rotation).
func (r *run) known(s *sibling) bool {
	if s.ino == 0 {
		return false
	}
	_, e, err := r.a.manifest.LookupInode(s.dev, s.ino)
	if err != nil {
		return false
	}

	if e.Status == store.StatusCompressed {
		return e.Size == s.fi.Size() && e.MtimeNs == s.fi.ModTime().UnixNano()
	}
	return r.continuesFile(s, &e)
}

// resolve finds where the identity of d went (see the top of this file).
// It runs on one goroutine, before the plans are carried out, so that two
// departures never take the same file.
func (r *run) resolve(d departure) departPlan {
	p := departPlan{d: d}
	e := &d.entry
	base := path.Base(d.rel)
	dirs := r.searchDirs(d.rel)
	usable := func(s *sibling) bool { return !r.sibClaimed[s.abs] && s.rel != d.rel }
	take := func(s *sibling, k foundKind) departPlan {
		if r.sibClaimed == nil {
			r.sibClaimed = map[string]bool{}
		}
		r.sibClaimed[s.abs] = true
		if s.rel != "" {
			r.targeted[s.rel] = true
		}
		p.kind, p.to = k, s
		return p
	}
	// 1. By inode.
	if e.Ino != 0 && !d.sameFile {
		for _, dir := range dirs {
			if s := r.siblingByIno(dir, e.Dev, e.Ino); s != nil && usable(s) && r.continuesFile(s, e) {
				p = take(s, foundFile)
				goto found
			}
		}
	}
	if e.Archived > 0 {
		// 2. A copy among the rotated names; 3. a gzip file.
		for _, gzPass := range []bool{false, true} {
			for _, dir := range dirs {
				for _, s := range r.siblings(dir) {
					ok, gz := rotatedName(base, s.name)
					if !ok || gz != gzPass || !usable(s) || r.known(s) {
						continue
					}
					if !gz && s.fi.Size() >= e.Archived && r.continuesFile(s, e) {
						p = take(s, foundFile)
						goto found
					}
					if gz {
						if k := r.gzipForm(s, e); k != foundNone {
							p = take(s, k)
							goto found
						}
					}
				}
			}
		}
	}
found:
	if d.live {
		p.gens = r.generations(d, dirs)
	}
	return p
}

// generations are the rotated names of a departed live log that nothing
// explains and that were written after its last archived write: versions of
// the log the agent never saw, oldest first.
func (r *run) generations(d departure, dirs []string) []*sibling {
	base := path.Base(d.rel)
	var out []*sibling
	for _, dir := range dirs {
		for _, s := range r.siblings(dir) {
			ok, gz := rotatedName(base, s.name)
			if !ok || r.sibClaimed[s.abs] || s.fi.Size() == 0 || s.fi.ModTime().UnixNano() <= d.entry.MtimeNs || r.known(s) {
				continue
			}
			if r.explained(s, gz) {
				continue
			}
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b *sibling) int { return a.fi.ModTime().Compare(b.fi.ModTime()) })
	for _, s := range out {
		r.sibClaimed[s.abs] = true
		if s.rel != "" {
			r.targeted[s.rel] = true
		}
	}
	return out
}

// explained reports whether s begins like an archived file of the manifest
// (its head and the block before the archived offset match): it is a form
// of a log the archive holds, not an unseen generation.
func (r *run) explained(s *sibling, gz bool) bool {
	f, err := openLog(s.abs)
	if err != nil {
		return true // unreadable: not archived
	}
	defer f.Close()
	var src io.Reader = f
	if gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return true
		}
		src = zr
	}
	head := make([]byte, store.FingerprintSpan)
	n, _ := io.ReadFull(src, head)
	found, err := r.a.manifest.FindByHead(head[:n], 1<<62, copyCandidates)
	if err != nil {
		return true
	}
	for _, m := range found {
		if m.Entry.Archived <= int64(n) {
			if fp, err := fingerprint(bytes.NewReader(head[:n]), m.Entry.Archived-min(store.FingerprintSpan, m.Entry.Archived), min(store.FingerprintSpan, m.Entry.Archived)); err == nil && fp == m.Entry.Block {
				return true
			}
			continue
		}
		if !gz {
			if fi, err := statOpen(f); err == nil && fi.Size() >= m.Entry.Archived {
				if ok, _ := sameArchivedBlock(&local{f: f, size: fi.Size()}, &m.Entry); ok {
					return true
				}
			}
			continue
		}
		// A compressed file: its head matches an archived log; taken as
		// that log's form (reading it whole to check is left to resolve).
		return true
	}
	return false
}

// continuesFile reports whether s begins with e's archived bytes.
func (r *run) continuesFile(s *sibling, e *store.Entry) bool {
	f, err := openLog(s.abs)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := statOpen(f)
	if err != nil {
		return false
	}
	ok, err := continues(&local{f: f, size: fi.Size()}, e)
	return err == nil && ok
}
