// Package fuseview is the historian's read-only FUSE view of the archive:
// /<agent>/<path> for every agent, for grep -r, less, find, tail and zcat.
//
// Listings and attributes come from a Source (the historian's index, or
// DiskSource, which reads the archive directory itself); file contents
// always come from the archived files, opened through the archive root so
// nothing outside it can be reached. The agents' .syncer/ metadata is
// hidden. Sizes, mtimes, bytes, permission bits (less the write bits) and
// owners are the archive's, and the kernel enforces the permissions
// (default_permissions); only the mounting user may use the view unless
// Options.AllowOther.
//
// Mount (Linux only; elsewhere it returns ErrUnsupported) mounts with
// go-fuse directly (no fusermount), ro,nosuid,nodev,noexec; every write,
// create, rename, delete, chmod or truncate fails with EROFS. Reads use the
// kernel's FUSE passthrough when it offers it (the kernel then reads the
// archived file itself) and plain reads otherwise. The Source's change
// notifications invalidate the kernel's entry, attribute and page caches,
// so a new file or a new size shows within a fraction of a second while the
// caches stay on; a file held open by less or tail -f keeps working as it
// grows. Mount clears a stale mount left by a daemon that died and refuses
// a missing or busy mount point; Unmount detaches lazily when files are
// still open.
package fuseview
