package store

import (
	"bytes"
	"fmt"
	"strings"
)

// Key space of the historian's index (a database of its own, separate from
// any manifest). One prefix byte names the kind of every key.
const (
	// ixFile + agent + 0 + dir + 0 + name -> encoded IndexEntry. dir is the
	// '/'-separated directory relative to the agent's tree ("" for its top).
	// Listing one directory is one bounded range scan (prefix up to the
	// second NUL) and so is one agent's subtree (prefix up to the first).
	// Directories have entries in their parent's range, so a listing needs
	// no disk walk.
	ixFile byte = 'F'
	// ixAgent + agent -> JSON AgentRecord.
	ixAgent byte = 'A'
	// ixCommit + agent + 0 + commit file name -> empty: the commit record
	// has been applied.
	ixCommit byte = 'C'
)

// splitRel splits rel ("a/b/c.log") into its directory ("a/b") and name.
func splitRel(rel string) (dir, name string) {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i], rel[i+1:]
	}
	return "", rel
}

// joinRel is the inverse of splitRel.
func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// ixAgentPrefix is the prefix of every file key of agent.
func ixAgentPrefix(agent string) []byte {
	k := make([]byte, 0, len(agent)+2)
	k = append(k, ixFile)
	k = append(k, agent...)
	return append(k, 0)
}

// ixDirPrefix is the prefix of the entries of one directory.
func ixDirPrefix(agent, dir string) []byte {
	k := ixAgentPrefix(agent)
	k = append(k, dir...)
	return append(k, 0)
}

// ixFileKey is the key of agent's entry rel.
func ixFileKey(agent, rel string) []byte {
	dir, name := splitRel(rel)
	return append(ixDirPrefix(agent, dir), name...)
}

// decodeIxFileKey returns the agent and relative path of a file key.
func decodeIxFileKey(k []byte) (agent, rel string, err error) {
	if len(k) < 1 || k[0] != ixFile {
		return "", "", fmt.Errorf("decode index key %q: %w", k, ErrBadPath)
	}
	rest := k[1:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return "", "", fmt.Errorf("decode index key %q: %w", k, ErrBadPath)
	}
	agent = string(rest[:i])
	rest = rest[i+1:]
	j := bytes.IndexByte(rest, 0)
	if j < 0 {
		return "", "", fmt.Errorf("decode index key %q: %w", k, ErrBadPath)
	}
	return agent, joinRel(string(rest[:j]), string(rest[j+1:])), nil
}

func ixAgentKey(agent string) []byte { return append([]byte{ixAgent}, agent...) }

func ixCommitKey(agent, name string) []byte {
	k := append([]byte{ixCommit}, agent...)
	k = append(k, 0)
	return append(k, name...)
}

// prefixEnd is the smallest key above every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}
