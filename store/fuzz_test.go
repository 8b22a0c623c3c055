package store

import (
	"bytes"
	"testing"

	"github.com/syncer-dev/syncer/internal/archive"
)

// FuzzIndexKey: an index file key decodes back to its agent and path for
// every valid agent id and path; keys of one directory sort by name and
// stay under the directory's prefix; decoding arbitrary bytes never panics.
func FuzzIndexKey(f *testing.F) {
	for _, s := range [][3]string{
		{"node1", "a.log", "b.log"}, {"n", "x/y/z.log", "x/y.log"}, {"a b", "\xff/\x01", "\xff/\x02"},
		{"node1", "app.log", "app.log.superseded-20261124T100000Z"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, agent, rel, other string) {
		_, _, _ = decodeIxFileKey([]byte(rel))
		if !archive.ValidAgentID(agent) || rel == "" || !archive.ValidRel(rel) {
			return
		}
		k := ixFileKey(agent, rel)
		a, r, err := decodeIxFileKey(k)
		if err != nil || a != agent || r != rel {
			t.Fatalf("ixFileKey(%q, %q) decodes to %q, %q, %v", agent, rel, a, r, err)
		}
		dir, name := splitRel(rel)
		if joinRel(dir, name) != rel {
			t.Fatalf("splitRel(%q) = %q, %q does not join back", rel, dir, name)
		}
		if !bytes.HasPrefix(k, ixDirPrefix(agent, dir)) || !bytes.HasPrefix(k, ixAgentPrefix(agent)) {
			t.Fatalf("key of %q is outside its directory's or agent's prefix", rel)
		}
		// Another file of the same directory sorts by its name.
		if other == "" || !archive.ValidRel(joinRel(dir, other)) || bytes.ContainsRune([]byte(other), '/') {
			return
		}
		k2 := ixFileKey(agent, joinRel(dir, other))
		if got, want := bytes.Compare(k, k2), bytes.Compare([]byte(name), []byte(other)); got != want {
			t.Fatalf("keys of %q and %q compare %d, names %d", name, other, got, want)
		}
		// A different agent's keys never share this agent's prefix unless
		// the ids are equal.
		if agent != other && archive.ValidAgentID(other) && bytes.HasPrefix(ixFileKey(other, rel), ixAgentPrefix(agent)) {
			t.Fatalf("agent %q's key lies under agent %q's prefix", other, agent)
		}
	})
}
