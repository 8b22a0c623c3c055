package historian

import (
	"context"
	"io/fs"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/tier"
)

// startTier opens the storage tier (Config.Tier) before the index: on an
// empty historian it first restores, from the bucket, every sealed file
// and the agents' metadata, so that the index built next finds them and
// verifies them (reading them through the tier). A bucket that cannot be
// reached is logged, not fatal: ingest does not wait for it.
func (h *Historian) startTier(ctx context.Context) (stop func(context.Context) error, err error) {
	c := *h.cfg.Tier
	c.State, c.Root = h.cfg.State, h.cfg.Archive.Dir()
	c.FileMode, c.DirMode = fs.FileMode(h.cfg.ArchiveFileMode), fs.FileMode(h.cfg.ArchiveDirMode)
	if c.FileMode == 0 {
		c.FileMode = 0o640
	}
	if c.DirMode == 0 {
		c.DirMode = 0o750
	}
	c.Logger = h.log.With("component", "tier")
	t, err := tier.New(c)
	if err != nil {
		return nil, &ConfigError{Field: "Tier", Err: err}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	n, err := t.Restore(rctx)
	cancel()
	if err != nil {
		h.log.Warn("storage tier: the bucket could not be read to restore this historian; starting without it", "tier", c.URL, "restored_files", n, "err", err)
	}
	h.tier = t
	h.log.Info("storage tier", "tier", c.URL, "endpoint", c.Endpoint, "historian_id", t.ID(),
		"seal_size", c.SealSize, "seal_idle", c.SealIdle, "local_keep", c.LocalKeep, "retain", c.Retain)
	return func(context.Context) error { return t.Close() }, nil
}

// startSealing runs the tier's loop over the index; its stop ends the
// loop (shipping a last catalog snapshot) before the index closes.
func (h *Historian) startSealing(context.Context) (stop func(context.Context) error, err error) {
	t := h.tier
	t.Attach(h.index.ix)
	h.index.uploads.superseded = t.Superseded
	if err := h.index.metrics.Register(t.Collectors()...); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = t.Run(ctx) }()
	return func(context.Context) error { cancel(); <-done; return nil }, nil
}

// content is where the views and the index read archived bytes: the tier
// when there is one, the archive directory otherwise (nil).
func (h *Historian) content() archive.Opener {
	if h.tier == nil {
		return nil
	}
	return h.tier
}
