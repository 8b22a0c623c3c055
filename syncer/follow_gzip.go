package syncer

// Compressed rotations: gzip files that hold a log's archived bytes and
// maybe its tail (logrotate's compress), read through their decompressed
// stream.

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/syncer-dev/syncer/store"
)

// gzipForm reports whether the gzip file s holds e's archived bytes: its
// decompressed head matches e's, and its length (the trailer's ISIZE, mod
// 2^32) says whether more follows. The archived bytes are checked in full
// when a tail is taken (see decompressTo).
func (r *run) gzipForm(s *sibling, e *store.Entry) foundKind {
	f, err := openLog(s.abs)
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
	if fi, err := statOpen(f); err == nil && fi.Size() >= 18 {
		if _, err := f.ReadAt(trailer[:], fi.Size()-4); err == nil && binary.LittleEndian.Uint32(trailer[:]) == uint32(e.Archived) {
			return foundGzipNo
		}
	}
	return foundGzip
}

// openSibling opens s to be read for a transfer, decompressed into a
// temporary file when it is a gzip file. The caller closes loc.f.
func (r *run) openSibling(s *sibling, gz bool) (*local, error) {
	var f *os.File
	var err error
	if gz {
		f, err = r.decompressTo(s)
	} else if f, err = openLog(s.abs); err != nil {
		err = fmt.Errorf("open: %w", unwrapPath(err))
	}
	if err != nil {
		return nil, err
	}
	loc, err := openLocal(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return loc, nil
}

// decompressTo writes the decompressed s into a temporary file in the state
// directory and returns it open, with the stat to record for s.
func (r *run) decompressTo(s *sibling) (*os.File, error) {
	in, err := openLog(s.abs)
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

// markCompressed turns the entry just written for the gzip file s (with
// the decompressed file's stat) into a compressed entry with s's own.
func (r *run) markCompressed(s *sibling) error {
	ne, err := r.a.manifest.Get([]byte(s.rel))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return r.putCompressed(s, ne, string(ne.Remote), true)
}

// putCompressed records the gzip file s (inside the log directory) as the
// compressed form of e, the log archived at remote: e's archived bytes and
// fingerprints with s's own stat.
func (r *run) putCompressed(s *sibling, e store.Entry, remote string, sync bool) error {
	e.Status, e.Remote = store.StatusCompressed, []byte(remote)
	e.Size, e.MtimeNs, e.Dev, e.Ino, e.UpdatedNs = s.fi.Size(), s.fi.ModTime().UnixNano(), s.dev, s.ino, nowNs()
	if err := r.put([]byte(s.rel), e, sync); err != nil {
		return fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return nil
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
	fi, err := statOpen(loc.f)
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
		// When the log left its name, this is where it went: its
		// departure is resolved here (and its tail taken, if any).
		gone, moved := r.leftBehind(from, &m.Entry)
		claimed := moved && r.claim(from)
		if k == foundGzip && claimed {
			p := departPlan{d: departure{rel: from, entry: m.Entry}, kind: foundGzip, to: s}
			if err := r.takeTail(ctx, p, remote); err != nil {
				r.holdRewrite(from)
				return true, err
			}
			return true, r.forget(job{from: from, fromGone: gone})
		}
		if claimed {
			if err := r.forget(job{from: from, fromGone: gone}); err != nil {
				return true, err
			}
		}
		r.a.log.Info("compressed rotation recognised", "path", rel, "of", from)
		r.count(&r.sum.FilesRotated)
		if r.a.opts.DryRun {
			return true, nil
		}
		return true, r.putCompressed(s, m.Entry, remote, true)
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
