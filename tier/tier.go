package tier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/store"
)

// Tier is the durable tier of one historian. New opens it; Restore fills
// an empty historian from the bucket; Attach gives it the index; Run seals,
// evicts, ships and retains until its context ends; Open reads archived
// files whatever part of them lives in the bucket. Close it after Run.
type Tier struct {
	cfg       Config
	log       *slog.Logger
	b         *bucket
	cat       *catalog
	cache     *frameCache
	root      *os.Root
	id        string // this historian's id, random, kept in <state>/tier/identity.json
	epoch     int64  // its ownership epoch: one more at every start
	ix        atomic.Pointer[store.Index]
	punch     bool // the archive's file system punches holes
	blockSize int64

	// evictMu orders eviction (catalog update, then hole punch) against
	// readers of the local file: a reader holds it shared from looking up
	// the evicted offset to reading the disk bytes above it.
	evictMu sync.RWMutex
	// pins counts the open local Files of each file (agent/path), taken
	// under evictMu shared: evict, which holds evictMu exclusively, leaves
	// a pinned file's bytes on the disk until the next pass.
	pinMu sync.Mutex
	pins  map[string]int

	// fetching holds the frames a read-ahead is fetching, each with a
	// channel closed when it is done.
	fetchMu  sync.Mutex
	fetching map[string]chan struct{}
	fetchWG  sync.WaitGroup
	// warmStop ends the warming of the cache after a restore (warm).
	warmStop context.CancelFunc

	m metrics
	// backoff is the wait after a round that failed to reach the bucket.
	backoff           time.Duration
	lastHighWaterWarn time.Time
	lastSnapshot      time.Time
	snapshotDue       atomic.Bool
}

var _ archive.Opener = (*Tier)(nil)

type identity struct {
	Historian string `json:"historian"`
	Epoch     int64  `json:"epoch"`
}

// New checks cfg, opens the catalog under cfg.State/tier and the bucket
// client, and bumps the historian's ownership epoch. It does not talk to
// the bucket: a store that is down when the historian starts must not keep
// ingest from starting.
func New(cfg Config) (*Tier, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.State, "tier")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	idPath := filepath.Join(dir, "identity.json")
	var id identity
	if b, err := os.ReadFile(idPath); err == nil {
		if err := json.Unmarshal(b, &id); err != nil || id.Historian == "" {
			return nil, fmt.Errorf("tier identity %s: unreadable (%v); it names this historian's segments, restore it rather than delete it", idPath, err)
		}
	} else if errors.Is(err, os.ErrNotExist) {
		r := make([]byte, 8)
		_, _ = rand.Read(r)
		id.Historian = hex.EncodeToString(r)
	} else {
		return nil, err
	}
	id.Epoch++
	b, _ := json.Marshal(id)
	if err := writeFileSync(idPath, b); err != nil {
		return nil, fmt.Errorf("tier identity %s: %w", idPath, err)
	}
	bk, err := newBucket(&cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, err
	}
	cat, err := openCatalog(filepath.Join(dir, "catalog"))
	if err != nil {
		root.Close()
		return nil, err
	}
	cache, err := newFrameCache(filepath.Join(dir, "cache"), cfg.CacheSize)
	if err != nil {
		cat.close()
		root.Close()
		return nil, err
	}
	t := &Tier{cfg: cfg, log: cfg.Logger, b: bk, cat: cat, cache: cache, root: root, id: id.Historian, epoch: id.Epoch,
		fetching: map[string]chan struct{}{}}
	t.punch, t.blockSize = canPunch(cfg.Root)
	if !t.punch {
		t.log.Warn("the archive's file system cannot punch holes: sealed bytes stay on the local disk too (no eviction)", "root", cfg.Root)
	}
	t.initMetrics()
	return t, nil
}

// ID is this historian's id in segment names and metadata.
func (t *Tier) ID() string { return t.id }

// Attach gives the tier the index it walks to find what to seal and marks
// files mismatch in.
func (t *Tier) Attach(ix *store.Index) { t.ix.Store(ix) }

// Run seals, evicts, ships metadata and catalog snapshots and applies
// retention every Config.Every until ctx ends, then ships a last catalog
// snapshot. Failures to reach the bucket are logged and retried with
// backoff; they never stop Run.
func (t *Tier) Run(ctx context.Context) error {
	// Sealing (compression, hashing) runs on a thread of its own at a
	// lower priority, so that it never competes with ingest for the CPU;
	// the thread gets its priority back before it is unlocked, so no
	// other goroutine ever runs at the lower one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore, err := lowerThreadPriority()
	defer restore()
	if err != nil {
		t.log.Debug("tier: sealing runs at the process's priority", "err", err)
	}
	for {
		wait := t.cfg.Every
		if err := t.Round(ctx); err != nil && ctx.Err() == nil {
			t.backoff = min(max(2*t.backoff, t.cfg.Every), 5*time.Minute)
			wait = t.backoff
			t.log.Warn("tier: round failed; retrying", "err", err, "retry_in", wait)
		} else {
			t.backoff = 0
		}
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := t.snapshot(sctx)
			cancel()
			if err != nil {
				t.log.Warn("tier: last catalog snapshot not shipped", "err", err)
			}
			return nil
		case <-time.After(wait):
		}
	}
}

// Round runs one pass: seal what is due, ship metadata, evict, retain,
// and ship a catalog snapshot when one is due. Tests call it to make
// things happen now.
func (t *Tier) Round(ctx context.Context) error {
	ix := t.ix.Load()
	if ix == nil {
		return errors.New("tier: no index attached")
	}
	highWater := t.checkDisk()
	var firstErr error
	if err := t.sealAll(ctx, ix, highWater); err != nil {
		firstErr = err
	}
	if err := t.shipMeta(ctx); err != nil && firstErr == nil {
		firstErr = err
	}
	if err := t.retain(ctx, ix); err != nil && firstErr == nil {
		firstErr = err
	}
	if err := t.deleteRetired(ctx); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr == nil && (t.snapshotDue.Swap(false) || t.cfg.Now().Sub(t.lastSnapshot) >= t.cfg.SnapshotEvery) {
		firstErr = t.snapshot(ctx)
	}
	t.m.rounds.Inc()
	return firstErr
}

// Close closes the catalog and the cache. Run must have returned.
func (t *Tier) Close() error {
	if t.warmStop != nil {
		t.warmStop()
	}
	t.fetchWG.Wait()
	t.cache.wg.Wait()
	err := t.cat.close()
	t.root.Close()
	return err
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// splitPath splits "agent/rel".
func splitPath(p string) (agent, rel string) {
	agent, rel, _ = strings.Cut(p, "/")
	return agent, rel
}
