package archive

import (
	"io"
	"io/fs"
)

// File is an archived file's content opened for reading: what
// http.ServeContent, a grep and a hash need. *os.File is one.
type File interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	io.Closer
	Stat() (fs.FileInfo, error)
}

// Opener opens the content of agent's archived file rel ('/'-separated,
// below the agent's tree). The historian's storage tier is one: it serves
// bytes evicted from the local disk from the object store. Errors wrap
// fs.ErrNotExist for a file that is not there; a read of bytes that fail
// their checksum returns an error, never the bad bytes. Open is safe for
// concurrent use.
type Opener interface {
	Open(agent, rel string) (File, error)
}

// Local is implemented by a File whose bytes are all on the local disk,
// as an *os.File's are. While such a File is open, the tier evicts none
// of its file's bytes: a view that reads the disk file by other means
// (the FUSE view's passthrough descriptor) keeps it open as long as it
// reads, so it never reads a punched hole as data.
type Local interface {
	File
	IsLocal() bool
}
