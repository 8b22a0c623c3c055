package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/internal/statelock"
)

func init() { registerCommand(newServeCommand) }

// serveOptions are the flags of `syncer serve`.
type serveOptions struct {
	Root, State, Users string
	FTPAddr, HTTPAddr  string
	Mount              string
	PassivePorts       ftpfs.PortRange
	PublicHost         string
	TLSCert, TLSKey    string
	TLSSelfSigned      bool
	TLSRequired        bool
	MaxUploadRate      accounts.Rate
	MaxDownloadRate    accounts.Rate
	MaxConns           int
	MaxConnsPerUser    int
}

func newServeCommand() *cobra.Command {
	var opts serveOptions
	cmd := &cobra.Command{
		Use:   "serve --root DIR --state DIR",
		Short: "Run the historian: the FTP server that agents push to",
		Long: `Run the historian. Agents push log files over FTP into the archive under
--root, one tree per agent (<root>/<agent-id>/...). Accounts come from the
users file (default <state>/users.yaml, managed with "syncer user"); changes
to it apply without a restart, at once on SIGHUP.

The archive keeps everything: a file uploaded again from the start keeps its
previous content as NAME.superseded-<UTC time>; agents can only add to files
under their own directory.

The server stops cleanly on SIGINT or SIGTERM.`,
		Example: `  # A historian on loopback, state and archive in /var/lib/syncer
  syncer serve --root /var/lib/syncer/archive --state /var/lib/syncer

  # Reachable from the cluster, with FTPS required and a passive port range
  syncer serve --root /srv/archive --state /var/lib/syncer \
      --ftp 0.0.0.0:2121 --passive-ports 50000-50100 --public-host 10.0.0.5 \
      --tls-self-signed --tls-required

  # Limit every account to 10 MiB/s up, at most 200 connections
  syncer serve --root /srv/archive --state /var/lib/syncer \
      --max-upload-rate 10MiB --max-conns 200 --max-conns-per-user 8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), opts, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Root, "root", "", "archive directory (created if missing)")
	f.StringVar(&opts.State, "state", "", "state directory: users file, TLS certificate, index (created if missing)")
	f.StringVar(&opts.Users, "users", "", "users file (default <state>/users.yaml)")
	f.StringVar(&opts.FTPAddr, "ftp", ftpfs.DefaultListenAddr, "FTP listen address HOST:PORT")
	f.StringVar(&opts.HTTPAddr, "http", "127.0.0.1:8080", `web viewer listen address HOST:PORT ("" disables it)`)
	f.StringVar(&opts.Mount, "mount", "", "also mount the read-only FUSE view at DIR")
	f.Var(&opts.PassivePorts, "passive-ports", "port range LO-HI for passive data connections (default: any free port)")
	f.StringVar(&opts.PublicHost, "public-host", "", "IPv4 address announced for passive connections (behind NAT)")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "TLS certificate file (PEM) for explicit FTPS")
	f.StringVar(&opts.TLSKey, "tls-key", "", "TLS private key file (PEM), with --tls-cert")
	f.BoolVar(&opts.TLSSelfSigned, "tls-self-signed", false, "use a self-signed certificate kept in the state directory")
	f.BoolVar(&opts.TLSRequired, "tls-required", false, "refuse logins and data connections without TLS")
	f.Var(&opts.MaxUploadRate, "max-upload-rate", "upload limit per account, e.g. 10MiB (per second; 0 = unlimited)")
	f.Var(&opts.MaxDownloadRate, "max-download-rate", "download limit per account, e.g. 10MiB (per second; 0 = unlimited)")
	f.IntVar(&opts.MaxConns, "max-conns", 0, "maximum connections in total (0 = unlimited)")
	f.IntVar(&opts.MaxConnsPerUser, "max-conns-per-user", 0, "maximum connections per account (0 = unlimited)")
	addConfigFlag(cmd)
	return cmd
}

// checkServeOptions rejects flag combinations before anything is created.
func checkServeOptions(opts serveOptions) error {
	switch {
	case opts.Root == "":
		return usageErrorf("--root is required (the archive directory)")
	case opts.State == "":
		return usageErrorf("--state is required (the server's state directory)")
	case (opts.TLSCert == "") != (opts.TLSKey == ""):
		return usageErrorf("--tls-cert and --tls-key go together")
	case opts.TLSCert != "" && opts.TLSSelfSigned:
		return usageErrorf("use either --tls-cert/--tls-key or --tls-self-signed, not both")
	case opts.TLSRequired && opts.TLSCert == "" && !opts.TLSSelfSigned:
		return usageErrorf("--tls-required needs --tls-cert/--tls-key or --tls-self-signed")
	case opts.MaxConns < 0:
		return usageErrorf("--max-conns %d: must not be negative", opts.MaxConns)
	case opts.MaxConnsPerUser < 0:
		return usageErrorf("--max-conns-per-user %d: must not be negative", opts.MaxConnsPerUser)
	}
	for _, f := range []struct{ flag, path string }{{"--tls-cert", opts.TLSCert}, {"--tls-key", opts.TLSKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return usageErrorf("%s %s: %v", f.flag, f.path, errors.Unwrap(err))
		}
	}
	return nil
}

func runServe(ctx context.Context, opts serveOptions, _ []string) error {
	if err := checkServeOptions(opts); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := os.MkdirAll(opts.Root, 0o755); err != nil {
		return usageErrorf("--root: %v", err)
	}
	if err := os.MkdirAll(opts.State, 0o700); err != nil {
		return usageErrorf("--state: %v", err)
	}
	release, err := statelock.Dir(opts.State)
	if err != nil {
		return withCode(exitPartial, err)
	}
	defer release()

	usersPath := opts.Users
	if usersPath == "" {
		usersPath = filepath.Join(opts.State, "users.yaml")
	}
	// An empty users file from the start lets the watch and SIGHUP reload
	// it like any other; "syncer user add" fills it.
	if _, err := os.Stat(usersPath); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(usersPath, []byte("# syncer users file: manage it with `syncer user`\n"), 0o600); err != nil {
			return withCode(exitUsage, fmt.Errorf("--users %s: %w", usersPath, err))
		}
	}
	users, err := accounts.Open(usersPath)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if len(users.List()) == 0 {
		log.Warn("the users file has no accounts yet; add one with `syncer user add`", "users_file", usersPath)
	}

	hist, err := openHistorian(opts, log)
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("--state %s: %w", opts.State, err))
	}
	defer hist.close()

	srv, err := ftpfs.NewServer(ftpfs.ServerConfig{
		Root:            opts.Root,
		StateDir:        opts.State,
		Users:           users,
		ListenAddr:      opts.FTPAddr,
		PassivePorts:    opts.PassivePorts,
		PublicHost:      opts.PublicHost,
		TLSCertFile:     opts.TLSCert,
		TLSKeyFile:      opts.TLSKey,
		TLSSelfSigned:   opts.TLSSelfSigned,
		TLSRequired:     opts.TLSRequired,
		MaxUploadRate:   opts.MaxUploadRate,
		MaxDownloadRate: opts.MaxDownloadRate,
		MaxConns:        opts.MaxConns,
		MaxConnsPerUser: opts.MaxConnsPerUser,
		Logger:          log,
		OnUpload:        hist.onUpload,
	})
	if err != nil {
		return withCode(exitUsage, err)
	}

	var httpLn net.Listener
	var httpSrv *http.Server
	if opts.HTTPAddr != "" {
		if httpSrv, err = hist.httpServer(opts, srv, users); err != nil {
			return withCode(exitUsage, err)
		}
		if httpLn, err = net.Listen("tcp", opts.HTTPAddr); err != nil {
			return withCode(exitUsage, fmt.Errorf("--http %s: %w", opts.HTTPAddr, err))
		}
	}
	if err := srv.Start(); err != nil {
		if httpLn != nil {
			_ = httpLn.Close()
		}
		return withCode(exitUsage, fmt.Errorf("--ftp %s: %w", opts.FTPAddr, err))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Mount != "" {
		if err := hist.mount(ctx, opts); err != nil {
			_ = srv.Stop(context.Background())
			if httpLn != nil {
				_ = httpLn.Close()
			}
			return err
		}
	}
	httpDone := make(chan struct{})
	if httpLn != nil {
		go func() {
			defer close(httpDone)
			if err := httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server failed", "err", err)
				cancel()
			}
		}()
		log.Info("http server listening", "addr", httpLn.Addr().String())
	} else {
		close(httpDone)
	}

	// The users file is re-read when it changes and on SIGHUP.
	go users.Watch(ctx, log, srv.UsersChanged)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := users.Reload(); err != nil {
					log.Error("reload users file on SIGHUP; keeping the previous accounts", "err", err)
					continue
				}
				log.Info("users file reloaded on SIGHUP", "users_file", usersPath, "accounts", len(users.List()))
				srv.UsersChanged()
			}
		}
	}()

	<-ctx.Done()
	log.Info("shutting down")
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer stopCancel()
	var stopErr error
	if httpSrv != nil {
		if err := httpSrv.Shutdown(stopCtx); err != nil {
			stopErr = fmt.Errorf("stop http server: %w", err)
		}
	}
	<-httpDone
	if err := srv.Stop(stopCtx); err != nil && stopErr == nil {
		stopErr = err
	}
	// Before the index closes: the view reads from it. After the FTP
	// server: its last upload events reach the index.
	if err := hist.unmount(); err != nil && stopErr == nil {
		stopErr = err
	}
	if err := hist.close(); err != nil && stopErr == nil {
		stopErr = err
	}
	if stopErr != nil {
		return withCode(exitPartial, stopErr)
	}
	log.Info("stopped")
	return nil
}
