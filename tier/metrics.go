package tier

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	backlog, pending, diskUsed  atomic.Int64
	sealedBytes, sealedSegments prometheus.Counter
	bucketBytes, evictedBytes   prometheus.Counter
	sealFailures, corrupt       prometheus.Counter
	frameFetches                prometheus.Counter
	retainedFiles, retainedSegs prometheus.Counter
	rounds, compacted           prometheus.Counter
	evictDeferred               prometheus.Counter
	collectors                  []prometheus.Collector
}

func (t *Tier) initMetrics() {
	m := &t.m
	c := func(name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.collectors = append(m.collectors, x)
		return x
	}
	g := func(name, help string, f func() float64) {
		m.collectors = append(m.collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	m.sealedBytes = c("syncer_tier_sealed_bytes_total", "Uncompressed bytes sealed into segments by this process.")
	m.sealedSegments = c("syncer_tier_sealed_segments_total", "Segments written (or found already written) by this process.")
	m.bucketBytes = c("syncer_tier_segment_bytes_total", "Compressed bytes of the segments sealed by this process.")
	m.evictedBytes = c("syncer_tier_evicted_bytes_total", "Local bytes freed (hole punched) after their segment was confirmed.")
	m.sealFailures = c("syncer_tier_seal_failures_total", "Segment writes that failed (the object store down, slow or full); retried with backoff.")
	m.corrupt = c("syncer_tier_corrupt_segments_total", "Segment reads that failed their checksum; the file is marked mismatch.")
	m.frameFetches = c("syncer_tier_frame_fetches_total", "Frames read from the object store (cache misses).")
	m.retainedFiles = c("syncer_tier_retention_deleted_files_total", "Files deleted by retention (--retain).")
	m.retainedSegs = c("syncer_tier_retention_deleted_segments_total", "Segments deleted by retention (--retain).")
	m.compacted = c("syncer_tier_compacted_segments_total", "Small segments merged into larger ones (and retired).")
	m.evictDeferred = c("syncer_tier_evictions_deferred_total", "Evictions put off because the file was open as a local file (a FUSE passthrough reader).")
	m.rounds = c("syncer_tier_rounds_total", "Passes of the seal loop finished (successful or not).")
	g("syncer_tier_unsealed_bytes", "Archived bytes not yet in a segment (the hot tier's backlog).", func() float64 { return float64(m.backlog.Load()) })
	g("syncer_tier_segments_pending", "Segments due to be cut and written.", func() float64 { return float64(m.pending.Load()) })
	g("syncer_tier_disk_used_ratio", "Fraction of the archive's file system in use.", func() float64 { return float64(m.diskUsed.Load()) / 1e6 })
	g("syncer_tier_cache_bytes", "Bytes in the read cache of decompressed frames.", func() float64 { return float64(t.cache.bytes()) })
	g("syncer_tier_s3_requests", "Requests made to the object store by this process.", func() float64 { return float64(t.b.reqs.Load()) })
}

// Collectors are the tier's Prometheus metrics, for the historian's
// /metrics.
func (t *Tier) Collectors() []prometheus.Collector { return t.m.collectors }
