//go:build linux

package fuseview

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Mounted is a mounted view. Unmount it when done; it is also unmounted
// when the context given to Mount is cancelled.
type Mounted struct {
	server     *fuse.Server
	v          *view
	mountpoint string
	log        *slog.Logger

	cancelSub   func()
	stopNotify  context.CancelFunc
	offered     bool
	unmountOnce sync.Once
	unmountErr  error
	lazy        bool
	done        chan struct{}
}

// Stats counts what the view did since it was mounted.
type Stats struct {
	// Opens is the number of files opened.
	Opens int64
	// DaemonReads is the number of reads the kernel sent to the daemon;
	// it stays 0 while every open file is served by passthrough.
	DaemonReads int64
}

// Mount shows the archive at root, as listed by src, read-only at
// mountpoint: /<agent>/<path>. It first clears a stale mount left at
// mountpoint by a process that died, and refuses a mount point that is
// missing, not a directory, not empty or already mounted (errors wrap
// ErrMountpoint). It needs root (or CAP_SYS_ADMIN) and /dev/fuse.
//
// The mount is ro,nosuid,nodev,noexec; every write gets EROFS. File
// contents are read from <root>/<agent>/<path> through the kernel's FUSE
// passthrough when it offers it, and through the daemon otherwise.
// Changes reported by src invalidate the kernel's caches, so new files and
// new sizes show within a fraction of a second.
func Mount(ctx context.Context, src Source, root, mountpoint string, opts Options) (*Mounted, error) {
	opts = opts.withDefaults()
	lg := opts.Logger
	mp, err := prepareMountpoint(mountpoint, lg)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("archive root: %w", err)
	}
	rootDir, err := r.Open(".")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("archive root: %w", err)
	}
	v := &view{src: src, root: r, rootDir: rootDir, rootFD: int(rootDir.Fd()), opts: opts}
	rootNode := &node{v: v, dir: true}

	entry, attr, neg := timeouts(opts)
	fopts := &fs.Options{
		EntryTimeout:    entry,
		AttrTimeout:     attr,
		NegativeTimeout: neg,
		MountOptions: fuse.MountOptions{
			FsName: opts.FsName,
			Name:   "syncer",
			// No fusermount here: the daemon mounts itself, as root.
			DirectMountStrict: true,
			// Read-only and inert: the archive is evidence, not a place to
			// write, run programs or open device nodes.
			DirectMountFlags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
			// With allow_other, default_permissions makes the kernel check
			// the archived files' modes, so the view shows no user a file
			// the archive would not let them read.
			Options:       []string{"default_permissions"},
			AllowOther:    opts.AllowOther,
			DisableXAttrs: true,
			MaxWrite:      1 << 20, // also the largest read: fewer round trips when not passing through
			MaxBackground: 64,
			// One goroutine reads each request and serves it, and polls
			// the device for the next one for a moment before it sleeps:
			// no thread hand-off or wake-up per request in a burst. Only
			// reads (through the daemon when passthrough is off) get a
			// reader of their own; every other handler here is a lookup
			// or an open in the archive. See third_party/go-fuse/SYNCER.md.
			InlineRequests: true,
			PollSpin:       max(opts.PollSpin, 0),
			Debug:          opts.Debug,
			Logger:         goFuseLogger(lg, opts.Debug),
		},
	}
	server, err := fs.Mount(mp, rootNode, fopts)
	if err != nil {
		rootDir.Close()
		r.Close()
		return nil, fmt.Errorf("mount %s: %w", mp, err)
	}
	m := &Mounted{server: server, v: v, mountpoint: mp, log: lg, done: make(chan struct{})}
	m.offered = server.KernelSettings().Flags64()&fuse.CAP_PASSTHROUGH != 0
	v.passthrough.Store(m.offered && !opts.NoPassthrough)

	nctx, stop := context.WithCancel(context.Background())
	m.stopNotify = stop
	nt := newNotifier(rootNode.EmbeddedInode())
	go nt.run(nctx)
	m.cancelSub = src.Subscribe(nt.add)

	go func() {
		server.Wait()
		rootDir.Close()
		r.Close()
		close(m.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			if err := m.Unmount(); err != nil {
				lg.Error("fuseview: unmount", "mountpoint", mp, "err", err)
			}
		case <-m.done:
		}
	}()
	lg.Info("fuseview: mounted", "mountpoint", mp, "root", root,
		"passthrough", v.passthrough.Load(), "kernel_offers_passthrough", m.offered)
	return m, nil
}

// goFuseLogger bridges go-fuse's *log.Logger to lg. Without Debug go-fuse
// logs only what went wrong (warnings); with it, every request, which the
// user asked to see, so at info level.
func goFuseLogger(lg *slog.Logger, debug bool) *log.Logger {
	level := slog.LevelWarn
	if debug {
		level = slog.LevelInfo
	}
	return slog.NewLogLogger(lg.With("from", "go-fuse").Handler(), level)
}

// Mountpoint is the absolute mount point.
func (m *Mounted) Mountpoint() string { return m.mountpoint }

// Passthrough reports whether new files are served by kernel passthrough:
// the kernel offered it, it was not turned off, and no open fell back.
func (m *Mounted) Passthrough() bool { return m.v.passthrough.Load() }

// Stats returns the counters.
func (m *Mounted) Stats() Stats {
	return Stats{Opens: m.v.opens.Load(), DaemonReads: m.v.reads.Load()}
}

// Done is closed when the file system is gone: unmounted by Unmount, by
// the context, or from outside (umount).
func (m *Mounted) Done() <-chan struct{} { return m.done }

// Unmount unmounts the view. When files are still open it detaches the
// mount lazily (MNT_DETACH): the name goes at once, open files keep
// working while this process lives, and Unmount returns without waiting
// for them. It is safe to call more than once.
func (m *Mounted) Unmount() error {
	m.unmountOnce.Do(func() {
		m.cancelSub()
		m.stopNotify()
		err := unix.Unmount(m.mountpoint, 0)
		if errors.Is(err, unix.EBUSY) {
			m.log.Warn("fuseview: files still open, detaching the mount lazily", "mountpoint", m.mountpoint)
			err = unix.Unmount(m.mountpoint, unix.MNT_DETACH)
			m.lazy = err == nil
		}
		switch {
		case errors.Is(err, unix.EINVAL):
			err = nil // unmounted from outside already
		case err != nil:
			m.unmountErr = fmt.Errorf("unmount %s: %w", m.mountpoint, err)
			return
		}
		if !m.lazy {
			<-m.done
		}
		m.log.Info("fuseview: unmounted", "mountpoint", m.mountpoint, "lazy", m.lazy)
	})
	return m.unmountErr
}

// prepareMountpoint returns the absolute mount point after clearing a
// stale mount, or an error wrapping ErrMountpoint.
func prepareMountpoint(mountpoint string, lg *slog.Logger) (string, error) {
	if mountpoint == "" {
		return "", fmt.Errorf("no mount point given: %w", ErrMountpoint)
	}
	mp, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", fmt.Errorf("mount point %s: %v: %w", mountpoint, err, ErrMountpoint)
	}
	// A FUSE daemon that died (kill -9, crash) leaves its mount behind, and
	// every request to it fails with ENOTCONN. It serves nobody: detach it
	// (mounts can be stacked, hence the loop). statfs is the probe because
	// the kernel always asks the daemon for it; a stat may be answered from
	// the attribute cache for a while after the daemon died.
	for i := 0; i < 8; i++ {
		var sfs unix.Statfs_t
		err = unix.Statfs(mp, &sfs)
		if !errors.Is(err, unix.ENOTCONN) && !errors.Is(err, unix.ECONNABORTED) {
			break
		}
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			return "", fmt.Errorf("mount point %s: a dead mount is left there and detaching it failed: %v: %w", mp, err, ErrMountpoint)
		}
		lg.Warn("fuseview: cleared the stale mount of a process that died", "mountpoint", mp)
	}
	var st unix.Stat_t
	err = unix.Stat(mp, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		return "", fmt.Errorf("mount point %s does not exist (create it with mkdir): %w", mp, ErrMountpoint)
	case err != nil:
		return "", fmt.Errorf("mount point %s: %v: %w", mp, err, ErrMountpoint)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return "", fmt.Errorf("mount point %s is not a directory: %w", mp, ErrMountpoint)
	}
	if real, err := filepath.EvalSymlinks(mp); err == nil {
		mp = real
	}
	if fstype, ok := mountedAt(mp); ok {
		return "", fmt.Errorf("mount point %s is busy: a %s file system is mounted there (unmount it first): %w", mp, fstype, ErrMountpoint)
	}
	d, err := os.Open(mp)
	if err != nil {
		return "", fmt.Errorf("mount point %s: %v: %w", mp, err, ErrMountpoint)
	}
	names, _ := d.Readdirnames(1)
	d.Close()
	if len(names) > 0 {
		return "", fmt.Errorf("mount point %s is not empty (the view would hide %q and the rest): %w", mp, names[0], ErrMountpoint)
	}
	return mp, nil
}

// mountedAt reports whether something is mounted at the directory mp, and
// its type, from /proc/self/mountinfo.
func mountedAt(mp string) (fstype string, ok bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || unescapeMountinfo(fields[4]) != mp {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				return fields[i+1], true
			}
		}
		return "unknown", true
	}
	return "", false
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
