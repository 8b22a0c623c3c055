package syncer

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
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
// summary (files_unrecoverable, bytes_unrecoverable): a rotated log that
// vanished while holding bytes the agent had seen and not archived.

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
			rest, gz = r, ext == ".gz"
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
	if !gz && strings.Contains(name[len(base):], ".") && slices.ContainsFunc(compressedExt, func(e string) bool { return strings.HasSuffix(name, e) }) {
		return false, false // bz2, xz, zst: not read
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
		fi, err := de.Info()
		if err != nil {
			continue
		}
		s := &sibling{abs: filepath.Join(dir, de.Name()), name: de.Name(), fi: fi}
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
	f, err := os.Open(s.abs)
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
			if fp, err := fingerprint(bytesReaderAt(head[:n]), m.Entry.Archived-min(store.FingerprintSpan, m.Entry.Archived), min(store.FingerprintSpan, m.Entry.Archived)); err == nil && fp == m.Entry.Block {
				return true
			}
			continue
		}
		if !gz {
			if fi, err := f.Stat(); err == nil && fi.Size() >= m.Entry.Archived {
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
	f, err := os.Open(s.abs)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	ok, err := continues(&local{f: f, size: fi.Size()}, e)
	return err == nil && ok
}

// gzipForm reports whether the gzip file s holds e's archived bytes: its
// decompressed head matches e's, and its length (the trailer's ISIZE, mod
// 2^32) says whether more follows. The archived bytes are checked in full
// when a tail is taken (see decompressTo).
func (r *run) gzipForm(s *sibling, e *store.Entry) foundKind {
	f, err := os.Open(s.abs)
	if err != nil {
		return foundNone
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return foundNone
	}
	head := make([]byte, e.HeadLen)
	if _, err := io.ReadFull(zr, head); err != nil || sha256.Sum256(head) != e.Head {
		return foundNone
	}
	var trailer [4]byte
	if fi, err := f.Stat(); err == nil && fi.Size() >= 18 {
		if _, err := f.ReadAt(trailer[:], fi.Size()-4); err == nil && binary.LittleEndian.Uint32(trailer[:]) == uint32(e.Archived) {
			return foundGzipNo
		}
	}
	return foundGzip
}

// openSibling opens s to be read, decompressed into a temporary file when
// it is a gzip file.
func (r *run) openSibling(s *sibling, gz bool) (*os.File, error) {
	if gz {
		return r.decompressTo(s)
	}
	f, err := os.Open(s.abs)
	if err != nil {
		return nil, fmt.Errorf("open: %w", unwrapPath(err))
	}
	return f, nil
}

// decompressTo writes the decompressed s into a temporary file in the state
// directory and returns it open, with the stat to record for s.
func (r *run) decompressTo(s *sibling) (*os.File, error) {
	in, err := os.Open(s.abs)
	if err != nil {
		return nil, fmt.Errorf("open: %w", unwrapPath(err))
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	tmp, err := os.CreateTemp(r.a.opts.StateDir, "gunzip-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	os.Remove(tmp.Name()) // gone when closed
	if _, err := io.Copy(tmp, zr); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return tmp, nil
}

// bytesReaderAt is an io.ReaderAt over b.
type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

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
		case lost > 0 && e.Status != store.StatusCompressed:
			r.unrecoverable(d.rel, lost, "rotated log left the node before its last bytes were archived")
		case d.live && !d.gone:
			// A new file took the name and the old one is nowhere: rotated
			// more often than pushed (the oldest kept name deleted since)
			// or deleted before the rotation. What it gained after the
			// last push is lost; how much cannot be known.
			r.unrecoverable(d.rel, 0, "rotated log not found on the node (rotated again, or deleted, before this push): lines written to it after its last push are lost")
			r.recordGap(d.rel, remote, &e)
		case d.live:
			r.a.log.Info("log left the node, kept in the archive", "path", d.rel)
		default:
			r.a.log.Debug("rotated log left the node", "path", d.rel)
		}
	case foundFile, foundGzip:
		err = r.takeTail(ctx, p, remote)
	case foundGzipNo:
		r.a.log.Info("compressed rotation recognised", "path", p.to.name, "of", d.rel)
		if !r.a.opts.DryRun && p.to.rel != "" {
			ne := e
			ne.Status, ne.Remote = store.StatusCompressed, []byte(remote)
			ne.Size, ne.MtimeNs, ne.Dev, ne.Ino, ne.UpdatedNs = p.to.fi.Size(), p.to.fi.ModTime().UnixNano(), p.to.dev, p.to.ino, nowNs()
			if perr := r.put([]byte(p.to.rel), ne, false); perr != nil {
				return fmt.Errorf("%w: %w", ErrManifest, perr)
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
	f, err := r.openSibling(s, gz)
	if err != nil {
		return err
	}
	defer f.Close()
	loc, err := openLocal(f)
	if err != nil {
		return err
	}
	e := p.d.entry
	if ok, err := continues(loc, &e); err != nil || !ok {
		r.a.log.Warn("rotated log changed while it was read; not archived from it", "path", s.abs, "log", p.d.rel)
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
	name := s.rel
	if name == "" {
		name = s.abs
	}
	lvl := slog.LevelInfo
	if loc.size == e.Archived {
		lvl = slog.LevelDebug // a rotated file renamed on: nothing to send
	}
	r.a.log.Log(ctx, lvl, "rotated log recognised", "path", name, "was", p.d.rel, "archived_as", remote, "tail", loc.size-e.Archived)
	if r.a.opts.DryRun {
		r.dry("%-9s %s (was %s, %d bytes)\n", "rotated", s.abs, p.d.rel, loc.size-e.Archived)
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
		return r.markCompressed(rel, s)
	}
	return nil
}

// markCompressed turns the entry just written for the gzip file rel (with
// the decompressed file's stat) into a compressed entry with rel's own.
func (r *run) markCompressed(rel string, s *sibling) error {
	ne, err := r.a.manifest.Get([]byte(rel))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	ne.Status = store.StatusCompressed
	ne.Size, ne.MtimeNs, ne.Dev, ne.Ino = s.fi.Size(), s.fi.ModTime().UnixNano(), s.dev, s.ino
	if err := r.put([]byte(rel), ne, true); err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return nil
}

// generation archives g, a version of the log at remote that the agent
// never saw, as the log's next version, and follows it.
func (r *run) generation(ctx context.Context, g *sibling, remote string) error {
	_, gz := rotatedName(path.Base(remote), g.name)
	r.a.log.Info("unseen generation of a rotated log archived as a version", "path", g.abs, "log", remote)
	if r.a.opts.DryRun {
		r.dry("%-9s %s (as a version of %s, %d bytes)\n", "version", g.abs, remote, g.fi.Size())
		return nil
	}
	f, err := r.openSibling(g, gz)
	if err != nil {
		return err
	}
	defer f.Close()
	loc, err := openLocal(f)
	if err != nil {
		return err
	}
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
		return r.markCompressed(g.rel, g)
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
		if !en.Dir && en.Size == e.Archived && strings.HasPrefix(en.Name, base+store.VersionMarker) {
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

// compressedForm recognises a new, matched gzip file that is the compressed
// form of an archived log (logrotate's compress with `*.gz` matched): it is
// recorded as such and not stored again. When the log left its name, the
// bytes the gzip file holds beyond the archived ones are its tail, appended
// to the archived copy. A gzip file that is not recognised is archived as a
// file of its own.
func (r *run) compressedForm(ctx context.Context, rel string, loc *local) (bool, error) {
	zr, err := gzip.NewReader(io.NewSectionReader(loc.f, 0, loc.size))
	if err != nil {
		return false, nil
	}
	head := make([]byte, store.FingerprintSpan)
	n, _ := io.ReadFull(zr, head)
	found, err := r.a.manifest.FindByHead(head[:n], 1<<62, copyCandidates)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	fi, err := loc.f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat: %w", unwrapPath(err))
	}
	s := &sibling{abs: filepath.Join(r.a.opts.Dir, filepath.FromSlash(rel)), rel: rel, name: path.Base(rel), fi: fi, dev: loc.dev, ino: loc.ino}
	for _, m := range found {
		from := string(m.Path)
		if from == rel || m.Entry.Archived == 0 {
			continue
		}
		k := r.gzipForm(s, &m.Entry)
		if k == foundNone {
			continue
		}
		remote := from
		if len(m.Entry.Remote) > 0 {
			remote = string(m.Entry.Remote)
		}
		gone, moved := r.leftBehind(from, &m.Entry)
		if k == foundGzip && moved && r.claim(from) {
			p := departPlan{d: departure{rel: from, entry: m.Entry}, kind: foundGzip, to: s}
			if err := r.takeTail(ctx, p, remote); err != nil {
				r.holdRewrite(from)
				return true, err
			}
			return true, r.forget(job{from: from, fromGone: gone})
		}
		r.a.log.Info("compressed rotation recognised", "path", rel, "of", from)
		r.count(&r.sum.FilesRotated)
		if r.a.opts.DryRun {
			return true, nil
		}
		ne := m.Entry
		ne.Status, ne.Remote = store.StatusCompressed, []byte(remote)
		ne.Size, ne.MtimeNs, ne.Dev, ne.Ino, ne.UpdatedNs = fi.Size(), fi.ModTime().UnixNano(), loc.dev, loc.ino, nowNs()
		if err := r.put([]byte(rel), ne, true); err != nil {
			return true, fmt.Errorf("%w: %w", ErrManifest, err)
		}
		return true, nil
	}
	return false, nil
}

// moveCompressed follows a compressed rotation renamed within the matched
// names (app.log.2.gz -> app.log.3.gz): the entry moves, nothing is sent.
// A gzip file that changed is looked at as a new one.
func (r *run) moveCompressed(ctx context.Context, j job, loc *local) (bool, error) {
	fe := j.fromEntry
	if loc.size != fe.Size || loc.mtime != fe.MtimeNs {
		return r.compressedForm(ctx, j.rel, loc)
	}
	r.count(&r.sum.FilesRotated)
	if r.a.opts.DryRun {
		return true, nil
	}
	fe.Dev, fe.Ino, fe.UpdatedNs = loc.dev, loc.ino, nowNs()
	if err := r.put([]byte(j.rel), fe, false); err != nil {
		return true, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return true, r.forget(j)
}
