package historian

// Archive is where the archived bytes live. The storage tier plugs in
// here: today there is one kind, LocalArchive, a directory on the
// historian's own disk that the FTP server writes into and the index, the
// web viewer and the FUSE view read from. A tier that moves sealed files
// elsewhere (SPEC.md: S3 behind a local cache) will be another Archive;
// until one exists, this interface asks only for what every component
// needs today.
type Archive interface {
	// Dir is the local directory that holds the archive's tree
	// (<Dir>/<agent-id>/...), created by Run if missing. It does not
	// change while the historian runs.
	Dir() string
}

// LocalArchive is an archive kept in a local directory: the archive as it
// has always been.
type LocalArchive string

// Dir is the directory itself.
func (a LocalArchive) Dir() string { return string(a) }

var _ Archive = LocalArchive("")
