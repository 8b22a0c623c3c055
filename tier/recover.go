package tier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Restore rebuilds an empty historian from the bucket: when the catalog
// is empty and the bucket holds segments under the prefix, it rebuilds the
// catalog (from the newest catalog snapshots, with the segment listing as
// the ground truth: segments no snapshot names are read from their
// metadata), recreates every sealed file whose local copy is missing as a
// sparse file of its sealed length, all of it evicted, and puts back the
// agents' metadata. The index built afterwards hashes those files through
// the tier, so every segment is read and checked against the agents'
// records. It returns the number of files restored.
func (t *Tier) Restore(ctx context.Context) (int, error) {
	if !t.cat.empty() {
		return 0, nil
	}
	start := time.Now()
	known, err := t.loadSnapshots(ctx)
	if err != nil {
		return 0, err
	}
	files := map[string][]segment{}
	err = t.b.list(ctx, "seg/", func(key string, size int64) error {
		agent, rel, s, e, hid, err := t.b.parseSegmentKey(key)
		if err != nil {
			t.log.Warn("tier: not a segment; ignored", "key", key)
			return nil
		}
		k, ok := known[key]
		seg := k.seg
		if ok && k.path != "" {
			// The snapshot knows where the segment belongs now (a file
			// renamed to a version after it was sealed).
			agent, rel = splitPath(k.path)
		}
		if !ok || seg.Comp != size {
			etag, _, meta, err := t.b.stat(ctx, key)
			if err != nil {
				return err
			}
			ep, _ := strconv.ParseInt(meta[metaEpoch], 10, 64)
			mt, _ := strconv.ParseInt(meta[metaMtime], 10, 64)
			seg = segment{Key: key, Start: s, End: e, SHA256: meta[metaSHA256], ETag: etag, Comp: size,
				Historian: hid, Epoch: ep, FileMtime: mt, SealedNs: time.Now().UnixNano()}
		}
		files[agent+"/"+rel] = append(files[agent+"/"+rel], seg)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("restore from the bucket: %w", err)
	}
	if len(files) == 0 {
		return 0, nil
	}
	n := 0
	var restored []fileRec
	for p, segs := range files {
		agent, rel := splitPath(p)
		chain := chainFrom0(segs)
		if len(chain) == 0 {
			continue
		}
		rec := fileRec{Agent: agent, Path: rel, Segments: chain}
		end := rec.sealed()
		fi, err := t.root.Stat(agent + "/" + rel)
		switch {
		case err == nil && fi.Size() >= end:
			// The local copy is there: nothing evicted.
		case errors.Is(err, fs.ErrNotExist):
			if err := t.placeholder(agent, rel, end, chain[len(chain)-1].FileMtime); err != nil {
				return n, err
			}
			rec.Evicted = end
			restored = append(restored, rec)
		default:
			t.log.Warn("tier: a local file is shorter than its segments; left as it is", "agent", agent, "path", rel)
			continue
		}
		if err := t.cat.put(&rec); err != nil {
			return n, err
		}
		n++
	}
	if err := t.restoreMeta(ctx); err != nil {
		return n, err
	}
	t.log.Info("tier: historian restored from the bucket", "files", n, "took", time.Since(start).Round(time.Millisecond))
	t.warm(restored)
	return n, nil
}

// warmParallel is how many GETs warm has in flight.
const warmParallel = 8

// warm fetches the frames of restored files into the cache in the
// background, warmParallel GETs at once, in the order the index will hash
// the files (by path), up to half the cache: the index, which hashes the
// files one after the other to verify them, then mostly finds their
// frames fetched, instead of waiting for one GET per small file. Frames
// are checked when fetched, and again by the index's reads (the whole
// segment's SHA-256, the agents' records). Segments whose seek table is
// not known yet (not in a catalog snapshot) are left to the reader.
func (t *Tier) warm(recs []fileRec) {
	if len(recs) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.warmStop = cancel
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Agent != recs[j].Agent {
			return recs[i].Agent < recs[j].Agent
		}
		return recs[i].Path < recs[j].Path
	})
	t.fetchWG.Add(1)
	go func() {
		defer t.fetchWG.Done()
		defer cancel()
		sem := make(chan struct{}, warmParallel)
		budget := t.cfg.CacheSize / 2
		for _, r := range recs {
			for _, s := range r.Segments {
				if s.Frames == nil {
					continue
				}
				if budget -= s.End - s.Start; budget < 0 {
					return
				}
				for a := 0; a < len(s.Frames); a += readAheadChunk {
					select {
					case sem <- struct{}{}:
					case <-ctx.Done():
						return
					}
					b := min(a+readAheadChunk, len(s.Frames))
					t.fetchMu.Lock()
					if t.fetching[frameKey(&s, a)] != nil || t.cache.has(frameKey(&s, a)) {
						<-sem
					} else {
						t.fetchChunk(&s, a, b, func() { <-sem })
					}
					t.fetchMu.Unlock()
				}
			}
		}
	}()
}

// chainFrom0 picks the segments that cover a file from byte 0 without
// gap: at each offset the one that reaches furthest.
func chainFrom0(segs []segment) []segment {
	sort.Slice(segs, func(i, j int) bool {
		if segs[i].Start != segs[j].Start {
			return segs[i].Start < segs[j].Start
		}
		return segs[i].End > segs[j].End
	})
	var out []segment
	var at int64
	for _, s := range segs {
		if s.Start == at && s.End > at {
			out = append(out, s)
			at = s.End
		}
	}
	return out
}

// placeholder creates rel as a sparse file of size bytes (all holes).
func (t *Tier) placeholder(agent, rel string, size, mtimeNs int64) error {
	p := agent + "/" + rel
	if err := t.mkdirs(path.Dir(p)); err != nil {
		return err
	}
	f, err := t.root.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, t.cfg.FileMode)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if mtimeNs > 0 {
		_ = t.root.Chtimes(p, time.Time{}, time.Unix(0, mtimeNs))
	}
	return nil
}

func (t *Tier) mkdirs(dir string) error {
	var parts []string
	for d := dir; d != "." && d != "/" && d != ""; d = path.Dir(d) {
		parts = append(parts, d)
	}
	for i := len(parts) - 1; i >= 0; i-- {
		if err := t.root.Mkdir(parts[i], t.cfg.DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// restoreMeta puts back the agents' metadata files that are missing.
func (t *Tier) restoreMeta(ctx context.Context) error {
	pre := t.b.prefix + "meta/"
	return t.b.list(ctx, "meta/", func(key string, _ int64) error {
		agent, erel, ok := strings.Cut(strings.TrimPrefix(key, pre), "/")
		rel, err := unescapeKey(erel)
		if !ok || err != nil {
			return nil
		}
		p := agent + "/" + rel
		if _, err := t.root.Stat(p); err == nil {
			return nil
		}
		body, err := t.b.getRange(ctx, key, "", 0, -1)
		if err != nil {
			return err
		}
		if err := t.mkdirs(path.Dir(p)); err != nil {
			return err
		}
		f, err := t.root.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// loadSnapshots reads the newest catalog snapshot of every historian in
// the bucket: segment key -> segment.
type knownSegment struct {
	seg  segment
	path string // agent/rel of the file it belongs to
}

func (t *Tier) loadSnapshots(ctx context.Context) (map[string]knownSegment, error) {
	newest := map[string]string{}
	err := t.b.list(ctx, "catalog/", func(key string, _ int64) error {
		hid := path.Base(path.Dir(key))
		if key > newest[hid] {
			newest[hid] = key
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restore from the bucket: %w", err)
	}
	out := map[string]knownSegment{}
	_, d := codecs()
	for _, key := range newest {
		body, err := t.b.getRange(ctx, key, "", 0, -1)
		if err != nil {
			return nil, err
		}
		raw, err := d.DecodeAll(body, nil)
		if err != nil {
			t.log.Warn("tier: unreadable catalog snapshot; the listing alone is used", "key", key, "err", err)
			continue
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		for dec.More() {
			var r fileRec
			if err := dec.Decode(&r); err != nil {
				break
			}
			for _, s := range r.Segments {
				out[s.Key] = knownSegment{s, r.Agent + "/" + r.Path}
			}
		}
	}
	return out, nil
}
