//go:build !linux

package fuseview

import (
	"context"
	"fmt"
)

// Mounted is a mounted view; on this platform there never is one.
type Mounted struct{}

// Stats counts what the view did since it was mounted.
type Stats struct {
	Opens       int64
	DaemonReads int64
}

// Mount fails with ErrUnsupported: the FUSE view needs Linux.
func Mount(ctx context.Context, src Source, root, mountpoint string, opts Options) (*Mounted, error) {
	return nil, fmt.Errorf("mount %s: %w", mountpoint, ErrUnsupported)
}

// Mountpoint is the absolute mount point.
func (m *Mounted) Mountpoint() string { return "" }

// Passthrough reports whether new files are served by kernel passthrough.
func (m *Mounted) Passthrough() bool { return false }

// Stats returns the counters.
func (m *Mounted) Stats() Stats { return Stats{} }

// Done is closed when the file system is gone.
func (m *Mounted) Done() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Unmount does nothing on this platform.
func (m *Mounted) Unmount() error { return nil }
