package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/syncer-dev/syncer/internal/archive"
)

// The agents' metadata (archive.AgentInfo, archive.CommitRecord), as the
// agent uploads it under /<agent>/.syncer/.

// Size limits of metadata files: larger ones are refused (an agent
// account could otherwise make the historian read gigabytes into memory).
const (
	maxAgentJSON  = 1 << 20
	maxCommitJSON = 512 << 20
)

// applyMeta reads a metadata file an agent just uploaded (rel is below
// .syncer/).
func (ix *Index) applyMeta(w *ixWriter, agent, rel string) error {
	if rel == archive.AgentInfoFile {
		return ix.readAgentInfo(w, agent)
	}
	if name, ok := archive.CommitRecordOf(rel); ok {
		return ix.applyCommitFile(w, agent, name)
	}
	return nil
}

func (ix *Index) readMeta(agent, rel string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := ix.root.Open(agent + "/" + archive.MetaDir + "/" + rel)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s/%s/%s: not a regular file", agent, archive.MetaDir, rel)
	}
	if fi.Size() > limit {
		return nil, nil, fmt.Errorf("%s/%s/%s: %d bytes is over the limit of %d", agent, archive.MetaDir, rel, fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit))
	return b, fi, err
}

// readAgentInfo updates the agent record from .syncer/agent.json.
func (ix *Index) readAgentInfo(w *ixWriter, agent string) error {
	b, fi, err := ix.readMeta(agent, archive.AgentInfoFile, maxAgentJSON)
	if err != nil {
		return fmt.Errorf("agent description: %w", err)
	}
	var info archive.AgentInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return fmt.Errorf("agent description %s/%s/%s: %w", agent, archive.MetaDir, archive.AgentInfoFile, err)
	}
	a := w.agent(agent)
	a.Host, a.IPs, a.Version, a.Dir = info.Host, info.IPs, info.Version, info.Dir
	a.Include, a.Exclude = info.Include, info.Exclude
	if info.Interval != "" || info.ExpectEvery != "" {
		// A description without a schedule (a manual push) keeps the one
		// the agent's watch or cron job declared.
		a.Interval, a.ExpectEvery = info.Interval, info.ExpectEvery
	}
	a.LastPush = bytes.Clone(info.LastPush)
	a.DescribedAt = info.Time.UTC()
	a.MetaMtimeNs = fi.ModTime().UnixNano()
	// Seen when the historian stored the description (its clock), not
	// when the agent says it wrote it: a node's clock may be off.
	w.seen(agent, fi.ModTime(), "")
	return nil
}

// applyCommitFile applies commit record name (under .syncer/commits/) once.
func (ix *Index) applyCommitFile(w *ixWriter, agent, name string) error {
	key := ixCommitKey(agent, name)
	if _, closer, err := w.b.Get(key); err == nil {
		closer.Close()
		return nil
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	b, _, err := ix.readMeta(agent, archive.CommitsDir+"/"+name, maxCommitJSON)
	if err != nil {
		return fmt.Errorf("commit record: %w", err)
	}
	var rec archive.CommitRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("commit record %s/%s/%s/%s: %w", agent, archive.MetaDir, archive.CommitsDir, name, err)
	}
	for _, cf := range rec.Files {
		if err := ix.applyCommitEntry(w, agent, rec.Time, cf); err != nil {
			ix.log.Warn("index: commit record entry not applied", "agent", agent, "commit", name, "path", cf.Path, "err", err)
		}
	}
	w.seen(agent, rec.Time, "")
	return w.b.Set(key, nil, nil)
}

// applyCommitEntry sets the expectation of one committed file on the entry
// that holds the content the agent described, and checks it.
func (ix *Index) applyCommitEntry(w *ixWriter, agent string, at time.Time, cf archive.CommitFile) error {
	rel, err := cf.Archived()
	if err != nil {
		return err
	}
	if !archive.ValidRel(rel) || rel == "" || archive.IsMeta(rel) {
		return fmt.Errorf("path %q: not a path in the agent's tree", rel)
	}
	sum, err := hex.DecodeString(cf.SHA256)
	if err != nil || len(sum) != 32 || cf.Size < 0 {
		return fmt.Errorf("bad size or sha256 %q", cf.SHA256)
	}
	e, old, err := ix.commitTarget(w, agent, rel, at, cf.Size, sum)
	if err != nil || e == nil {
		return err
	}
	if cf.Gap && !e.Gap {
		// A version the agent could not complete stays marked whatever
		// record describes it later.
		e.Gap = true
		if e.HasExpected && e.CommitNs > at.UnixNano() {
			return w.put(&old, e)
		}
	}
	if e.HasExpected && e.CommitNs > at.UnixNano() {
		// A newer record already describes this content. Records of a
		// killed push are published late, by the next push, so an older
		// one can arrive after a newer one; it must not roll it back.
		return nil
	}
	e.HasExpected, e.ExpectedSize, e.CommitNs, e.check = true, cf.Size, at.UnixNano(), checkNone
	copy(e.ExpectedSHA256[:], sum)
	switch {
	case e.Hashed == e.ExpectedSize:
		ix.setCheck(e, e.SHA256)
	case e.Hashed > e.ExpectedSize:
		// The file grew since the push committed it: hash the prefix.
		if err := ix.checkPrefix(e); err != nil {
			return err
		}
	}
	return w.put(&old, e)
}

// commitTarget finds the entry holding what a commit made at time at
// described as rel: rel itself, or one of its versions superseded after
// the commit (rel was rewritten since). Among candidates of the recorded
// size, one whose hash matches wins. Versions are named to the second, so
// a version of the same second as the commit is a candidate too.
func (ix *Index) commitTarget(w *ixWriter, agent, rel string, at time.Time, size int64, sum []byte) (*IndexEntry, IndexEntry, error) {
	var cands []IndexEntry
	prefix := ixFileKey(agent, rel+archive.VersionMarker)
	it, err := w.b.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, IndexEntry{}, err
	}
	dir, base := splitRel(rel)
	dp := ixDirPrefix(agent, dir)
	floor := at.UTC().Truncate(time.Second)
	for it.First(); it.Valid(); it.Next() {
		name := string(it.Key()[len(dp):])
		b, t, ok := archive.VersionOf(name)
		if !ok || b != base || t.Before(floor) {
			continue
		}
		e, err := decodeIndexEntry(agent, joinRel(dir, name), it.Value())
		if err != nil || e.Dir {
			continue
		}
		cands = append(cands, e)
	}
	if err := it.Close(); err != nil {
		return nil, IndexEntry{}, err
	}
	sort.SliceStable(cands, func(i, j int) bool {
		_, ti, _ := archive.VersionOf(cands[i].Name())
		_, tj, _ := archive.VersionOf(cands[j].Name())
		return ti.Before(tj)
	})
	if e, ok, err := w.get(agent, rel); err != nil {
		return nil, IndexEntry{}, err
	} else if ok && !e.Dir {
		cands = append(cands, e)
	}
	if len(cands) == 0 {
		return nil, IndexEntry{}, nil // not on disk (any more)
	}
	pick := -1
	for i, c := range cands {
		if c.Hashed == size && c.Size == size && bytes.Equal(c.SHA256[:], sum) {
			pick = i
			break
		}
	}
	for i, c := range cands {
		if pick < 0 && c.Size == size {
			pick = i
		}
	}
	if pick < 0 {
		pick = 0
		if len(cands) > 1 {
			pick = len(cands) - 1 // still being uploaded: the current file
		}
	}
	e := cands[pick]
	return &e, cands[pick], nil
}

// checkPrefix compares the hash of the first ExpectedSize bytes on disk.
func (ix *Index) checkPrefix(e *IndexEntry) error {
	f, err := ix.root.Open(e.Agent + "/" + e.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	content, closeContent, err := ix.contentOf(e.Agent, e.Path, f)
	if err != nil {
		return err
	}
	defer closeContent()
	h := sha256.New()
	n, err := hashRange(h, content, 0, e.ExpectedSize)
	if err != nil {
		return err
	}
	if n != e.ExpectedSize {
		return nil // shorter than recorded: pending until the bytes arrive
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	ix.setCheck(e, sum)
	return nil
}

// contentOf is where the bytes of agent's rel are read for hashing: the
// IndexConfig's Content when set, the local file f otherwise.
func (ix *Index) contentOf(agent, rel string, f *os.File) (io.ReaderAt, func(), error) {
	if ix.content == nil {
		return f, func() {}, nil
	}
	c, err := ix.content.Open(agent, rel)
	if err != nil {
		return nil, nil, err
	}
	return c, func() { c.Close() }, nil
}
