// Package tier keeps the archive's sealed bytes on S3-compatible object
// storage: it cuts archived files into immutable, compressed, checksummed
// segment objects (sealing), frees the local copies of sealed bytes
// (eviction by hole punching, so the hot file keeps its size, inode and
// appends), reads evicted bytes back through a bounded local cache,
// merges small segments (compaction), rebuilds an empty historian from
// the bucket (recovery), and deletes old segments on request (retention).
//
// # Where the tier's records live
//
// The tier keeps its own catalog (<state>/tier/catalog, a Pebble
// database) of every file's segments and evicted offset, instead of new
// fields in the store's index entries: the index is rebuilt from the disk
// by design, the catalog from the bucket, and keeping them apart leaves
// the index encoding (which other work changes at the same time)
// untouched. The index reads evicted files through the tier (store's
// IndexConfig.Content), and a failed segment check marks the file
// mismatch there (store.Index.MarkMismatch).
//
// # Objects
//
//	PREFIX/seg/AGENT/PATH@START-END.HISTORIAN.zst   a segment: bytes [START,END) of the file, seekable zstd
//	PREFIX/meta/AGENT/.syncer/...                    the agent's metadata (description, commit records)
//	PREFIX/catalog/HISTORIAN/TIME.json.zst           a snapshot of the catalog
//
// START and END are 16 hex digits; PATH is escaped to safe ASCII. Every
// segment is written with If-None-Match: * and carries, as metadata, the
// historian that wrote it, its ownership epoch, and the SHA-256 and length
// of its uncompressed bytes: names never collide between historians, and
// a retried write finds its own object in place.
package tier
