package store

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path"
	"time"
)

// Verification is the result of checking an archived file against the
// SHA-256 its agent recorded in a commit record.
type Verification uint8

// Verification states, as shown by the API.
const (
	// VerifyPending: no commit record covers the file's current bytes yet
	// (an upload in progress, bytes appended since the last commit, or a
	// file placed in the archive by other means).
	VerifyPending Verification = iota
	// VerifyVerified: the file's bytes hash to what the agent recorded.
	VerifyVerified
	// VerifyMismatch: the first bytes the agent recorded do not hash to its
	// SHA-256 (corruption on either side, or a file altered on the
	// historian's disk).
	VerifyMismatch
	// VerifyIncomplete: the bytes hash to what the agent recorded, and the
	// agent reported that lines written to this version of the log on the
	// node never reached it (the rotated log left the node before the agent
	// found its tail): verified, but not the whole log.
	VerifyIncomplete
)

func (v Verification) String() string {
	switch v {
	case VerifyPending:
		return "pending"
	case VerifyVerified:
		return "verified"
	case VerifyMismatch:
		return "mismatch"
	case VerifyIncomplete:
		return "incomplete"
	}
	return fmt.Sprintf("verification(%d)", uint8(v))
}

// expectation check states (IndexEntry.check).
const (
	checkNone     uint8 = iota // not compared yet
	checkMatch                 // the first ExpectedSize bytes hash to ExpectedSHA256
	checkMismatch              // they do not
)

// IndexEntry is what the historian's index knows about one file or
// directory of an agent's tree.
type IndexEntry struct {
	// Agent is the agent id (the top directory under the archive root);
	// Path the '/'-separated path below it (raw bytes, maybe not UTF-8).
	Agent, Path string
	// Dir marks a directory; the remaining fields are those of files.
	Dir bool
	// Size and MtimeNs are the file's stat on disk when last indexed: the
	// index never claims bytes the disk did not have.
	Size    int64
	MtimeNs int64
	// SHA256 is the historian's own hash of the first Hashed bytes; Hashed
	// equals Size once the index has caught up with the file.
	SHA256 [32]byte
	Hashed int64
	// FirstUploadNs and LastUploadNs are when uploads of the file were
	// seen (Unix ns); 0 for a file found on disk by a reconcile.
	FirstUploadNs, LastUploadNs int64
	// Account is the FTP account that last wrote the file ("" if unknown).
	Account string
	// HasExpected says an agent's commit record named the file: its first
	// ExpectedSize bytes should hash to ExpectedSHA256 (recorded at
	// CommitNs).
	HasExpected    bool
	ExpectedSize   int64
	ExpectedSHA256 [32]byte
	CommitNs       int64
	// Gap says a commit record reported lines of this file that its agent
	// could not archive (see VerifyIncomplete).
	Gap bool

	hashState []byte // marshalled sha256 state after Hashed bytes
	check     uint8
}

// Name is the last element of Path (the agent id for an agent's top).
func (e IndexEntry) Name() string {
	if e.Path == "" {
		return e.Agent
	}
	return path.Base(e.Path)
}

// Status is the entry's verification state.
func (e IndexEntry) Status() Verification {
	switch {
	case e.Dir || !e.HasExpected:
		return VerifyPending
	case e.check == checkMismatch:
		return VerifyMismatch
	case e.check == checkMatch && e.Hashed == e.ExpectedSize && e.Size == e.Hashed && e.Gap:
		return VerifyIncomplete
	case e.check == checkMatch && e.Hashed == e.ExpectedSize && e.Size == e.Hashed:
		return VerifyVerified
	}
	return VerifyPending
}

// SHA256Hex is the hex SHA-256 of the whole file, or "" while the index has
// not hashed all of it (and for directories).
func (e IndexEntry) SHA256Hex() string {
	if e.Dir || e.Hashed != e.Size {
		return ""
	}
	return hex.EncodeToString(e.SHA256[:])
}

// Mtime is MtimeNs as a time.
func (e IndexEntry) Mtime() time.Time { return time.Unix(0, e.MtimeNs).UTC() }

// ixValueVersion is the first byte of every encoded IndexEntry.
const ixValueVersion byte = 1

const (
	flagDir byte = 1 << iota
	flagExpected
	flagGap
)

// encodeIndexEntry returns the stored form of e (Agent and Path live in
// the key).
func encodeIndexEntry(e *IndexEntry) []byte {
	b := make([]byte, 0, 160+len(e.hashState)+len(e.Account))
	var flags byte
	if e.Dir {
		flags |= flagDir
	}
	if e.HasExpected {
		flags |= flagExpected
	}
	if e.Gap {
		flags |= flagGap
	}
	b = append(b, ixValueVersion, flags, e.check)
	b = binary.AppendVarint(b, e.Size)
	b = binary.AppendVarint(b, e.MtimeNs)
	if e.Dir {
		return b
	}
	b = binary.AppendVarint(b, e.Hashed)
	b = append(b, e.SHA256[:]...)
	b = binary.AppendVarint(b, e.FirstUploadNs)
	b = binary.AppendVarint(b, e.LastUploadNs)
	b = binary.AppendUvarint(b, uint64(len(e.Account)))
	b = append(b, e.Account...)
	b = binary.AppendUvarint(b, uint64(len(e.hashState)))
	b = append(b, e.hashState...)
	if e.HasExpected {
		b = binary.AppendVarint(b, e.ExpectedSize)
		b = append(b, e.ExpectedSHA256[:]...)
		b = binary.AppendVarint(b, e.CommitNs)
	}
	return b
}

// decodeIndexEntry is the inverse of encodeIndexEntry; the result does not
// alias b.
func decodeIndexEntry(agent, rel string, b []byte) (IndexEntry, error) {
	d := decoder{b: b}
	e := IndexEntry{Agent: agent, Path: rel}
	if v := d.byte(); v != ixValueVersion && d.err == nil {
		d.err = fmt.Errorf("version %d", v)
	}
	flags := d.byte()
	e.check = d.byte()
	e.Dir = flags&flagDir != 0
	e.HasExpected = flags&flagExpected != 0
	e.Gap = flags&flagGap != 0
	e.Size = d.varint()
	e.MtimeNs = d.varint()
	if !e.Dir {
		e.Hashed = d.varint()
		copy(e.SHA256[:], d.bytes(32))
		e.FirstUploadNs = d.varint()
		e.LastUploadNs = d.varint()
		e.Account = string(d.lenBytes())
		e.hashState = d.lenBytes()
		if e.HasExpected {
			e.ExpectedSize = d.varint()
			copy(e.ExpectedSHA256[:], d.bytes(32))
			e.CommitNs = d.varint()
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return IndexEntry{}, fmt.Errorf("decode index entry %s/%s: %v: %w", agent, rel, d.err, ErrBadValue)
	}
	return e, nil
}
