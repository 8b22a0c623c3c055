package store

// The historian's index.
//
// # Layout
//
// One Pebble database, <state>/index by convention, over one archive root
// (<root>/<agent>/<path>). Keys (index_keys.go): 'F' agent 0 dir 0 name for
// files and directories, 'A' agent for agent records, 'C' agent 0 name for
// applied commit records. The agents' .syncer/ metadata is read, never
// indexed as files.
//
// # Consistency with the disk
//
// The disk is the truth and the index a cache of it that can always be
// rebuilt: an entry's Size is a size the file had on disk when it was
// stat'ed, after the bytes were written, so the index never claims bytes the
// disk did not have. A reconcile at start (and periodically) compares every
// entry's size and mtime with the disk and rehashes what differs, so a kill
// -9, files placed or removed behind the server's back, or a deleted index
// directory all converge to the same answers.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/syncer-dev/syncer/internal/archive"
)

// ErrNoEntry is returned for an agent, file or directory the index does
// not know.
var ErrNoEntry = errors.New("not in index")

// DefaultReconcileEvery is how often Run compares the index with the disk
// when IndexConfig.ReconcileEvery is zero.
const DefaultReconcileEvery = 5 * time.Minute

// IndexConfig configures OpenIndex.
type IndexConfig struct {
	// Dir is the database directory (created if missing); deleting it
	// and reopening rebuilds the index from Root.
	Dir string
	// Root is the archive root: <Root>/<agent>/<path>. Files are opened
	// through os.Root, so symbolic links out of it are never followed.
	Root string
	// ReconcileEvery is the period of the disk reconcile in Run;
	// DefaultReconcileEvery if zero, never if negative.
	ReconcileEvery time.Duration
	// Logger receives mismatches and errors; nil discards.
	Logger *slog.Logger
	// Content, if set, is where the index reads the files' bytes when it
	// hashes them (the storage tier, for files whose local bytes were
	// evicted); nil reads them from Root. Sizes and mtimes always come
	// from Root.
	Content archive.Opener
}

// AgentRecord describes one agent: what its .syncer/agent.json says, what
// the index has seen of it, and counts of its indexed files.
type AgentRecord struct {
	ID      string   `json:"id"`
	Host    string   `json:"host,omitempty"`
	IPs     []string `json:"ips,omitempty"`
	Account string   `json:"account,omitempty"`
	Version string   `json:"version,omitempty"`
	Dir     string   `json:"dir,omitempty"`
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// Interval is a watch agent's push interval, ExpectEvery a cron-run
	// agent's declared period (push --expect-every): the schedule Status
	// measures lateness against. Only a description that carries one
	// changes them, so a manual push under a watch agent's id keeps the
	// watch's schedule.
	Interval    string `json:"interval,omitempty"`
	ExpectEvery string `json:"expect_every,omitempty"`
	// LastPush is the agent's summary of its last push, as it sent it.
	LastPush json.RawMessage `json:"last_push,omitempty"`
	// DescribedAt is the time in agent.json.
	DescribedAt time.Time `json:"described_at"`
	// FirstSeen and LastSeen span the uploads and descriptions seen.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Counts of indexed files (versions included) and their bytes.
	Files    int64 `json:"files"`
	Bytes    int64 `json:"bytes"`
	Verified int64 `json:"verified"`
	Pending  int64 `json:"pending"`
	Mismatch int64 `json:"mismatch"`
	// Incomplete counts files verified but reported by the agent as
	// missing lines (see VerifyIncomplete).
	Incomplete int64 `json:"incomplete"`

	// MetaMtimeNs is agent.json's mtime when it was last read.
	MetaMtimeNs int64 `json:"meta_mtime_ns,omitempty"`
}

// Agent statuses (AgentRecord.Status), worst first. The historian adds
// AgentRetired and AgentNeverSeen from its accounts: a tree no account may
// write any more, an agent account that never pushed.
const (
	AgentRetired   = "retired"
	AgentNeverSeen = "never seen"
	AgentLate      = "late"
	AgentFailing   = "failing"
	AgentActive    = "active"
)

// LateAfter is how many periods of its schedule (a watch's interval, a
// cron agent's --expect-every) without a sign of life make an agent late.
// A watch sends its heartbeat every interval, so three missed ones are
// not a slow push.
const LateAfter = 3

// Schedule is how often the agent said it pushes: a watch's interval or
// a cron agent's --expect-every; 0 when it said neither.
func (a AgentRecord) Schedule() time.Duration {
	for _, s := range []string{a.Interval, a.ExpectEvery} {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d
		}
	}
	return 0
}

// Status is "never seen" when nothing was ever seen from the agent,
// "late" when it has a schedule and nothing was seen from it for LateAfter
// periods, "failing" when its last push had failures, "active" otherwise
// (an agent without a schedule is never late).
func (a AgentRecord) Status(now time.Time) string {
	switch d := a.Schedule(); {
	case a.LastSeen.IsZero():
		return AgentNeverSeen
	case d > 0 && now.Sub(a.LastSeen) > LateAfter*d:
		return AgentLate
	case a.LastPushFailed() > 0:
		return AgentFailing
	}
	return AgentActive
}

// PushError is one failure the agent reported in its last push.
type PushError struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// lastPush is the part of the agent's push summary the historian reads.
type lastPush struct {
	FilesFailed int64       `json:"files_failed"`
	Errors      []PushError `json:"errors"`
}

func (a AgentRecord) lastPush() lastPush {
	var lp lastPush
	_ = json.Unmarshal(a.LastPush, &lp) // an agent's summary is its own; a bad one reads as no failures
	return lp
}

// LastPushFailed is the number of files the agent's last push failed.
func (a AgentRecord) LastPushFailed() int64 { return a.lastPush().FilesFailed }

// LastPushErrors are the failures of the agent's last push, as it
// reported them (at most max, max <= 0 for all).
func (a AgentRecord) LastPushErrors(max int) []PushError {
	errs := a.lastPush().Errors
	if max > 0 && len(errs) > max {
		errs = errs[:max]
	}
	return errs
}

// Change tells a subscriber that an entry was added, changed or removed;
// its parent directory's listing may have changed with it.
type Change struct {
	Agent, Path string
	Removed     bool
}

// IndexStats are totals over all agents.
type IndexStats struct {
	Agents, Files, Bytes                    int64
	Verified, Pending, Mismatch, Incomplete int64
}

// agentStats are the in-memory counters of one agent, rebuilt at open.
type agentStats struct {
	files, bytes                            int64
	verified, pending, mismatch, incomplete int64
}

func (s *agentStats) add(e *IndexEntry, sign int64) {
	if e == nil || e.Dir {
		return
	}
	s.files += sign
	s.bytes += sign * e.Size
	switch e.Status() {
	case VerifyVerified:
		s.verified += sign
	case VerifyMismatch:
		s.mismatch += sign
	case VerifyIncomplete:
		s.incomplete += sign
	default:
		s.pending += sign
	}
}

// Index is the historian's index of the archive. Reads are safe for
// concurrent use at any time; changes are made by Run's goroutine only, fed
// by Notify.
type Index struct {
	db       *pebble.DB
	dir      string
	root     *os.Root
	rootPath string
	log      *slog.Logger
	every    time.Duration
	fatal    *fatalState
	content  archive.Opener

	statsMu sync.RWMutex
	agents  map[string]*AgentRecord
	stats   map[string]*agentStats

	q    ingestQueue
	reqs chan request

	subMu  sync.Mutex
	subs   map[int]func(Change)
	nextID int

	readyOnce sync.Once
	ready     chan struct{}
}

// indexRebuildable tells a damaged index from one that cannot be opened
// for reasons that rebuilding would not cure or would make worse: no
// permission, or another process holding its lock.
func indexRebuildable(err error) bool {
	if errors.Is(err, fs.ErrPermission) {
		return false
	}
	return !strings.Contains(strings.ToLower(err.Error()), "lock")
}

// OpenIndex opens (creating if needed) the index database in cfg.Dir over
// the archive cfg.Root. Call Run to bring it up to date and keep it so. A
// damaged index is moved aside (Dir.broken-TIME) and rebuilt from the
// archive.
func OpenIndex(cfg IndexConfig) (*Index, error) {
	if cfg.Dir == "" || cfg.Root == "" {
		return nil, errors.New("open index: Dir and Root are required")
	}
	absRoot, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("open index: archive root %s: %w", cfg.Root, err)
	}
	root, err := os.OpenRoot(absRoot)
	if err != nil {
		return nil, fmt.Errorf("open index: archive root: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		root.Close()
		return nil, fmt.Errorf("open index: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fatal := newFatalState()
	opts := &pebble.Options{
		Cache:        pebble.NewCache(64 << 20),
		MemTableSize: 32 << 20,
		Logger:       pebbleLogger{db: "index", log: log, fatal: fatal},
	}
	defer opts.Cache.Unref()
	db, err := openPebble(cfg.Dir, opts)
	if err != nil && indexRebuildable(err) {
		// The index holds nothing that is not in the archive: a damaged
		// one (a torn MANIFEST after a crash, a bad disk block) is set
		// aside, kept for inspection, and rebuilt from the archive.
		aside := cfg.Dir + ".broken-" + time.Now().UTC().Format("20060102T150405.000000000Z")
		log.Warn("index damaged, setting it aside and rebuilding it from the archive", "dir", cfg.Dir, "moved_to", aside, "err", err)
		if rerr := os.Rename(cfg.Dir, aside); rerr == nil {
			if merr := os.MkdirAll(cfg.Dir, 0o700); merr == nil {
				db, err = openPebble(cfg.Dir, opts)
			}
		}
	}
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("open index %s: %w", cfg.Dir, err)
	}
	every := cfg.ReconcileEvery
	if every == 0 {
		every = DefaultReconcileEvery
	}
	ix := &Index{
		db: db, dir: cfg.Dir, root: root, rootPath: absRoot, log: log, every: every, fatal: fatal, content: cfg.Content,
		agents: map[string]*AgentRecord{}, stats: map[string]*agentStats{},
		reqs: make(chan request), subs: map[int]func(Change){}, ready: make(chan struct{}),
	}
	ix.q.init()
	if err := ix.load(); err != nil {
		db.Close()
		root.Close()
		return nil, err
	}
	return ix, nil
}

// load reads the agent records and counts the entries.
func (ix *Index) load() error {
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: []byte{ixAgent}, UpperBound: []byte{ixAgent + 1}})
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		var a AgentRecord
		if err := json.Unmarshal(it.Value(), &a); err != nil {
			ix.log.Warn("index: unreadable agent record; it is rebuilt by the reconcile", "key", string(it.Key()[1:]), "err", err)
			continue
		}
		ix.agents[a.ID] = &a
		ix.stats[a.ID] = &agentStats{}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	it, err = ix.db.NewIter(&pebble.IterOptions{LowerBound: []byte{ixFile}, UpperBound: []byte{ixFile + 1}})
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		agent, rel, err := decodeIxFileKey(it.Key())
		if err != nil {
			continue
		}
		e, err := decodeIndexEntry(agent, rel, it.Value())
		if err != nil {
			continue // the reconcile rewrites it
		}
		s := ix.stats[agent]
		if s == nil {
			s = &agentStats{}
			ix.stats[agent] = s
		}
		s.add(&e, 1)
	}
	return nil
}

// Close closes the database and the archive root. Run must have returned.
func (ix *Index) Close() error {
	if fe := ix.fatal.failed(); fe != nil {
		// Pebble may hold its own locks from the call that failed.
		ix.root.Close()
		return fmt.Errorf("close index: %w", fe)
	}
	err := ix.db.Close()
	ix.root.Close()
	if err != nil {
		return fmt.Errorf("close index: %w", err)
	}
	return nil
}

// Failed is closed when the database raised a *FatalError, in whichever
// goroutine called it (Run returns it; a reader gets the panic): the
// index is unusable, and its owner should stop and Close it.
func (ix *Index) Failed() <-chan struct{} { return ix.fatal.done }

// Err is the *FatalError once Failed is closed, and nil before.
func (ix *Index) Err() error {
	if fe := ix.fatal.failed(); fe != nil {
		return fe
	}
	return nil
}

// Ready is closed once the first reconcile of Run has finished: from then
// on the index answers for everything on disk.
func (ix *Index) Ready() <-chan struct{} { return ix.ready }

// Lookup returns the entry of agent's rel ("" is the agent's tree itself,
// a directory). Unknown agents and paths give ErrNoEntry.
func (ix *Index) Lookup(agent, rel string) (IndexEntry, error) {
	if !archive.ValidAgentID(agent) || !archive.ValidRel(rel) {
		return IndexEntry{}, fmt.Errorf("lookup %s/%s: %w", agent, rel, ErrNoEntry)
	}
	if rel == "" {
		ix.statsMu.RLock()
		_, ok := ix.agents[agent]
		ix.statsMu.RUnlock()
		if !ok {
			return IndexEntry{}, fmt.Errorf("lookup agent %s: %w", agent, ErrNoEntry)
		}
		return IndexEntry{Agent: agent, Dir: true}, nil
	}
	e, ok, err := ix.get(agent, rel)
	if err != nil {
		return IndexEntry{}, err
	}
	if !ok {
		return IndexEntry{}, fmt.Errorf("lookup %s/%s: %w", agent, rel, ErrNoEntry)
	}
	return e, nil
}

func (ix *Index) get(agent, rel string) (IndexEntry, bool, error) {
	v, closer, err := ix.db.Get(ixFileKey(agent, rel))
	if errors.Is(err, pebble.ErrNotFound) {
		return IndexEntry{}, false, nil
	}
	if err != nil {
		return IndexEntry{}, false, fmt.Errorf("index get %s/%s: %w", agent, rel, err)
	}
	defer closer.Close()
	e, err := decodeIndexEntry(agent, rel, v)
	if err != nil {
		return IndexEntry{}, false, err
	}
	return e, true, nil
}

// List returns the entries of directory dir of agent, sorted by name
// (bytewise), starting after the name after ("" from the start), at most
// limit of them (limit <= 0: all). more reports that entries follow. An
// unknown directory gives ErrNoEntry.
func (ix *Index) List(agent, dir, after string, limit int) (entries []IndexEntry, more bool, err error) {
	if e, err := ix.Lookup(agent, dir); err != nil {
		return nil, false, err
	} else if !e.Dir {
		return nil, false, fmt.Errorf("list %s/%s: not a directory: %w", agent, dir, ErrNoEntry)
	}
	prefix := ixDirPrefix(agent, dir)
	lower := prefix
	if after != "" {
		lower = append(append([]byte(nil), prefix...), after...)
		lower = append(lower, 0) // the smallest key above "after"
	}
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, false, fmt.Errorf("list %s/%s: %w", agent, dir, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if limit > 0 && len(entries) == limit {
			return entries, true, nil
		}
		name := string(it.Key()[len(prefix):])
		e, err := decodeIndexEntry(agent, joinRel(dir, name), it.Value())
		if err != nil {
			return nil, false, err
		}
		entries = append(entries, e)
	}
	return entries, false, it.Error()
}

// Versions returns the superseded versions of agent's file rel (the
// entries named rel.superseded-*), oldest first.
func (ix *Index) Versions(agent, rel string) ([]IndexEntry, error) {
	if !archive.ValidAgentID(agent) || !archive.ValidRel(rel) || rel == "" {
		return nil, fmt.Errorf("versions %s/%s: %w", agent, rel, ErrNoEntry)
	}
	prefix := ixFileKey(agent, rel+archive.VersionMarker)
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("versions %s/%s: %w", agent, rel, err)
	}
	defer it.Close()
	dir, _ := splitRel(rel)
	dp := ixDirPrefix(agent, dir)
	var out []IndexEntry
	for it.First(); it.Valid(); it.Next() {
		e, err := decodeIndexEntry(agent, joinRel(dir, string(it.Key()[len(dp):])), it.Value())
		if err != nil {
			return nil, err
		}
		if !e.Dir {
			out = append(out, e)
		}
	}
	return out, it.Error()
}

// Walk calls fn for every entry of agent's tree ("" walks every agent), in
// key order (grouped by directory, not in depth-first order), until fn
// returns an error (returned as is) or ctx ends.
func (ix *Index) Walk(ctx context.Context, agent string, fn func(IndexEntry) error) error {
	lower, upper := []byte{ixFile}, []byte{ixFile + 1}
	if agent != "" {
		if !archive.ValidAgentID(agent) {
			return fmt.Errorf("walk %s: %w", agent, ErrNoEntry)
		}
		lower = ixAgentPrefix(agent)
		upper = prefixEnd(lower)
	}
	it, err := ix.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("walk index: %w", err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		a, rel, err := decodeIxFileKey(it.Key())
		if err != nil {
			continue
		}
		e, err := decodeIndexEntry(a, rel, it.Value())
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return it.Error()
}

// Agents returns every known agent, sorted by id, with its counts.
func (ix *Index) Agents() []AgentRecord {
	ix.statsMu.RLock()
	defer ix.statsMu.RUnlock()
	out := make([]AgentRecord, 0, len(ix.agents))
	for id, a := range ix.agents {
		out = append(out, ix.withStats(id, a))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Agent returns one agent's record, or ErrNoEntry.
func (ix *Index) Agent(id string) (AgentRecord, error) {
	ix.statsMu.RLock()
	defer ix.statsMu.RUnlock()
	a, ok := ix.agents[id]
	if !ok {
		return AgentRecord{}, fmt.Errorf("agent %s: %w", id, ErrNoEntry)
	}
	return ix.withStats(id, a), nil
}

// withStats copies a and fills its counts; statsMu is held.
func (ix *Index) withStats(id string, a *AgentRecord) AgentRecord {
	r := *a
	r.IPs = append([]string(nil), a.IPs...)
	if s := ix.stats[id]; s != nil {
		r.Files, r.Bytes = s.files, s.bytes
		r.Verified, r.Pending, r.Mismatch, r.Incomplete = s.verified, s.pending, s.mismatch, s.incomplete
	}
	return r
}

// Stats returns totals over every agent.
func (ix *Index) Stats() IndexStats {
	ix.statsMu.RLock()
	defer ix.statsMu.RUnlock()
	st := IndexStats{Agents: int64(len(ix.agents))}
	for _, s := range ix.stats {
		st.Files += s.files
		st.Bytes += s.bytes
		st.Verified += s.verified
		st.Pending += s.pending
		st.Mismatch += s.mismatch
		st.Incomplete += s.incomplete
	}
	return st
}

// DiskUsage is the size of the index database on disk, in bytes.
func (ix *Index) DiskUsage() uint64 { return ix.db.Metrics().DiskSpaceUsage() }

// Subscribe calls fn after every change of the index has been committed,
// from the index's goroutine: fn must return quickly (a FUSE view
// invalidates its kernel caches). cancel stops the calls.
func (ix *Index) Subscribe(fn func(Change)) (cancel func()) {
	ix.subMu.Lock()
	id := ix.nextID
	ix.nextID++
	ix.subs[id] = fn
	ix.subMu.Unlock()
	return func() {
		ix.subMu.Lock()
		delete(ix.subs, id)
		ix.subMu.Unlock()
	}
}

func (ix *Index) publish(changes []Change) {
	if len(changes) == 0 {
		return
	}
	ix.subMu.Lock()
	fns := make([]func(Change), 0, len(ix.subs))
	for _, fn := range ix.subs {
		fns = append(fns, fn)
	}
	ix.subMu.Unlock()
	for _, fn := range fns {
		for _, c := range changes {
			fn(c)
		}
	}
}
