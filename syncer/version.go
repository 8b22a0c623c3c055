// Package syncer is the agent: it scans a log directory by glob, diffs it
// against the manifest kept in store, and pushes new files and appended bytes
// to the historian over ftpfs.
package syncer

// Version is the release of syncer; the build may override it with
// -ldflags "-X github.com/syncer-dev/syncer/syncer.Version=...".
var Version = "0.1.0-dev"
