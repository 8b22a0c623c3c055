// Package store keeps syncer's persistent indexes in Pebble. Its first user
// is the agent's manifest: what each log file looked like when it was last
// archived and how many of its bytes the historian holds.
//
// store imports nothing else of syncer: it knows nothing of FTP, FUSE or HTTP.
//
// # Manifest layout
//
// One Pebble database per agent id, in <state>/manifest-<agent-id>/, so that
// two agents sharing a state directory never see each other's files.
//
// Keys are a prefix byte plus a body (see encoding.go): 'f' + path (raw bytes,
// '/' stored as NUL so that key order equals the order of a sorted directory
// walk), 'i' + dev + inode (finds a renamed file's old name), 'h' + head
// fingerprint + path (finds the archived file a copy begins with), 'm' + name
// (counters). Values of 'f' keys start with a version byte.
//
// # Durability
//
// Pebble writes every change to its write-ahead log before it returns. Put
// with sync=true also fsyncs it; the agent does this after the server has
// confirmed bytes, so that a machine crash cannot make the manifest forget
// what the server holds. A process killed with SIGKILL loses nothing that
// Put returned for. The agent never trusts the manifest beyond what it can
// check: it asks the server's SIZE before every transfer and repairs the
// entry when they disagree.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// FingerprintSize is the length of Entry.Head and Entry.Block (SHA-256).
const FingerprintSize = 32

// FingerprintSpan is how many bytes a fingerprint covers at most: the head
// fingerprint the first FingerprintSpan bytes of a file, the block
// fingerprint the FingerprintSpan bytes before the archived offset.
const FingerprintSpan = 4096

// Status is the archive state of one file.
type Status uint8

// Statuses of a manifest entry.
const (
	// StatusArchived: the server holds the first Archived bytes of the file
	// at Remote; HashState covers exactly those bytes.
	StatusArchived Status = iota + 1
	// StatusPartial: an upload was started and not confirmed. The server may
	// hold any prefix of the file; the agent resumes from its SIZE after
	// checking the bytes before it.
	StatusPartial
	// StatusGone: the file is no longer in the log directory (or no longer
	// matches the patterns). Its archived copy stays on the server.
	StatusGone
	// StatusRewritePending: the file was rewritten or truncated and a new
	// version is being stored from offset 0. OldSize is the server's size of
	// the previous version: a server size different from it means the new
	// version has begun and can be resumed; an equal size is ambiguous and
	// the agent stores the version again from 0 (an extra version, nothing lost).
	StatusRewritePending
	// StatusRotated: the file is a renamed (rotated) log whose bytes were
	// archived under another name, Remote. They are not sent again.
	StatusRotated
	// StatusCompressed: the file is the gzip-compressed form of a log whose
	// bytes were archived under Remote (logrotate's compress). Size, MtimeNs,
	// Dev and Ino are the compressed file's; Archived, HashState and the
	// fingerprints describe its decompressed bytes. Nothing is sent for it.
	StatusCompressed
)

func (s Status) String() string {
	switch s {
	case StatusArchived:
		return "archived"
	case StatusPartial:
		return "partial"
	case StatusGone:
		return "gone"
	case StatusRewritePending:
		return "rewrite-pending"
	case StatusRotated:
		return "rotated"
	case StatusCompressed:
		return "compressed"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Entry is what the manifest knows about one file.
type Entry struct {
	Status Status
	// Size, MtimeNs, Dev and Ino are the local file's stat when it was last
	// archived or checked: the quick check compares them. Dev and Ino are 0
	// where the platform has no inode numbers; the fingerprints decide then.
	Size    int64
	MtimeNs int64
	Dev     uint64
	Ino     uint64
	// Archived is how many bytes of the file the server has confirmed.
	Archived int64
	// HashState is the marshalled crypto/sha256 state after the first
	// Archived bytes, so an append hashes only the new bytes.
	HashState []byte
	// HeadLen bytes at the start of the file hash to Head (HeadLen =
	// HeadLenFor(Archived); entries written by older agents may hold
	// min(FingerprintSpan, Archived)).
	HeadLen int64
	Head    [FingerprintSize]byte
	// Block is the hash of the min(FingerprintSpan, Archived) bytes before
	// Archived: an append must leave them unchanged.
	Block [FingerprintSize]byte
	// OldSize is the server size of the superseded version while Status is
	// StatusRewritePending.
	OldSize int64
	// Versions counts the versions of this file the agent has archived.
	Versions uint32
	// Remote is the server path (relative to the agent's directory) holding
	// the bytes, when it differs from the local path (rotated files).
	Remote []byte
	// UpdatedNs is when the entry was last written (Unix nanoseconds).
	UpdatedNs int64
}

// Manifest is an agent's manifest. Its methods are safe for concurrent use.
type Manifest struct {
	db    *pebble.DB
	fatal *fatalState
}

// Dir returns the manifest directory of agentID under the state directory.
// The agent id is cleaned so that it cannot name a directory outside state.
func Dir(state, agentID string) string {
	safe := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, agentID)
	if safe == "." || safe == ".." {
		safe = "_"
	}
	return filepath.Join(state, "manifest-"+safe)
}

// Open opens (creating if needed) the manifest database in dir.
func Open(dir string) (*Manifest, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open manifest: %w", err)
	}
	fatal := newFatalState()
	opts := &pebble.Options{
		// A small cache: the agent reads the manifest in order once per
		// run, so data blocks are not read twice by a push. A cache the
		// size of the manifest (12 MiB for 100,000 files) costs fresh,
		// zeroed memory for every block of the scan: measured 74 ms of CPU
		// to open and scan such a manifest with 24 MiB, 43 ms with 2 MiB
		// (the freed blocks are reused). watch re-reads the blocks each
		// round from the page cache, and keeps 22 MiB less resident.
		Cache:        pebble.NewCache(2 << 20),
		MemTableSize: 4 << 20,
		// Errors go to the program's default slog logger: the manifest
		// has no logger of its own.
		Logger: pebbleLogger{db: "manifest", log: slog.Default(), fatal: fatal},
	}
	defer opts.Cache.Unref()
	db, err := openPebble(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open manifest %s: %w", dir, err)
	}
	return &Manifest{db: db, fatal: fatal}, nil
}

// Close flushes and closes the database. After a FatalError it only
// returns it: Pebble may hold its own locks from the failed call.
func (m *Manifest) Close() error {
	if fe := m.fatal.failed(); fe != nil {
		return fmt.Errorf("close manifest: %w", fe)
	}
	if err := m.db.Close(); err != nil {
		return fmt.Errorf("close manifest: %w", err)
	}
	return nil
}

// ErrNotFound is returned by Get for a path the manifest does not know.
var ErrNotFound = errors.New("not in manifest")

// Get returns the entry of path, or ErrNotFound.
func (m *Manifest) Get(path []byte) (Entry, error) {
	k, err := EncodeFileKey(path)
	if err != nil {
		return Entry{}, err
	}
	v, closer, err := m.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("get %q: %w", path, err)
	}
	defer closer.Close()
	e, err := DecodeEntry(v)
	if err != nil {
		return Entry{}, fmt.Errorf("get %q: %w", path, err)
	}
	return e, nil
}

// Put stores e as the entry of path and points the inode index at it. With
// sync the write is on stable storage when Put returns.
func (m *Manifest) Put(path []byte, e Entry, sync bool) error {
	b := m.NewBatch()
	if err := b.Put(path, e); err != nil {
		return err
	}
	return b.Commit(sync)
}

// Batch groups changes that must happen together (a rotation moves an entry
// from one name to another). It is not safe for concurrent use.
type Batch struct {
	m *Manifest
	b *pebble.Batch
}

// NewBatch starts an atomic group of changes.
func (m *Manifest) NewBatch() *Batch { return &Batch{m: m, b: m.db.NewBatch()} }

// Put adds setting path to e, and points the inode and head indexes at it.
func (b *Batch) Put(path []byte, e Entry) error {
	k, err := EncodeFileKey(path)
	if err != nil {
		return err
	}
	hk := headKey(path, e)
	if err := b.dropHeadKey(path, k, hk); err != nil {
		return err
	}
	if err := b.b.Set(k, EncodeEntry(e), nil); err != nil {
		return fmt.Errorf("put %q: %w", path, err)
	}
	if e.Ino != 0 && e.Status != StatusGone {
		if err := b.b.Set(inodeKey(e.Dev, e.Ino), path, nil); err != nil {
			return fmt.Errorf("put %q: %w", path, err)
		}
	}
	if hk != nil {
		if err := b.b.Set(hk, nil, nil); err != nil {
			return fmt.Errorf("put %q: %w", path, err)
		}
	}
	return nil
}

// Delete adds removing path's entry.
func (b *Batch) Delete(path []byte) error {
	k, err := EncodeFileKey(path)
	if err != nil {
		return err
	}
	if err := b.dropHeadKey(path, k, nil); err != nil {
		return err
	}
	if err := b.b.Delete(k, nil); err != nil {
		return fmt.Errorf("delete %q: %w", path, err)
	}
	return nil
}

// dropHeadKey deletes the head key of path's stored entry unless it is keep:
// head keys name their path, so a stale one would not be overwritten. (A
// stale key left by a crash or a race costs a lookup, never a wrong match:
// FindByHead checks the entry.)
func (b *Batch) dropHeadKey(path, fileKey, keep []byte) error {
	v, closer, err := b.m.db.Get(fileKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("put %q: %w", path, err)
	}
	old, derr := DecodeEntry(v)
	closer.Close()
	if derr != nil {
		return nil // replaced by the caller's entry; nothing indexed to drop
	}
	if ok := headKey(path, old); ok != nil && !bytes.Equal(ok, keep) {
		if err := b.b.Delete(ok, nil); err != nil {
			return fmt.Errorf("put %q: %w", path, err)
		}
	}
	return nil
}

// Commit applies the batch atomically; with sync it is on stable storage when
// Commit returns.
func (b *Batch) Commit(sync bool) error {
	defer b.b.Close()
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	if err := b.b.Commit(opt); err != nil {
		return fmt.Errorf("commit manifest: %w", err)
	}
	return nil
}

// LookupInode returns the path last stored with (dev, ino) and its entry
// (whatever its status, gone included), or ErrNotFound. Index keys are never
// deleted eagerly: an inode whose entry has since moved to another inode
// reports ErrNotFound. Inodes are reused, so a caller must check the file's
// content (fingerprints) before trusting a match.
func (m *Manifest) LookupInode(dev, ino uint64) ([]byte, Entry, error) {
	if ino == 0 {
		return nil, Entry{}, ErrNotFound
	}
	v, closer, err := m.db.Get(inodeKey(dev, ino))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, Entry{}, ErrNotFound
	}
	if err != nil {
		return nil, Entry{}, fmt.Errorf("lookup inode %d: %w", ino, err)
	}
	path := bytes.Clone(v)
	closer.Close()
	e, err := m.Get(path)
	if err != nil {
		return nil, Entry{}, err
	}
	if e.Dev != dev || e.Ino != ino {
		return nil, Entry{}, ErrNotFound
	}
	return path, e, nil
}

// HeadLenFor is the head fingerprint length of a file with archived bytes
// archived: the largest power of two not above min(FingerprintSpan,
// archived), 0 for none. Powers of two keep the head index to 13 lengths, so
// FindByHead looks a file up with 13 seeks whatever the archived sizes.
func HeadLenFor(archived int64) int64 {
	if archived <= 0 {
		return 0
	}
	return 1 << (63 - bits.LeadingZeros64(uint64(min(archived, FingerprintSpan))))
}

// HeadMatch is an entry found by its head fingerprint.
type HeadMatch struct {
	Path  []byte
	Entry Entry
}

// FindByHead returns the entries (any status but an upload under way) with
// at most size archived bytes whose head fingerprint matches the start of a
// file of size bytes, longest head first, at most limit of them. head is the
// file's first min(size, FingerprintSpan) bytes. A match says only that the
// file begins like the entry's archived bytes did; the caller checks the
// block before Archived as well.
func (m *Manifest) FindByHead(head []byte, size int64, limit int) ([]HeadMatch, error) {
	it, err := m.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixHead}, UpperBound: []byte{prefixHead + 1}})
	if err != nil {
		return nil, fmt.Errorf("find by head: %w", err)
	}
	defer it.Close()
	if !it.First() {
		return nil, it.Error() // an empty index (a first push): no hashing
	}
	var out []HeadMatch
	for n := HeadLenFor(int64(len(head))); n > 0 && len(out) < limit; n >>= 1 {
		fp := sha256.Sum256(head[:n])
		e := Entry{Status: StatusArchived, Archived: n, HeadLen: n, Head: fp}
		prefix := headKey(nil, e)
		for ok := it.SeekGE(prefix); ok && bytes.HasPrefix(it.Key(), prefix) && len(out) < limit; ok = it.Next() {
			path := bytes.Clone(it.Key()[len(prefix):])
			got, err := m.Get(path)
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadValue) {
				continue // stale
			}
			if err != nil {
				return nil, err
			}
			if headKey(path, got) != nil && got.HeadLen == n && got.Head == fp && got.Archived <= size {
				out = append(out, HeadMatch{Path: path, Entry: got})
			}
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("find by head: %w", err)
	}
	return out, nil
}

// NextSeq increments and returns the counter name (starting at 1), durably.
func (m *Manifest) NextSeq(name string) (uint64, error) {
	k := append([]byte{prefixMeta}, name...)
	var n uint64
	v, closer, err := m.db.Get(k)
	switch {
	case err == nil:
		if len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return 0, fmt.Errorf("read counter %s: %w", name, err)
	}
	n++
	if err := m.db.Set(k, binary.BigEndian.AppendUint64(nil, n), pebble.Sync); err != nil {
		return 0, fmt.Errorf("write counter %s: %w", name, err)
	}
	return n, nil
}

// Sync makes every change so far durable (fsyncs the write-ahead log).
func (m *Manifest) Sync() error {
	if err := m.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync manifest: %w", err)
	}
	return nil
}

// FileIter walks the file entries in path order (see ComparePaths). It sees
// the manifest as it was when the iterator was made.
type FileIter struct {
	it    *pebble.Iterator
	valid bool
	path  []byte
	err   error
}

// Files returns an iterator over every file entry, positioned at the first.
// The caller must Close it.
func (m *Manifest) Files() (*FileIter, error) {
	it, err := m.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixFile},
		UpperBound: []byte{prefixFile + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("iterate manifest: %w", err)
	}
	fi := &FileIter{it: it}
	fi.set(it.First())
	return fi, nil
}

func (fi *FileIter) set(ok bool) {
	fi.valid = ok
	fi.path = fi.path[:0]
	if ok {
		// One buffer for every path of the walk: Path is documented valid
		// only until Next.
		fi.path, fi.err = appendFileKeyPath(fi.path, fi.it.Key())
		if fi.err != nil {
			fi.valid = false
		}
	}
}

// Valid reports whether the iterator is at an entry.
func (fi *FileIter) Valid() bool { return fi.valid }

// Path is the current entry's path; it is valid until the next call to Next.
func (fi *FileIter) Path() []byte { return fi.path }

// Entry decodes the current entry.
func (fi *FileIter) Entry() (Entry, error) {
	v, err := fi.it.ValueAndErr()
	if err != nil {
		return Entry{}, fmt.Errorf("read %q: %w", fi.path, err)
	}
	e, err := DecodeEntry(v)
	if err != nil {
		return Entry{}, fmt.Errorf("read %q: %w", fi.path, err)
	}
	return e, nil
}

// Stat is the part of an entry the quick check compares.
type Stat struct {
	Status  Status
	Size    int64
	MtimeNs int64
	Dev     uint64
	Ino     uint64
}

// Stat decodes only the current entry's Stat, without allocating: the
// agent calls it for every file of every scan.
func (fi *FileIter) Stat() (Stat, error) {
	v, err := fi.it.ValueAndErr()
	if err != nil {
		return Stat{}, fmt.Errorf("read %q: %w", fi.path, err)
	}
	st, err := DecodeStat(v)
	if err != nil {
		return Stat{}, fmt.Errorf("read %q: %w", fi.path, err)
	}
	return st, nil
}

// Next moves to the next entry.
func (fi *FileIter) Next() { fi.set(fi.it.Next()) }

// Close releases the iterator and returns the first error it met.
func (fi *FileIter) Close() error {
	err := fi.it.Close()
	if fi.err != nil {
		return fi.err
	}
	if err != nil {
		return fmt.Errorf("iterate manifest: %w", err)
	}
	return nil
}
