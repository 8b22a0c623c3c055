package tier

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/store"
)

// sealAll seals every file's due bytes and evicts what may be evicted.
// A failure to reach the bucket ends the pass (the next one retries);
// a file that cannot be read is logged and skipped.
func (t *Tier) sealAll(ctx context.Context, ix *store.Index, highWater bool) error {
	type fileAt struct {
		agent, rel    string
		size, mtimeNs int64
	}
	var files []fileAt
	if err := ix.Walk(ctx, "", func(e store.IndexEntry) error {
		if !e.Dir {
			files = append(files, fileAt{e.Agent, e.Path, min(e.Size, e.Hashed), e.MtimeNs})
		}
		return nil
	}); err != nil {
		return err
	}
	now := t.cfg.Now()
	// First the backlog, so that the gauges say what this pass has to do
	// while it does it.
	type work struct {
		rec  fileRec
		cuts []int64
		at   fileAt
	}
	var todo []work
	var backlog, pending int64
	for _, f := range files {
		rec, _, err := t.cat.get(f.agent, f.rel)
		if err != nil {
			return err
		}
		if rec.Ino != 0 {
			if ino, ok := t.localIno(f.agent, f.rel); ok && ino != rec.Ino {
				if err := t.reattach(&rec, ino); err != nil {
					t.log.Warn("tier: a sealed file was replaced and its record cannot be moved", "agent", f.agent, "path", f.rel, "err", err)
					continue
				}
			}
		}
		sealed := rec.sealed()
		if f.size < sealed || rec.Mismatch != "" {
			continue // rewritten shorter behind the archive's back, or failed: left as it is
		}
		backlog += f.size - sealed
		final := strings.Contains(path.Base(f.rel), archive.VersionMarker) ||
			now.Sub(time.Unix(0, f.mtimeNs)) >= t.cfg.SealIdle
		cuts := t.cuts(sealed, f.size, final)
		pending += int64(len(cuts))
		if len(cuts) > 0 || rec.Evicted < sealed || len(rec.Segments) > 1 {
			todo = append(todo, work{rec, cuts, f})
		}
	}
	t.m.backlog.Store(backlog)
	t.m.pending.Store(pending)
	var firstErr error
	for _, w := range todo {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rec, f := w.rec, w.at
		for _, end := range w.cuts {
			if err := t.sealOne(ctx, &rec, end, f.mtimeNs); err != nil {
				if errors.Is(err, errLocal) {
					t.log.Warn("tier: cannot seal a file", "agent", f.agent, "path", f.rel, "err", err)
					break
				}
				t.m.sealFailures.Inc()
				firstErr = err
				break
			}
			t.m.backlog.Add(-(rec.sealed() - rec.Segments[len(rec.Segments)-1].Start))
			t.m.pending.Add(-1)
		}
		if firstErr != nil {
			break
		}
		if err := t.compact(ctx, &rec); err != nil {
			t.log.Warn("tier: compaction failed; retried at the next pass", "agent", f.agent, "path", f.rel, "err", err)
		}
		if err := t.evict(&rec, highWater); err != nil {
			t.log.Warn("tier: cannot evict sealed bytes", "agent", f.agent, "path", f.rel, "err", err)
		}
	}
	return firstErr
}

// cuts are the ends of the segments to cut now from sealed up to size:
// whole SealSize segments, and the rest too when the file is final (a
// superseded version) or idle.
func (t *Tier) cuts(sealed, size int64, final bool) []int64 {
	var out []int64
	for size-sealed >= t.cfg.SealSize {
		sealed += t.cfg.SealSize
		out = append(out, sealed)
	}
	if final && size > sealed {
		out = append(out, size)
	}
	return out
}

// errLocal is a seal that failed on the local side (the file cannot be
// read as indexed), not on the bucket's.
var errLocal = errors.New("local file")

// sealOne writes bytes [rec.sealed(), end) of the file as one segment
// and records it. The segment's bounds are recorded as an intent first
// (pendingKey): a historian killed mid-PUT seals the same bounds on
// restart, finds its own object with the same SHA-256 if the PUT went
// through, and takes it.
func (t *Tier) sealOne(ctx context.Context, rec *fileRec, end, mtimeNs int64) error {
	start := rec.sealed()
	var nonce string
	if p, n, ok := t.intent(rec); ok && p > start && p <= end {
		end, nonce = p, n
	}
	if nonce == "" {
		// The nonce keeps apart segments of the same range of different
		// contents under one name (a file superseded and uploaded anew).
		r := make([]byte, 4)
		_, _ = rand.Read(r)
		nonce = hex.EncodeToString(r)
	}
	if err := t.setIntent(rec, end, nonce); err != nil {
		return err
	}
	data, err := t.readLocal(rec, start, end)
	if err != nil {
		return fmt.Errorf("%w: %v", errLocal, err)
	}
	sum := sha256.Sum256(data)
	comp, frames := compressSegment(data)
	key := t.b.segmentKey(rec.Agent, rec.Path, start, end, t.id+"-"+nonce)
	meta := map[string]string{
		metaHistorian: t.id,
		metaEpoch:     strconv.FormatInt(t.epoch, 10),
		metaSHA256:    hex.EncodeToString(sum[:]),
		metaLength:    strconv.FormatInt(end-start, 10),
		metaMtime:     strconv.FormatInt(mtimeNs, 10),
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(len(comp)>>20)*time.Second)
	defer cancel()
	etag, err := t.b.putNew(pctx, key, comp, meta)
	if errors.Is(err, errExists) {
		// A retried write (the answer to the first was lost, or the
		// historian died before recording it): ours if it says so and
		// holds the same bytes.
		var m map[string]string
		var size int64
		etag, size, m, err = t.b.stat(pctx, key)
		if err == nil && (m[metaHistorian] != t.id || m[metaSHA256] != meta[metaSHA256] || size != int64(len(comp))) {
			err = fmt.Errorf("segment %s exists and is not this historian's copy of these bytes (historian %s, sha256 %s)", key, m[metaHistorian], m[metaSHA256])
		}
	}
	if err != nil {
		return err
	}
	seg := segment{Key: key, Start: start, End: end, SHA256: meta[metaSHA256], ETag: etag, Comp: int64(len(comp)),
		SealedNs: t.cfg.Now().UnixNano(), Historian: t.id, Epoch: t.epoch, Frames: frames, FileMtime: mtimeNs}
	rec.Segments = append(rec.Segments, seg)
	if err := t.cat.put(rec); err != nil {
		return err
	}
	_ = t.cat.db.Delete(pendingKey(rec.Agent, rec.Path), nil)
	t.m.sealedBytes.Add(float64(end - start))
	t.m.sealedSegments.Inc()
	t.m.bucketBytes.Add(float64(len(comp)))
	t.log.Debug("tier: segment sealed", "key", key, "bytes", end-start, "compressed", len(comp))
	return nil
}

func pendingKey(agent, rel string) []byte {
	return append(append([]byte{'p'}, agent...), append([]byte{0}, rel...)...)
}

// intent is the end and nonce of the segment being sealed for rec.
func (t *Tier) intent(rec *fileRec) (int64, string, bool) {
	v, closer, err := t.cat.db.Get(pendingKey(rec.Agent, rec.Path))
	if err != nil {
		return 0, "", false
	}
	defer closer.Close()
	e, nonce, _ := strings.Cut(string(v), " ")
	n, err := strconv.ParseInt(e, 10, 64)
	return n, nonce, err == nil
}

func (t *Tier) setIntent(rec *fileRec, end int64, nonce string) error {
	return t.cat.db.Set(pendingKey(rec.Agent, rec.Path), []byte(strconv.FormatInt(end, 10)+" "+nonce), pebble.Sync)
}

// readLocal reads bytes [start,end) of the local file, which must not be
// evicted.
func (t *Tier) readLocal(rec *fileRec, start, end int64) ([]byte, error) {
	if start < rec.Evicted {
		return nil, fmt.Errorf("bytes from %d are evicted up to %d", start, rec.Evicted)
	}
	f, err := t.root.Open(rec.Agent + "/" + rec.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ino, err := inode(f)
	if err != nil {
		return nil, err
	}
	if rec.Ino != 0 && rec.Ino != ino {
		return nil, fmt.Errorf("another file (inode %d) is in the place of the one sealed (inode %d)", ino, rec.Ino)
	}
	rec.Ino = ino
	data := make([]byte, end-start)
	if _, err := f.ReadAt(data, start); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("shorter than %d bytes", end)
		}
		return nil, err
	}
	return data, nil
}

// evict frees the local copy of the file's sealed bytes whose segments
// were confirmed at least LocalKeep ago (all of them over the high-water
// mark), in whole file-system blocks.
func (t *Tier) evict(rec *fileRec, highWater bool) error {
	if !t.punch || (t.cfg.LocalKeep < 0 && !highWater) {
		return nil
	}
	now := t.cfg.Now()
	upto := rec.Evicted
	for _, s := range rec.Segments {
		if !highWater && now.Sub(time.Unix(0, s.SealedNs)) < t.cfg.LocalKeep {
			break
		}
		upto = s.End
	}
	upto -= upto % t.blockSize
	if upto <= rec.Evicted {
		return nil
	}
	from := rec.Evicted
	t.evictMu.Lock()
	defer t.evictMu.Unlock()
	if t.pinned(rec.Agent + "/" + rec.Path) {
		// Open as a local file (a FUSE passthrough reads the disk
		// directly): the next pass evicts it once it is closed.
		t.m.evictDeferred.Inc()
		return nil
	}
	// The catalog first: a crash between the two leaves bytes on disk that
	// readers fetch from the bucket, never holes read as data.
	rec.Evicted = upto
	if err := t.cat.put(rec); err != nil {
		rec.Evicted = from
		return err
	}
	if err := punchHole(t.root, rec.Agent+"/"+rec.Path, from, upto-from); err != nil {
		return err
	}
	t.m.evictedBytes.Add(float64(upto - from))
	return nil
}

// shipMeta copies the agents' metadata (.syncer/agent.json and commit
// records) that changed to the bucket: with them, recovery rebuilds the
// index's verification as well as the files.
func (t *Tier) shipMeta(ctx context.Context) error {
	agents, err := fs.ReadDir(t.root.FS(), ".")
	if err != nil {
		return err
	}
	for _, a := range agents {
		if !a.IsDir() || !archive.ValidAgentID(a.Name()) {
			continue
		}
		var files []string
		_ = fs.WalkDir(t.root.FS(), a.Name()+"/"+archive.MetaDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".json") {
				files = append(files, p)
			}
			return nil
		})
		sort.Strings(files)
		for _, p := range files {
			fi, err := t.root.Stat(p)
			if err != nil {
				continue
			}
			agent, rel := splitPath(p)
			stamp := fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano())
			if t.cat.stamp(agent, rel) == stamp {
				continue
			}
			b, err := fs.ReadFile(t.root.FS(), p)
			if err != nil {
				continue
			}
			if err := t.b.put(ctx, t.b.metaKey(agent, rel), b); err != nil {
				return err
			}
			_ = t.cat.setStamp(agent, rel, stamp)
		}
	}
	return nil
}

// snapshot ships the catalog to PREFIX/catalog/HISTORIAN/TIME.json.zst and
// keeps the last three of this historian's.
func (t *Tier) snapshot(ctx context.Context) error {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	if err := t.cat.each(func(r *fileRec) error { return enc.Encode(r) }); err != nil {
		return err
	}
	e, _ := codecs()
	body := e.EncodeAll([]byte(sb.String()), nil)
	dir := t.b.prefix + "catalog/" + t.id + "/"
	key := fmt.Sprintf("%s%020d.json.zst", dir, t.cfg.Now().UnixNano())
	if err := t.b.put(ctx, key, body); err != nil {
		return err
	}
	t.lastSnapshot = t.cfg.Now()
	var keys []string
	_ = t.b.list(ctx, "catalog/"+t.id+"/", func(k string, _ int64) error { keys = append(keys, k); return nil })
	sort.Strings(keys)
	for i := 0; i < len(keys)-3; i++ {
		_ = t.b.remove(ctx, keys[i])
	}
	return nil
}

// checkDisk warns (every ten minutes at most) while the archive's file
// system is fuller than the high-water mark, and says whether it is.
func (t *Tier) checkDisk() bool {
	used, ok := diskUsed(t.cfg.Root)
	if !ok {
		return false
	}
	t.m.diskUsed.Store(int64(used * 1e6))
	if used < t.cfg.HighWater {
		return false
	}
	if now := t.cfg.Now(); now.Sub(t.lastHighWaterWarn) >= 10*time.Minute {
		t.lastHighWaterWarn = now
		if t.punch {
			t.log.Warn("the archive's disk is over its high-water mark: evicting every confirmed sealed byte now", "used", fmt.Sprintf("%.1f%%", used*100), "high_water", fmt.Sprintf("%.0f%%", t.cfg.HighWater*100))
		} else {
			t.log.Warn("the archive's disk is over its high-water mark and its file system cannot evict sealed bytes", "used", fmt.Sprintf("%.1f%%", used*100))
		}
	}
	return true
}
