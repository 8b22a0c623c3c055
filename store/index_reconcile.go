package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/syncer-dev/syncer/internal/archive"
)

// reconcile compares the index with the archive on disk and repairs it:
// files that appeared are hashed and added, files that changed size or
// mtime behind the server's back are rehashed (and so checked again
// against their agent's record), entries of files that are gone are
// removed, then commit records not yet applied are applied. Paths with an
// upload open are left to the upload's events.
func (ix *Index) reconcile(ctx context.Context) error {
	w := ix.newWriter()
	top, err := ix.readDirSorted(".")
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	onDisk := map[string]bool{}
	for _, de := range top {
		if !de.IsDir() || !archive.ValidAgentID(de.Name()) {
			continue // files at the top belong to no agent; symlinks are not followed
		}
		onDisk[de.Name()] = true
		if err := ix.reconcileAgent(ctx, w, de.Name()); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ix.log.Warn("index: reconcile of an agent failed", "agent", de.Name(), "err", err)
		}
	}
	ix.statsMu.RLock()
	var gone []string
	for id := range ix.stats {
		if !onDisk[id] {
			gone = append(gone, id)
		}
	}
	for id := range ix.agents {
		if !onDisk[id] && ix.stats[id] == nil {
			gone = append(gone, id)
		}
	}
	ix.statsMu.RUnlock()
	for _, id := range gone {
		if err := w.dropAgent(id); err != nil {
			return err
		}
	}
	return w.flush()
}

func (ix *Index) reconcileAgent(ctx context.Context, w *ixWriter, agent string) error {
	w.agent(agent)
	if err := ix.reconcileDir(ctx, w, agent, ""); err != nil {
		return err
	}
	a := w.agent(agent)
	if fi, err := ix.root.Stat(agent + "/" + archive.MetaDir + "/agent.json"); err == nil && fi.ModTime().UnixNano() != a.MetaMtimeNs {
		if err := ix.readAgentInfo(w, agent); err != nil {
			ix.log.Warn("index: unreadable agent description", "agent", agent, "err", err)
		}
	}
	commits, err := ix.readDirSorted(agent + "/" + archive.MetaDir + "/commits")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, de := range commits {
		if !de.Type().IsRegular() || !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		if ix.uploading("/" + agent + "/" + archive.MetaDir + "/commits/" + de.Name()) {
			continue
		}
		if err := ix.applyCommitFile(w, agent, de.Name()); err != nil {
			ix.log.Warn("index: commit record not applied", "agent", agent, "commit", de.Name(), "err", err)
		}
		if err := w.maybeFlush(); err != nil {
			return err
		}
	}
	return nil
}

// readDirSorted lists a directory of the archive, sorted by name bytes.
func (ix *Index) readDirSorted(dir string) ([]fs.DirEntry, error) {
	f, err := ix.root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	sort.Slice(des, func(i, j int) bool { return des[i].Name() < des[j].Name() })
	return des, nil
}

// reconcileDir merges the listing of one directory on disk with its range
// in the index (both sorted by name), then descends into subdirectories.
func (ix *Index) reconcileDir(ctx context.Context, w *ixWriter, agent, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fsDir := agent
	if dir != "" {
		fsDir += "/" + dir
	}
	des, err := ix.readDirSorted(fsDir)
	if err != nil {
		return err
	}
	prefix := ixDirPrefix(agent, dir)
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	it.First()
	var subdirs []string
	i := 0
	for i < len(des) || it.Valid() {
		var name string
		var de fs.DirEntry
		var ie *IndexEntry
		switch {
		case !it.Valid():
			de = des[i]
			name = de.Name()
		case i >= len(des):
			name = string(it.Key()[len(prefix):])
		default:
			in := it.Key()[len(prefix):]
			switch c := bytes.Compare([]byte(des[i].Name()), in); {
			case c < 0:
				de = des[i]
				name = de.Name()
			case c > 0:
				name = string(in)
			default:
				de = des[i]
				name = de.Name()
			}
		}
		if it.Valid() && string(it.Key()[len(prefix):]) == name {
			e, err := decodeIndexEntry(agent, joinRel(dir, name), it.Value())
			if err != nil {
				e = IndexEntry{Agent: agent, Path: joinRel(dir, name)} // rewritten below
			}
			ie = &e
			it.Next()
		}
		if de != nil {
			i++
		}
		rel := joinRel(dir, name)
		if dir == "" && name == archive.MetaDir {
			// The agent's metadata is shown on the agent, not as files.
			if ie != nil {
				if err := w.delTree(ie); err != nil {
					return err
				}
			}
			continue
		}
		if err := ix.reconcileOne(w, agent, rel, de, ie, &subdirs); err != nil {
			return err
		}
		if err := w.maybeFlush(); err != nil {
			return err
		}
	}
	it.Close()
	for _, sd := range subdirs {
		if err := ix.reconcileDir(ctx, w, agent, sd); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while we walked; the next reconcile drops it
			}
			return err
		}
	}
	return nil
}

// reconcileOne repairs one name: de is its disk entry (nil when gone), ie
// its index entry (nil when unknown).
func (ix *Index) reconcileOne(w *ixWriter, agent, rel string, de fs.DirEntry, ie *IndexEntry, subdirs *[]string) error {
	switch {
	case de == nil || (!de.IsDir() && !de.Type().IsRegular()):
		// Gone, or not something the archive holds (symlinks are never
		// followed: they could lead out of the root).
		if ie == nil {
			return nil
		}
		if ie.Dir {
			return w.delTree(ie)
		}
		return w.del(ie)
	case de.IsDir():
		*subdirs = append(*subdirs, rel)
		fi, err := de.Info()
		if err != nil {
			return nil
		}
		mt := fi.ModTime().UnixNano()
		if ie != nil && ie.Dir && ie.MtimeNs == mt {
			w.dirs[agent+"\x00"+rel] = true
			return nil
		}
		if ie != nil && !ie.Dir {
			if err := w.del(ie); err != nil {
				return err
			}
			ie = nil
		}
		ne := IndexEntry{Agent: agent, Path: rel, Dir: true, MtimeNs: mt}
		if err := w.put(ie, &ne); err != nil {
			return err
		}
		w.dirs[agent+"\x00"+rel] = true
		return nil
	}
	if ix.uploading("/" + agent + "/" + rel) {
		return nil
	}
	if ie != nil && !ie.Dir {
		fi, err := de.Info()
		if err == nil && fi.Size() == ie.Size && fi.ModTime().UnixNano() == ie.MtimeNs && ie.Hashed == ie.Size {
			return nil
		}
	}
	// New, or changed behind the server's back: hash it all again.
	return w.refresh(agent, rel, 0, false, nil)
}
