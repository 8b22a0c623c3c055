//go:build !unix

package syncer

import "io/fs"

// fileID returns 0, 0 where the platform's stat carries no inode numbers
// (Windows: the file index needs an open handle per file, which would cost
// more than the quick check is allowed to). The agent then identifies files
// by their head fingerprint alone: appends and rewrites are told apart just
// as well, but a log renamed by rotation is uploaded once under its new name
// instead of being recognised.
func fileID(fi fs.FileInfo) (dev, ino uint64) { return 0, 0 }
