package historian

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/fuseview"
	"github.com/syncer-dev/syncer/httpview"
	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/internal/defender"
	"github.com/syncer-dev/syncer/store"
)

// indexSide is the index and view side of a historian: the index in
// <state>/index kept up to date from the FTP server's upload events, the
// JSON API and metrics over it, and the FUSE view.
type indexSide struct {
	ix       *store.Index
	metrics  *httpview.Metrics
	uploads  *uploads
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan error
	once     sync.Once
	closeErr error
	mounted  *fuseview.Mounted
}

// indexDir is the index database inside the state directory; deleting it
// while the historian is stopped makes the next start rebuild it.
func indexDir(state string) string { return filepath.Join(state, "index") }

// openIndex opens the index over the archive and starts keeping it
// up to date (a reconcile with the disk first, in the background). failed
// is told if the index stops by itself.
func openIndex(cfg Config, content archive.Opener, log *slog.Logger, failed func(error)) (*indexSide, error) {
	ix, err := store.OpenIndex(store.IndexConfig{Dir: indexDir(cfg.State), Root: cfg.Archive.Dir(), Content: content, Logger: log.With("component", "index")})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &indexSide{ix: ix, metrics: httpview.NewMetrics(), log: log, cancel: cancel, done: make(chan error, 1)}
	h.uploads = newUploads(ix, h.metrics)
	go func() {
		err := ix.Run(ctx)
		if ctx.Err() == nil {
			failed(fmt.Errorf("index stopped: %w", err))
		}
		h.done <- err
	}()
	go func() {
		// A fatal error of the database raised in another goroutine (a
		// web request's read) stops the historian too.
		select {
		case <-ix.Failed():
			failed(ix.Err())
		case <-ctx.Done():
		}
	}()
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
func (h *indexSide) onUpload(ev activity.UploadEvent) { h.uploads.event(ev) }

// httpServer builds the web side. A login (basic auth against the users
// file, or an API token) is required unless cfg.HTTPNoLogin: the archive
// is not for anyone who can reach the port, nor for every local user. On
// loopback, only loopback Host names are served (DNS rebinding). Web
// logins go through def, the FTP server's defender: failures on either
// count together and a ban on one is a ban on both. Web downloads take
// their tokens from lim, the FTP server's buckets.
func (h *indexSide) httpServer(cfg Config, content archive.Opener, srv *ftpfs.Server, users *accounts.DB, tokens *accounts.Tokens, def *defender.Defender, lim *accounts.Limiters) (*http.Server, error) {
	offLoopback := httpview.RequiresAuth(cfg.HTTPAddr)
	auth := !cfg.HTTPNoLogin
	web, err := httpview.New(httpview.Config{
		Index: h.ix, Root: cfg.Archive.Dir(), Content: content, Connections: srv.Connections, Users: users, RequireAuth: auth,
		Tokens: tokens, LoopbackOnly: !offLoopback,
		Defender: def, MaxDownloadRate: cfg.MaxDownloadRate, Limiters: lim,
		Metrics: h.metrics, Logger: h.log.With("component", "http"),
		Overview: httpview.Overview{
			FTPAddr: cfg.FTPAddr, ArchiveRoot: cfg.Archive.Dir(),
			MaxUploadRate: cfg.MaxUploadRate, MaxDownloadRate: cfg.MaxDownloadRate,
			TLS: cfg.TLSCertFile != "" || cfg.TLSSelfSigned, TLSRequired: cfg.TLSRequired,
			Version: cfg.Version,
		},
	})
	if err != nil {
		return nil, &ConfigError{Field: "HTTPAddr", Value: cfg.HTTPAddr, Err: err}
	}
	if !auth {
		h.log.Warn("the web viewer has no login (--http-no-login): every local user reads the whole archive", "addr", cfg.HTTPAddr)
	}
	// Security: without IdleTimeout, net/http waits for a keep-alive
	// client's next request for ever, so silent clients can hold every
	// descriptor of the historian. No ReadTimeout or WriteTimeout: live
	// tails and large downloads are long by design.
	hs := &http.Server{Handler: web.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: log.New(serverLog{h.log.With("component", "http")}, "", 0)}
	// Live tails are streams that never end by themselves: end them when
	// the server shuts down, or they hold SIGTERM until the stop timeout.
	hs.RegisterOnShutdown(web.CloseStreams)
	return hs, nil
}

// serverLog takes net/http's own error lines into the historian's log:
// failed TLS handshakes (scanners, clients that do not trust the
// certificate) at debug level, others as warnings.
type serverLog struct{ log *slog.Logger }

func (l serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		l.log.Debug(msg)
	} else {
		l.log.Warn(msg)
	}
	return len(p), nil
}

// close applies the last upload events, syncs and closes the index. Call
// it after the FTP server has stopped; calling it again is harmless.
func (h *indexSide) close() error {
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

// mount shows the archive read-only at cfg.Mount, with listings and
// attributes from the index (no disk walk per ls), permission bits and
// owners from the archived files, and contents from them. Only the
// historian's user may use it unless cfg.MountAllowOther. It stays mounted
// until unmount.
func (h *indexSide) mount(cfg Config, content archive.Opener) error {
	src, err := fuseview.NewIndexSource(h.ix, cfg.Archive.Dir())
	if err != nil {
		return &ConfigError{Field: "Archive", Value: cfg.Archive.Dir(), Err: err}
	}
	// The view's own context never ends: unmount, in its place in the
	// shutdown order, detaches it.
	m, err := fuseview.Mount(context.Background(), src, cfg.Archive.Dir(), cfg.Mount,
		fuseview.Options{AllowOther: cfg.MountAllowOther, Content: content, Logger: h.log.With("component", "fuse")})
	switch {
	case errors.Is(err, fuseview.ErrMountpoint), errors.Is(err, fuseview.ErrUnsupported):
		src.Close()
		return &ConfigError{Field: "Mount", Value: cfg.Mount, Err: err}
	case err != nil:
		src.Close()
		return fmt.Errorf("mount %s: %w", cfg.Mount, err)
	}
	h.mounted = m
	// A view detached lazily still serves the files left open: the source
	// goes once the file system is gone.
	go func() {
		<-m.Done()
		src.Close()
	}()
	h.log.Info("archive mounted read-only", "mountpoint", m.Mountpoint(), "passthrough", m.Passthrough(),
		"allow_other", cfg.MountAllowOther)
	return nil
}

// unmount detaches the FUSE view, lazily if files are still open.
func (h *indexSide) unmount() error {
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
