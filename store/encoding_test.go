package store

import (
	"bytes"
	"errors"
	"reflect"
	"sort"
	"testing"
)

func TestFileKeyRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		path string
		bad  bool
	}{
		{"plain", "app.log", false},
		{"nested", "a/b/c/2026-11-24.log", false},
		{"not utf8", "caf\xe9/\xff\xfe.log", false},
		{"trailing slash byte", "x/", false},
		{"empty", "", true},
		{"nul", "a\x00b", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := EncodeFileKey([]byte(c.path))
			if c.bad {
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("EncodeFileKey(%q) err = %v, want ErrBadPath", c.path, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := DecodeFileKey(k)
			if err != nil {
				t.Fatal(err)
			}
			if string(p) != c.path {
				t.Fatalf("round trip %q -> %q", c.path, p)
			}
		})
	}
}

// The key order must be the order of a sorted directory walk: a directory's
// children come right after it, before its siblings that extend its name.
func TestKeyOrderIsWalkOrder(t *testing.T) {
	walk := []string{"a/b.log", "a/c/d.log", "a.log", "a0/x.log", "ab.log", "b/\xff.log"}
	keys := make([][]byte, len(walk))
	for i, p := range walk {
		k, err := EncodeFileKey([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	if !sort.SliceIsSorted(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 }) {
		t.Fatalf("keys of walk order %q are not sorted", walk)
	}
	for i := 1; i < len(walk); i++ {
		if ComparePaths([]byte(walk[i-1]), []byte(walk[i])) >= 0 {
			t.Fatalf("ComparePaths(%q, %q) >= 0", walk[i-1], walk[i])
		}
	}
}

func sampleEntry() Entry {
	e := Entry{
		Status: StatusRewritePending, Size: 1 << 40, MtimeNs: -5, Dev: 1<<64 - 1, Ino: 42,
		Archived: 12345, HashState: []byte("state"), HeadLen: 4096, OldSize: 99,
		Versions: 3, Remote: []byte("app.log"), UpdatedNs: 1700000000000000000,
	}
	e.Head[0], e.Block[31] = 1, 2
	return e
}

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []Entry{{}, sampleEntry()} {
		got, err := DecodeEntry(EncodeEntry(e))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

func TestDecodeEntryRejects(t *testing.T) {
	good := EncodeEntry(sampleEntry())
	cases := map[string][]byte{
		"empty":         nil,
		"wrong version": append([]byte{99}, good[1:]...),
		"truncated":     good[:len(good)-3],
		"trailing":      append(append([]byte{}, good...), 0),
	}
	for name, b := range cases {
		if _, err := DecodeEntry(b); !errors.Is(err, ErrBadValue) {
			t.Errorf("%s: err = %v, want ErrBadValue", name, err)
		}
	}
}

func FuzzFileKey(f *testing.F) {
	for _, s := range []string{"a", "a/b", "\xff/x", "a//b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		k, err := EncodeFileKey(p)
		if len(p) == 0 || bytes.IndexByte(p, 0) >= 0 {
			if err == nil {
				t.Fatalf("EncodeFileKey(%q) accepted a bad path", p)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeFileKey(k)
		if err != nil || !bytes.Equal(back, p) {
			t.Fatalf("round trip %q -> %q, %v", p, back, err)
		}
	})
}

func FuzzEntry(f *testing.F) {
	f.Add(int64(1), int64(2), uint64(3), int64(4), []byte("h"), []byte("r"), uint8(1))
	f.Fuzz(func(t *testing.T, size, mtime int64, ino uint64, archived int64, hs, remote []byte, st uint8) {
		e := Entry{Status: Status(st), Size: size, MtimeNs: mtime, Ino: ino, Dev: ino * 3, Archived: archived,
			HashState: hs, Remote: remote, HeadLen: archived / 2, OldSize: -size, Versions: uint32(ino)}
		if len(e.HashState) == 0 {
			e.HashState = nil
		}
		if len(e.Remote) == 0 {
			e.Remote = nil
		}
		got, err := DecodeEntry(EncodeEntry(e))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
		}
		qs, err := DecodeStat(EncodeEntry(e))
		if err != nil || qs != (Stat{Status: e.Status, Size: e.Size, MtimeNs: e.MtimeNs, Dev: e.Dev, Ino: e.Ino}) {
			t.Fatalf("DecodeStat = %+v, %v; entry %+v", qs, err, e)
		}
		// Decoding arbitrary bytes must never panic.
		_, _ = DecodeStat(hs)
		_, _ = DecodeEntry(hs)
	})
}
