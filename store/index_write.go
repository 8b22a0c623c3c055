package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/syncer-dev/syncer/internal/archive"
)

// ixWriter groups changes into one atomic batch. It reads its own writes
// (an indexed batch), so a record moved to a version and then looked up
// is seen where it now is. Counts and agent records change in memory only
// once the batch is committed.
type ixWriter struct {
	ix      *Index
	b       *pebble.Batch
	sync    bool
	ops     int
	changes []Change
	deltas  map[string]*agentStats
	agents  map[string]*AgentRecord
	dirs    map[string]bool // agent + 0 + dir: known to have an entry
}

// flushEvery bounds the size of one batch.
const flushEvery = 2000

func (ix *Index) newWriter() *ixWriter {
	return &ixWriter{ix: ix, b: ix.db.NewIndexedBatch(), deltas: map[string]*agentStats{},
		agents: map[string]*AgentRecord{}, dirs: map[string]bool{}}
}

func (w *ixWriter) get(agent, rel string) (IndexEntry, bool, error) {
	v, closer, err := w.b.Get(ixFileKey(agent, rel))
	if errors.Is(err, pebble.ErrNotFound) {
		return IndexEntry{}, false, nil
	}
	if err != nil {
		return IndexEntry{}, false, fmt.Errorf("index get %s/%s: %w", agent, rel, err)
	}
	defer closer.Close()
	e, err := decodeIndexEntry(agent, rel, v)
	if err != nil {
		// A corrupt value is replaced by what the disk says.
		w.ix.log.Warn("index: undecodable entry replaced", "agent", agent, "path", rel, "err", err)
		return IndexEntry{}, false, nil
	}
	return e, true, nil
}

func (w *ixWriter) delta(agent string) *agentStats {
	d := w.deltas[agent]
	if d == nil {
		d = &agentStats{}
		w.deltas[agent] = d
	}
	return d
}

// put stores e, replacing old (nil when e is new).
func (w *ixWriter) put(old, e *IndexEntry) error {
	if err := w.b.Set(ixFileKey(e.Agent, e.Path), encodeIndexEntry(e), nil); err != nil {
		return fmt.Errorf("index put %s/%s: %w", e.Agent, e.Path, err)
	}
	d := w.delta(e.Agent)
	d.add(old, -1)
	d.add(e, 1)
	w.ops++
	w.changes = append(w.changes, Change{Agent: e.Agent, Path: e.Path})
	return nil
}

// del removes old's entry (not, for a directory, its contents).
func (w *ixWriter) del(old *IndexEntry) error {
	if err := w.b.Delete(ixFileKey(old.Agent, old.Path), nil); err != nil {
		return fmt.Errorf("index delete %s/%s: %w", old.Agent, old.Path, err)
	}
	if err := w.b.Delete(ixTimeKey(old.Agent, old.Path), nil); err != nil {
		return fmt.Errorf("index delete %s/%s: %w", old.Agent, old.Path, err)
	}
	w.delta(old.Agent).add(old, -1)
	w.ops++
	w.changes = append(w.changes, Change{Agent: old.Agent, Path: old.Path, Removed: true})
	if old.Dir {
		delete(w.dirs, old.Agent+"\x00"+old.Path)
	}
	return nil
}

// delTree removes the directory entry old and everything below it.
func (w *ixWriter) delTree(old *IndexEntry) error {
	ranges := [][]byte{ixDirPrefix(old.Agent, old.Path)}
	if old.Path == "" {
		ranges = [][]byte{ixAgentPrefix(old.Agent)}
	} else {
		ranges = append(ranges, append(ixAgentPrefix(old.Agent), old.Path+"/"...))
	}
	for _, p := range ranges {
		it, err := w.b.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return err
		}
		var gone []IndexEntry
		for it.First(); it.Valid(); it.Next() {
			a, rel, err := decodeIxFileKey(it.Key())
			if err != nil {
				continue
			}
			e, err := decodeIndexEntry(a, rel, it.Value())
			if err != nil {
				e = IndexEntry{Agent: a, Path: rel, Dir: true} // counted as nothing
			}
			gone = append(gone, e)
		}
		if err := it.Close(); err != nil {
			return err
		}
		for i := range gone {
			if err := w.del(&gone[i]); err != nil {
				return err
			}
		}
	}
	for k := range w.dirs {
		if strings.HasPrefix(k, old.Agent+"\x00"+old.Path) {
			delete(w.dirs, k)
		}
	}
	if old.Path == "" {
		return nil
	}
	return w.del(old)
}

// ensureDirs gives every ancestor directory of rel an entry.
func (w *ixWriter) ensureDirs(agent, rel string) error {
	dir, _ := splitRel(rel)
	for dir != "" {
		k := agent + "\x00" + dir
		if w.dirs[k] {
			return nil
		}
		e, ok, err := w.get(agent, dir)
		if err != nil {
			return err
		}
		if ok && e.Dir {
			w.dirs[k] = true
			return nil
		}
		var old *IndexEntry
		if ok {
			old = &e // a file where a directory now is
		}
		ne := IndexEntry{Agent: agent, Path: dir, Dir: true}
		if fi, err := w.ix.root.Stat(agent + "/" + dir); err == nil {
			ne.MtimeNs = fi.ModTime().UnixNano()
		}
		if err := w.put(old, &ne); err != nil {
			return err
		}
		w.dirs[k] = true
		dir, _ = splitRel(dir)
	}
	return nil
}

// agent returns the agent record to change, creating it if needed.
func (w *ixWriter) agent(id string) *AgentRecord {
	if a := w.agents[id]; a != nil {
		return a
	}
	w.ix.statsMu.RLock()
	cur := w.ix.agents[id]
	w.ix.statsMu.RUnlock()
	a := &AgentRecord{ID: id}
	if cur != nil {
		*a = *cur
	}
	w.agents[id] = a
	return a
}

// seen records activity of agent at t by account ("" keeps the account).
func (w *ixWriter) seen(id string, t time.Time, account string) {
	a := w.agent(id)
	if !t.IsZero() {
		if a.FirstSeen.IsZero() || t.Before(a.FirstSeen) {
			a.FirstSeen = t.UTC()
		}
		if t.After(a.LastSeen) {
			a.LastSeen = t.UTC()
		}
	}
	if account != "" {
		a.Account = account
	}
}

// dropAgent forgets an agent whose tree is gone from the disk.
func (w *ixWriter) dropAgent(id string) error {
	if err := w.delTree(&IndexEntry{Agent: id, Dir: true}); err != nil {
		return err
	}
	if err := w.b.Delete(ixAgentKey(id), nil); err != nil {
		return err
	}
	cp := append([]byte{ixCommit}, id...)
	cp = append(cp, 0)
	if err := w.b.DeleteRange(cp, prefixEnd(cp), nil); err != nil {
		return err
	}
	w.agents[id] = nil
	return nil
}

// flush commits the batch and applies counts, agent records and change
// notifications; the writer can be used again afterwards.
func (w *ixWriter) flush() error {
	for id, a := range w.agents {
		if a == nil {
			continue
		}
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		if err := w.b.Set(ixAgentKey(id), b, nil); err != nil {
			return err
		}
	}
	opt := pebble.NoSync
	if w.sync {
		opt = pebble.Sync
	}
	if !w.b.Empty() {
		if err := w.b.Commit(opt); err != nil {
			w.b.Close()
			w.reset()
			return fmt.Errorf("index commit: %w", err)
		}
	}
	w.b.Close()
	ix := w.ix
	ix.statsMu.Lock()
	for id, a := range w.agents {
		if a == nil {
			delete(ix.agents, id)
			delete(ix.stats, id)
			continue
		}
		ix.agents[id] = a
	}
	for id, d := range w.deltas {
		s := ix.stats[id]
		if s == nil {
			if ix.agents[id] == nil {
				continue
			}
			s = &agentStats{}
			ix.stats[id] = s
		}
		s.files += d.files
		s.bytes += d.bytes
		s.verified += d.verified
		s.pending += d.pending
		s.mismatch += d.mismatch
		s.incomplete += d.incomplete
	}
	ix.statsMu.Unlock()
	changes := w.changes
	w.reset()
	ix.publish(changes)
	return nil
}

func (w *ixWriter) reset() {
	w.b = w.ix.db.NewIndexedBatch()
	w.sync = false
	w.ops = 0
	w.changes = nil
	w.deltas = map[string]*agentStats{}
	w.agents = map[string]*AgentRecord{}
	w.dirs = map[string]bool{}
}

// maybeFlush commits when the batch has grown large.
func (w *ixWriter) maybeFlush() error {
	if w.ops < flushEvery {
		return nil
	}
	return w.flush()
}

// refresh brings agent's entry rel up to what is on disk: stat, hash the
// bytes not hashed yet (all of them when the file is new, shrank, or
// rewriteFrom says bytes below the hashed length were rewritten), and
// store. A missing file loses its entry. With synced, the file's data is
// fsynced before the entry that claims it (and the batch is committed
// with sync).
func (w *ixWriter) refresh(agent, rel string, rewriteFrom int64, synced bool, upd func(*IndexEntry)) error {
	old, found, err := w.get(agent, rel)
	if err != nil {
		return err
	}
	f, err := w.ix.root.Open(agent + "/" + rel)
	if err != nil {
		if found && (errors.Is(err, fs.ErrNotExist) || isEscape(err)) {
			if old.Dir {
				return w.delTree(&old)
			}
			return w.del(&old)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("index %s/%s: %w", agent, rel, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("index %s/%s: %w", agent, rel, err)
	}
	if !fi.Mode().IsRegular() {
		return nil // directories come with their files; others are not archived
	}
	if found && old.Dir {
		if err := w.delTree(&old); err != nil {
			return err
		}
		found = false
	}
	e := IndexEntry{Agent: agent, Path: rel}
	if found {
		e = old
	} else if err := w.ensureDirs(agent, rel); err != nil {
		return err
	}
	size := fi.Size()
	if size < e.Hashed || (rewriteFrom >= 0 && rewriteFrom < e.Hashed) {
		e.resetHash()
	}
	if synced {
		// File data first, the index claiming it afterwards: a machine
		// crash must not leave the index ahead of the disk.
		_ = f.Sync()
		w.sync = true
	}
	fresh := e.Hashed == 0
	content, closeContent, err := w.ix.contentOf(agent, rel, f)
	if err != nil {
		return fmt.Errorf("index %s/%s: %w", agent, rel, err)
	}
	defer closeContent()
	if err := w.ix.hashInto(&e, content, size); err != nil {
		return fmt.Errorf("index %s/%s: %w", agent, rel, err)
	}
	if err := w.updateTimeSpan(agent, rel, f, content, size, fresh); err != nil {
		return err
	}
	e.Size = size
	e.MtimeNs = fi.ModTime().UnixNano()
	if upd != nil {
		upd(&e)
	}
	var op *IndexEntry
	if found {
		op = &old
	}
	return w.put(op, &e)
}

// move renames agent's entry from -> to (a superseded version keeps the
// hash and expectation of the content it holds).
func (w *ixWriter) move(agent, from, to string) error {
	old, found, err := w.get(agent, from)
	if err != nil || !found || old.Dir {
		return err
	}
	if err := w.del(&old); err != nil {
		return err
	}
	prev, had, err := w.get(agent, to)
	if err != nil {
		return err
	}
	ne := old
	ne.Path = to
	var op *IndexEntry
	if had {
		op = &prev
	}
	return w.put(op, &ne)
}

// isEscape recognises os.Root's refusal of a path that leads out of it.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

// archivePath splits "/agent/rel" into its parts; ok is false for paths
// outside every agent's tree or not clean.
func archivePath(p string) (agent, rel string, ok bool) {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return "", "", false
	}
	agent, rel, _ = strings.Cut(p[1:], "/")
	if !archive.ValidAgentID(agent) || !archive.ValidRel(rel) {
		return "", "", false
	}
	return agent, rel, true
}
