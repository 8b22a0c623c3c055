package tier

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Compaction: a file sealed a little at a time (--seal-idle on a slow
// log) gets many small segments. Runs of at least compactMin adjacent small
// segments (each under a quarter of SealSize) are merged into one segment
// of at most SealSize, written like any other (If-None-Match, its own
// SHA-256), recorded in place of the run, and the run's objects retired:
// deleted a minute later, when no read that started before can still want
// them. A crash after the PUT leaves an extra object that covers the same
// bytes as the run (a restore takes the longest segment at each offset:
// the same bytes); one after the record leaves retired objects that the
// next start deletes.

// compactMin is the shortest run merged: each byte of a slow log is
// rewritten about log4 of (SealSize/4 over its idle segments' size)
// times, not once per idle seal.
const compactMin = 4

// retireAfter is how long a replaced segment stays in the bucket.
const retireAfter = time.Minute

func retiredKey(key string) []byte { return append([]byte{'r'}, key...) }

// compactRun returns the first run [i,j) of rec's segments worth merging.
func (t *Tier) compactRun(rec *fileRec) (int, int, bool) {
	small := t.cfg.SealSize / 4
	for i := 0; i < len(rec.Segments); i++ {
		j, size := i, int64(0)
		for j < len(rec.Segments) {
			s := rec.Segments[j]
			if s.End-s.Start >= small || size+(s.End-s.Start) > t.cfg.SealSize {
				break
			}
			size += s.End - s.Start
			j++
		}
		if j-i >= compactMin {
			return i, j, true
		}
	}
	return 0, 0, false
}

// compact merges one run of small segments of rec, if it has one.
func (t *Tier) compact(ctx context.Context, rec *fileRec) error {
	i, j, ok := t.compactRun(rec)
	if !ok || rec.Mismatch != "" {
		return nil
	}
	run := rec.Segments[i:j]
	start, end := run[0].Start, run[len(run)-1].End
	f, err := t.Open(rec.Agent, rec.Path)
	if err != nil {
		return err
	}
	data := make([]byte, end-start)
	_, err = f.ReadAt(data, start)
	f.Close()
	if err != nil {
		return fmt.Errorf("compact %s/%s: %w", rec.Agent, rec.Path, err)
	}
	// The bytes must be the segments' own, whichever copy they came from.
	for _, s := range run {
		sum := sha256.Sum256(data[s.Start-start : s.End-start])
		if hex.EncodeToString(sum[:]) != s.SHA256 {
			return fmt.Errorf("compact %s/%s: bytes %d-%d do not hash to their segment's SHA-256", rec.Agent, rec.Path, s.Start, s.End)
		}
	}
	sum := sha256.Sum256(data)
	comp, frames := compressSegment(data)
	r := make([]byte, 4)
	_, _ = rand.Read(r)
	key := t.b.segmentKey(rec.Agent, rec.Path, start, end, t.id+"-"+hex.EncodeToString(r))
	last := run[len(run)-1]
	meta := map[string]string{
		metaHistorian: t.id,
		metaEpoch:     strconv.FormatInt(t.epoch, 10),
		metaSHA256:    hex.EncodeToString(sum[:]),
		metaLength:    strconv.FormatInt(end-start, 10),
		metaMtime:     strconv.FormatInt(last.FileMtime, 10),
	}
	etag, err := t.b.putNew(ctx, key, comp, meta)
	if err != nil {
		if errors.Is(err, errExists) {
			err = fmt.Errorf("compacted segment %s exists already", key)
		}
		return err
	}
	merged := segment{Key: key, Start: start, End: end, SHA256: meta[metaSHA256], ETag: etag, Comp: int64(len(comp)),
		SealedNs: last.SealedNs, Historian: t.id, Epoch: t.epoch, Frames: frames, FileMtime: last.FileMtime}
	t.evictMu.Lock()
	cur, _, err := t.cat.get(rec.Agent, rec.Path)
	if err == nil && (len(cur.Segments) < j || cur.Segments[i].Key != run[0].Key || cur.Segments[j-1].Key != last.Key) {
		err = errors.New("segments changed meanwhile")
	}
	if err == nil {
		segs := append(append(append([]segment(nil), cur.Segments[:i]...), merged), cur.Segments[j:]...)
		cur.Segments = segs
		b := t.cat.db.NewBatch()
		for _, s := range run {
			_ = b.Set(retiredKey(s.Key), []byte(strconv.FormatInt(t.cfg.Now().UnixNano(), 10)), nil)
		}
		if err = b.Commit(pebble.Sync); err == nil {
			err = t.cat.put(&cur)
		}
	}
	t.evictMu.Unlock()
	if err != nil {
		_ = t.b.remove(ctx, key)
		return fmt.Errorf("compact %s/%s: %w", rec.Agent, rec.Path, err)
	}
	*rec = cur
	t.m.compacted.Add(float64(len(run)))
	t.log.Debug("tier: segments compacted", "agent", rec.Agent, "path", rec.Path, "segments", len(run), "into", key)
	return nil
}

// deleteRetired deletes the replaced segments whose time has come.
func (t *Tier) deleteRetired(ctx context.Context) error {
	it, err := t.cat.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'r'}, UpperBound: []byte{'s'}})
	if err != nil {
		return err
	}
	var keys []string
	now := t.cfg.Now()
	for it.First(); it.Valid(); it.Next() {
		ns, _ := strconv.ParseInt(string(it.Value()), 10, 64)
		if now.Sub(time.Unix(0, ns)) >= retireAfter {
			keys = append(keys, string(it.Key()[1:]))
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.b.remove(ctx, k); err != nil {
			return err
		}
		_ = t.cat.db.Delete(retiredKey(k), nil)
	}
	return nil
}
