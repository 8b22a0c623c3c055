// Package archive is the archive's on-disk contract, the one place the
// agent (package syncer) and the historian (ftpfs, store, the views) agree
// on it:
//
//	/<agent>/...                                  the agent's logs, byte-exact names
//	/<agent>/NAME.superseded-<UTC>[-N]            a kept version of NAME
//	/<agent>/.syncer/agent.json                   AgentInfo, replaced on every push
//	/<agent>/.syncer/commits/<UTC ns>-<seq>.json  CommitRecord, one per push
//
// and the rules for an agent id and for a path inside an agent's tree. It
// is a leaf: it imports nothing of the module, and every package that
// reads or writes the archive imports it, so a change of format is a
// compile error instead of a drift between writer and reader.
package archive

import (
	"fmt"
	"strings"
)

// MetaDir is the agent's metadata directory at the top of its tree. Every
// view hides it; only the agent writes into it.
const MetaDir = ".syncer"

// AgentInfoFile and CommitsDir are the entries of MetaDir.
const (
	AgentInfoFile = "agent.json"
	CommitsDir    = "commits"
)

// CheckAgentID checks that id can name an agent's tree: one path element
// that is not "." or "..", without '/', '\\' (a path separator on Windows
// nodes), NUL, CR or LF (which would forge lines in logs and listings), and
// not the metadata directory's name.
func CheckAgentID(id string) error {
	if !ValidName(id) || strings.ContainsAny(id, "\\\r\n") || id == MetaDir {
		return fmt.Errorf("agent id %q: must be one path segment", id)
	}
	return nil
}

// ValidAgentID reports whether CheckAgentID accepts id.
func ValidAgentID(id string) bool { return CheckAgentID(id) == nil }

// ValidName reports whether name can be one element of a path in the
// archive: not empty, not "." or "..", without '/' or NUL. Any other
// bytes are allowed: logs are archived under their names byte for byte,
// UTF-8 or not (a Latin-1 name from an old node is a name like any other),
// so no reader may require more than this.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// ValidRel reports whether rel is a clean '/'-separated path relative to
// an agent's tree, every element ValidName; "" is the tree itself.
func ValidRel(rel string) bool {
	if rel == "" {
		return true
	}
	for {
		el, rest, more := strings.Cut(rel, "/")
		if !ValidName(el) {
			return false
		}
		if !more {
			return true
		}
		rel = rest
	}
}

// IsMeta reports whether rel, relative to an agent's tree, is the metadata
// directory or inside it.
func IsMeta(rel string) bool {
	return rel == MetaDir || strings.HasPrefix(rel, MetaDir+"/")
}

// IsAgentInfo reports whether p is /<agent>/.syncer/agent.json, the
// description an agent replaces on every push.
func IsAgentInfo(p string) bool {
	agent, rest, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return ok && agent != "" && rest == MetaDir+"/"+AgentInfoFile
}
