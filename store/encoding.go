package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Key space of a manifest. Every key starts with one prefix byte naming its
// kind, so that kinds never interleave and a prefix scan lists one kind.
const (
	// prefixFile + encoded path -> encoded Entry.
	prefixFile byte = 'f'
	// prefixInode + dev (8 bytes, big endian) + inode (8 bytes) -> path
	// bytes. It finds the old name of a renamed (rotated) file. It may be
	// stale: readers check the entry it points to.
	prefixInode byte = 'i'
	// prefixMeta + name -> small counters (the commit sequence number).
	prefixMeta byte = 'm'
	// prefixHead + log2(HeadLen) (1 byte) + Head[:headKeyHash] + path bytes
	// -> nothing. It finds the entries whose archived bytes a file begins
	// with (a copy of a log made by copytruncate rotation). It may be stale:
	// readers check the entry it names.
	prefixHead byte = 'h'
)

// headKeyHash is how many bytes of the head fingerprint a head key holds:
// enough to make unrelated heads collide almost never; readers compare the
// whole fingerprint anyway.
const headKeyHash = 8

// pathSep is what '/' becomes inside a file key. A NUL byte sorts below every
// byte a file name can contain, so the key order of "dir/x" and "dir.log"
// is the order in which a sorted directory walk visits them ("dir" and its
// children first, then "dir.log"). The agent relies on this to diff a walk
// against the manifest in one merge pass, without loading either into memory.
const pathSep = 0x00

// ErrBadPath is returned for a path that cannot be a manifest key: empty, or
// containing a NUL byte (no file system allows one in a name).
var ErrBadPath = errors.New("bad manifest path")

// ErrBadValue is returned when a stored value cannot be decoded (unknown
// version or corrupt bytes).
var ErrBadValue = errors.New("bad manifest value")

// EncodeFileKey returns the key of path, a '/'-separated path relative to the
// agent's log directory. Paths are raw bytes: names that are not UTF-8 are
// kept exactly.
func EncodeFileKey(path []byte) ([]byte, error) {
	if len(path) == 0 || bytes.IndexByte(path, 0) >= 0 {
		return nil, fmt.Errorf("encode key %q: %w", path, ErrBadPath)
	}
	k := make([]byte, 1+len(path))
	k[0] = prefixFile
	for i, c := range path {
		if c == '/' {
			c = pathSep
		}
		k[1+i] = c
	}
	return k, nil
}

// DecodeFileKey is the inverse of EncodeFileKey.
func DecodeFileKey(key []byte) ([]byte, error) {
	return appendFileKeyPath(nil, key)
}

// appendFileKeyPath appends the path of file key to dst (DecodeFileKey into
// a reused buffer: the manifest iterator decodes every key of a scan).
func appendFileKeyPath(dst, key []byte) ([]byte, error) {
	if len(key) < 2 || key[0] != prefixFile {
		return dst, fmt.Errorf("decode key %q: %w", key, ErrBadPath)
	}
	n := len(dst)
	dst = append(dst, key[1:]...)
	for i, c := range dst[n:] {
		if c == pathSep {
			dst[n+i] = '/'
		}
	}
	return dst, nil
}

// ComparePaths orders two '/'-separated paths the way the manifest stores
// them (and a sorted directory walk visits them): like bytes.Compare, except
// that '/' sorts below every other byte.
func ComparePaths(a, b []byte) int { return comparePaths(a, b) }

// ComparePathString is ComparePaths with b a string: the agent compares
// every walked path with the manifest's without converting it.
func ComparePathString(a []byte, b string) int { return comparePaths(a, b) }

func comparePaths[A, B ~[]byte | ~string](a A, b B) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			ca = pathSep
		}
		if cb == '/' {
			cb = pathSep
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// headKey returns the head index key of path for e, or nil when e has no
// head to be found by: nothing archived, a head length that is not a power
// of two (entries written before the index existed), or an upload under way.
func headKey(path []byte, e Entry) []byte {
	switch e.Status {
	case StatusArchived, StatusRotated, StatusGone, StatusCompressed:
	default:
		return nil
	}
	if e.Archived <= 0 || e.HeadLen <= 0 || e.HeadLen > FingerprintSpan || e.HeadLen&(e.HeadLen-1) != 0 {
		return nil
	}
	k := make([]byte, 0, 2+headKeyHash+len(path))
	k = append(k, prefixHead, byte(bits.TrailingZeros64(uint64(e.HeadLen))))
	k = append(k, e.Head[:headKeyHash]...)
	return append(k, path...)
}

func inodeKey(dev, ino uint64) []byte {
	k := make([]byte, 17)
	k[0] = prefixInode
	binary.BigEndian.PutUint64(k[1:], dev)
	binary.BigEndian.PutUint64(k[9:], ino)
	return k
}

// valueVersion is the first byte of every encoded Entry. A reader refuses
// versions it does not know instead of misreading them; a later format adds
// a new version and keeps decoding the old ones.
const valueVersion byte = 1

// EncodeEntry returns the stored form of e: a version byte, then the fields
// as varints and length-prefixed byte strings.
func EncodeEntry(e Entry) []byte {
	b := make([]byte, 0, 64+len(e.HashState)+len(e.Remote)+2*FingerprintSize)
	b = append(b, valueVersion, byte(e.Status))
	b = binary.AppendVarint(b, e.Size)
	b = binary.AppendVarint(b, e.MtimeNs)
	b = binary.AppendUvarint(b, e.Dev)
	b = binary.AppendUvarint(b, e.Ino)
	b = binary.AppendVarint(b, e.Archived)
	b = binary.AppendVarint(b, e.OldSize)
	b = binary.AppendUvarint(b, uint64(e.Versions))
	b = binary.AppendVarint(b, e.HeadLen)
	b = append(b, e.Head[:]...)
	b = append(b, e.Block[:]...)
	b = binary.AppendUvarint(b, uint64(len(e.HashState)))
	b = append(b, e.HashState...)
	b = binary.AppendUvarint(b, uint64(len(e.Remote)))
	b = append(b, e.Remote...)
	b = binary.AppendVarint(b, e.UpdatedNs)
	return b
}

// DecodeEntry is the inverse of EncodeEntry. The returned Entry does not
// alias b.
func DecodeEntry(b []byte) (Entry, error) {
	d := decoder{b: b}
	var e Entry
	if v := d.byte(); v != valueVersion {
		if d.err == nil {
			d.err = fmt.Errorf("version %d", v)
		}
	}
	e.Status = Status(d.byte())
	e.Size = d.varint()
	e.MtimeNs = d.varint()
	e.Dev = d.uvarint()
	e.Ino = d.uvarint()
	e.Archived = d.varint()
	e.OldSize = d.varint()
	e.Versions = uint32(d.uvarint())
	e.HeadLen = d.varint()
	copy(e.Head[:], d.bytes(FingerprintSize))
	copy(e.Block[:], d.bytes(FingerprintSize))
	e.HashState = d.lenBytes()
	e.Remote = d.lenBytes()
	e.UpdatedNs = d.varint()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return Entry{}, fmt.Errorf("decode entry: %v: %w", d.err, ErrBadValue)
	}
	return e, nil
}

// DecodeStat decodes the leading fields of an encoded Entry (see Stat).
func DecodeStat(b []byte) (Stat, error) {
	// Fast path for a well-formed value (every file of every scan); the
	// decoder below gives the errors.
	if len(b) > 2 && b[0] == valueVersion {
		var st Stat
		var n, m int
		st.Status = Status(b[1])
		p := b[2:]
		if st.Size, n = binary.Varint(p); n > 0 {
			p = p[n:]
			if st.MtimeNs, n = binary.Varint(p); n > 0 {
				p = p[n:]
				if st.Dev, n = binary.Uvarint(p); n > 0 {
					if st.Ino, m = binary.Uvarint(p[n:]); m > 0 {
						return st, nil
					}
				}
			}
		}
	}
	d := decoder{b: b}
	var st Stat
	if v := d.byte(); v != valueVersion && d.err == nil {
		d.err = fmt.Errorf("version %d", v)
	}
	st.Status = Status(d.byte())
	st.Size = d.varint()
	st.MtimeNs = d.varint()
	st.Dev = d.uvarint()
	st.Ino = d.uvarint()
	if d.err != nil {
		return Stat{}, fmt.Errorf("decode entry: %v: %w", d.err, ErrBadValue)
	}
	return st, nil
}

// decoder reads fields off b and remembers the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errors.New("short value")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.err = errors.New("short value")
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) lenBytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errors.New("length beyond value")
		return nil
	}
	if n == 0 {
		return nil
	}
	return bytes.Clone(d.bytes(int(n)))
}
