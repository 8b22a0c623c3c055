package ftpfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync is fdatasync(2): the data and what is needed to read it back
// (the size), not the times.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// startWriteback asks the kernel to start writing n bytes of f from off
// back to the disk, without waiting (sync_file_range SYNC_FILE_RANGE_WRITE),
// so that the fdatasync at the end of the upload finds them written. It is
// only a hint: an error is ignored.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
