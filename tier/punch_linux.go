package tier

import (
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// canPunch tries a hole punch in a scratch file in the archive: some file
// systems (and tmpfs before Linux 3.5) cannot.
func canPunch(root string) (bool, int64) {
	f, err := os.CreateTemp(root, ".syncer-punch-*")
	if err != nil {
		return false, 4096
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var st unix.Statfs_t
	bs := int64(4096)
	if unix.Fstatfs(int(f.Fd()), &st) == nil && st.Bsize > 0 {
		bs = st.Bsize
	}
	if _, err := f.Write(make([]byte, 2*bs)); err != nil {
		return false, bs
	}
	err = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, bs)
	return err == nil, bs
}

// punchHole frees [off, off+n) of rel below root, keeping its size and its
// modification time (the index takes a changed mtime for a file changed
// behind its back, and would hash it again).
func punchHole(root *os.Root, rel string, off, n int64) error {
	f, err := root.OpenFile(rel, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return err
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		return &os.PathError{Op: "punch hole", Path: filepath.FromSlash(rel), Err: err}
	}
	after, err := f.Stat()
	if err == nil && after.Size() == before.Size() && !after.ModTime().Equal(before.ModTime()) {
		// Only if nothing was appended meanwhile: an append's own mtime
		// stands.
		_ = root.Chtimes(rel, time.Time{}, before.ModTime())
	}
	return nil
}

// diskUsed is the fraction of the file system of dir in use, as df's
// Use% counts it (blocks reserved for root left out).
func diskUsed(dir string) (float64, bool) {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil || st.Blocks == 0 {
		return 0, false
	}
	used := float64(st.Blocks - st.Bfree)
	if used+float64(st.Bavail) == 0 {
		return 0, false
	}
	return used / (used + float64(st.Bavail)), true
}
