package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncer-dev/syncer/fuseview"
)

// mountOptions are the flags of `syncer mount`.
type mountOptions struct {
	Root, State  string
	AllowOther   bool
	CacheTimeout time.Duration
	Debug        bool
}

func newMountCommand() *cobra.Command {
	var opts mountOptions
	cmd := &cobra.Command{
		Use:   "mount --root DIR --state DIR MOUNTPOINT",
		Short: "Mount the archive read-only at MOUNTPOINT (FUSE, Linux)",
		Long: `Mount the archive read-only as /MOUNTPOINT/<agent>/<path>, for grep -r, less,
find, tail and zcat across every agent's logs. The agents' .syncer/ metadata is
hidden; sizes, mtimes, bytes, permission bits and owners are the archive's
(without write bits), and the kernel enforces them (default_permissions).

Only the user who mounts (root) may use the view, unless --mount-allow-other
lets every local user in, each as far as the archived files' modes and owners
allow: chmod 700 on an agent's tree keeps the others out of it, and a group
that may read the archive on disk may read it through the mount.

Every write, create, rename, delete, chmod or truncate fails with "Read-only
file system". Files are read by the kernel directly from the archive (FUSE
passthrough) where the kernel offers it. New files and appended bytes show
within a second, without remounting; a file open in less or tail -f keeps
working as it grows.

This standalone view lists the archive directory itself, so it works beside a
running "syncer serve" or without one. (A historian can show the same view
with "syncer serve --mount DIR".) It needs root and /dev/fuse. A mount left
behind by a crashed syncer is cleared at the next start; a mount point that is
missing, not empty or already mounted is refused.

It runs until SIGINT or SIGTERM, then unmounts (lazily, if files are still
open) and exits: 0 after SIGTERM, 130 after SIGINT (Ctrl-C).`,
		Example: `  # Root reads every agent's logs under /archive
  mkdir -p /archive
  syncer mount --root /srv/archive --state /var/lib/syncer /archive
  grep -r ERROR /archive/*/app/
  less /archive/node17/app/2026-11-24.log

  # Every local user may use the view, as the archive's modes allow;
  # node17's logs stay root's
  chmod 700 /srv/archive/node17
  syncer mount --root /srv/archive --state /var/lib/syncer --mount-allow-other /archive

  # From systemd: stop with SIGTERM (systemctl stop), the mount goes with it
  ExecStart=/usr/local/bin/syncer mount --config /etc/syncer/mount.yaml /archive`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMount(cmd.Context(), opts, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Root, "root", "", "archive directory to show")
	f.StringVar(&opts.State, "state", "", "the historian's state directory")
	f.BoolVar(&opts.AllowOther, "mount-allow-other", false, "let every local user use the view, each as the archived files' modes and owners allow")
	// The flag's name before it became serve's: same variable, same default.
	f.BoolVar(&opts.AllowOther, "allow-other", false, "")
	_ = f.MarkDeprecated("allow-other", "use --mount-allow-other")
	f.DurationVar(&opts.CacheTimeout, "cache-timeout", time.Second, "longest time the kernel trusts a cached name or size when a change notification is missed")
	f.BoolVar(&opts.Debug, "debug", false, "log every FUSE request (very verbose)")
	addConfigFlag(cmd)
	return cmd
}

func runMount(ctx context.Context, opts mountOptions, args []string) error {
	switch {
	case opts.Root == "":
		return usageErrorf("--root is required (the archive directory)")
	case opts.State == "":
		return usageErrorf("--state is required (the historian's state directory)")
	case opts.CacheTimeout <= 0:
		return usageErrorf("--cache-timeout %v: must be positive", opts.CacheTimeout)
	}
	for _, d := range []struct{ flag, path string }{{"--root", opts.Root}, {"--state", opts.State}} {
		fi, err := os.Stat(d.path)
		if err != nil {
			return usageErrorf("%s %s: %v", d.flag, d.path, errors.Unwrap(err))
		}
		if !fi.IsDir() {
			return usageErrorf("%s %s: not a directory", d.flag, d.path)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// The view lists the archive directory itself (DiskSource): it is exact,
	// needs no index, and works whether or not a "syncer serve" holds the
	// state directory's lock and its index.
	src, err := fuseview.NewDiskSource(opts.Root, log)
	if err != nil {
		return usageErrorf("--root: %v", err)
	}
	defer src.Close()
	m, err := fuseview.Mount(ctx, src, opts.Root, args[0], fuseview.Options{
		EntryTimeout:    opts.CacheTimeout,
		AttrTimeout:     opts.CacheTimeout,
		NegativeTimeout: opts.CacheTimeout,
		AllowOther:      opts.AllowOther,
		Logger:          log,
		Debug:           opts.Debug,
	})
	switch {
	case errors.Is(err, fuseview.ErrMountpoint), errors.Is(err, fuseview.ErrUnsupported):
		return withCode(exitUsage, err)
	case err != nil:
		return withCode(exitPartial, err)
	}
	fmt.Fprintf(os.Stderr, "syncer: the archive %s is mounted read-only at %s; stop with Ctrl-C or SIGTERM\n", opts.Root, m.Mountpoint())
	select {
	case <-ctx.Done():
	case <-m.Done():
		log.Warn("the view was unmounted from outside", "mountpoint", m.Mountpoint())
	}
	if err := m.Unmount(); err != nil {
		return withCode(exitPartial, err)
	}
	return nil
}
