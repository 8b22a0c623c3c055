package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/fuseview"
	"github.com/syncer-dev/syncer/httpview"
	"github.com/syncer-dev/syncer/store"
	"github.com/syncer-dev/syncer/syncer"
)

// historianSide is the index and web side of `syncer serve`: the index in
// <state>/index kept up to date from the FTP server's upload events, the
// JSON API and metrics over it.
type historianSide struct {
	ix       *store.Index
	metrics  *httpview.Metrics
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan error
	once     sync.Once
	closeErr error
	mounted  *fuseview.Mounted
}

// indexDir is the index database inside the state directory; deleting it
// while the server is stopped makes the next start rebuild it.
func indexDir(state string) string { return filepath.Join(state, "index") }

// openHistorian opens the index over the archive and starts keeping it
// up to date (a reconcile with the disk first, in the background).
func openHistorian(opts serveOptions, log *slog.Logger) (*historianSide, error) {
	ix, err := store.OpenIndex(store.IndexConfig{Dir: indexDir(opts.State), Root: opts.Root, Logger: log.With("component", "index")})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &historianSide{ix: ix, metrics: httpview.NewMetrics(), log: log, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- ix.Run(ctx) }()
	go func() {
		start := time.Now()
		select {
		case <-ix.Ready():
			st := ix.Stats()
			log.Info("index reconciled with the archive", "agents", st.Agents, "files", st.Files,
				"bytes", st.Bytes, "mismatch", st.Mismatch, "took", time.Since(start).Round(time.Millisecond))
		case <-ctx.Done():
		}
	}()
	return h, nil
}

// onUpload is the FTP server's OnUpload: it only queues.
func (h *historianSide) onUpload(ev activity.UploadEvent) { httpview.UploadHook(h.ix, h.metrics)(ev) }

// httpServer builds the web side. Off loopback, basic auth against the
// users file is required: the archive is not for anyone who can reach the
// port.
func (h *historianSide) httpServer(opts serveOptions, srv *ftpfs.Server, users *accounts.DB) (*http.Server, error) {
	auth := httpview.RequiresAuth(opts.HTTPAddr)
	web, err := httpview.New(httpview.Config{
		Index: h.ix, Root: opts.Root, Connections: srv.Connections, Users: users, RequireAuth: auth,
		Metrics: h.metrics, Logger: h.log.With("component", "http"),
		Overview: httpview.Overview{
			FTPAddr: opts.FTPAddr, ArchiveRoot: opts.Root,
			MaxUploadRate: opts.MaxUploadRate, MaxDownloadRate: opts.MaxDownloadRate,
			TLS: opts.TLSCert != "" || opts.TLSSelfSigned, TLSRequired: opts.TLSRequired,
			Version: syncer.Version,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", opts.HTTPAddr, err)
	}
	if auth {
		h.log.Info("http is reachable beyond loopback: basic auth against the users file is required", "addr", opts.HTTPAddr)
	}
	// Security: without IdleTimeout, net/http waits for a keep-alive
	// client's next request for ever, so silent clients can hold every
	// descriptor of the historian. No ReadTimeout or WriteTimeout: live
	// tails and large downloads are long by design.
	hs := &http.Server{Handler: web.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	// Live tails are streams that never end by themselves: end them when
	// the server shuts down, or they hold SIGTERM until the stop timeout.
	hs.RegisterOnShutdown(web.CloseStreams)
	return hs, nil
}

// close applies the last upload events, syncs and closes the index. Call
// it after the FTP server has stopped; calling it again is harmless.
func (h *historianSide) close() error {
	h.once.Do(func() {
		h.cancel()
		err := <-h.done
		if cerr := h.ix.Close(); err == nil {
			err = cerr
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			h.closeErr = fmt.Errorf("index: %w", err)
		}
	})
	return h.closeErr
}

// mount shows the archive read-only at --mount, with listings and
// attributes from the index (no disk walk per ls) and contents from the
// archived files.
func (h *historianSide) mount(ctx context.Context, opts serveOptions) error {
	m, err := fuseview.Mount(ctx, fuseview.NewIndexSource(h.ix), opts.Root, opts.Mount,
		fuseview.Options{AllowOther: true, Logger: h.log.With("component", "fuse")})
	switch {
	case errors.Is(err, fuseview.ErrMountpoint), errors.Is(err, fuseview.ErrUnsupported):
		return withCode(exitUsage, fmt.Errorf("--mount %s: %w", opts.Mount, err))
	case err != nil:
		return withCode(exitPartial, fmt.Errorf("--mount %s: %w", opts.Mount, err))
	}
	h.mounted = m
	h.log.Info("archive mounted read-only", "mountpoint", m.Mountpoint(), "passthrough", m.Passthrough())
	return nil
}

// unmount detaches the FUSE view, lazily if files are still open.
func (h *historianSide) unmount() error {
	if h.mounted == nil {
		return nil
	}
	m := h.mounted
	h.mounted = nil
	if err := m.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", m.Mountpoint(), err)
	}
	return nil
}
