package tier

import (
	"context"
	"time"

	"github.com/syncer-dev/syncer/store"
)

// retain deletes the files whose retention ran out: fully sealed files
// whose last segment was sealed longer ago than their agent's retention.
// Their segments go first, then the local copy, then the index entry.
func (t *Tier) retain(ctx context.Context, ix *store.Index) error {
	if t.cfg.Retain == 0 && len(t.cfg.RetainAgent) == 0 {
		return nil
	}
	now := t.cfg.Now()
	var due []fileRec
	if err := t.cat.each(func(r *fileRec) error {
		d := t.cfg.retainFor(r.Agent)
		if d <= 0 || len(r.Segments) == 0 {
			return nil
		}
		last := r.Segments[len(r.Segments)-1]
		if now.Sub(time.Unix(0, last.SealedNs)) < d {
			return nil
		}
		if fi, err := t.root.Stat(r.Agent + "/" + r.Path); err == nil && fi.Size() > r.sealed() {
			return nil // bytes still arriving
		}
		due = append(due, *r)
		return nil
	}); err != nil {
		return err
	}
	for _, r := range due {
		for _, s := range r.Segments {
			if err := t.b.remove(ctx, s.Key); err != nil {
				return err
			}
			t.m.retainedSegs.Inc()
		}
		if err := t.cat.del(r.Agent, r.Path); err != nil {
			return err
		}
		_ = t.root.Remove(r.Agent + "/" + r.Path)
		ix.Notify(store.IngestEvent{Kind: store.IngestTouched, Path: "/" + r.Agent + "/" + r.Path, Time: now})
		t.m.retainedFiles.Inc()
		t.log.Info("tier: retention deleted a file", "agent", r.Agent, "path", r.Path, "segments", len(r.Segments),
			"bytes", r.sealed(), "retain", t.cfg.retainFor(r.Agent).String())
	}
	return nil
}
