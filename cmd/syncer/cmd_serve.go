package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"

	// Named apart from the tests' in-process FTP fixture, type historian.
	hist "github.com/syncer-dev/syncer/historian"
	"github.com/syncer-dev/syncer/syncer"
)

// serveOptions are the flags of `syncer serve`.
type serveOptions struct {
	Root, State, Users string
	FTPAddr, HTTPAddr  string
	HTTPTLSCert        string
	HTTPTLSKey         string
	HTTPNoLogin        bool
	Mount              string
	MountAllowOther    bool
	ArchiveFileMode    ftpfs.Mode
	ArchiveDirMode     ftpfs.Mode
	PassivePorts       ftpfs.PortRange
	PublicHost         string
	TLSCert, TLSKey    string
	TLSSelfSigned      bool
	TLSSAN             []string
	TLSRequired        bool
	TLSDataNoReuse     bool
	MaxUploadRate      accounts.Rate
	MaxDownloadRate    accounts.Rate
	MaxConns           int
	MaxConnsPerUser    int
	MaxConnsPerIP      int
	MaxUnauthConns     int
	LoginTimeout       time.Duration
	IdleTimeout        time.Duration
	Log                logOptions
	Tier               tierOptions
	tierChanged        func(string) bool
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

Archived files are created with mode 0640 and directories with 0750
(--archive-file-mode, --archive-dir-mode), owned by the user serve runs as:
only that user and its group may read them. Files archived before keep their
modes. With --mount, the view shows the archive's own modes and owners and the
kernel enforces them; only the user serve runs as may use it, unless
--mount-allow-other lets every local user in (each still only as far as the
modes allow: chmod 700 on an agent's tree keeps others out of it).

The front door: a connection must log in within --login-timeout; one
address may hold --max-conns-per-ip connections; connections not logged in
yet share their own pool (--max-unauth-conns: when it is full, the address
holding most of it loses its oldest), so --max-conns, which counts logged-in
sessions, is never taken by strangers. Five failed logins from an address
within 10 minutes ban it for 15 minutes, on every connection it has open;
bans are kept in <state>/bans.json ("syncer ban list|remove").

The web viewer (--http, default 127.0.0.1:8080) needs a login: an account of
the users file (basic auth; an agent account sees its own tree, an admin
everything) or an API token ("syncer token add", sent as "Authorization:
Bearer TOKEN"). Only on a loopback --http may --http-no-login let every local
user in without one. On loopback it answers only to the Host names localhost,
127.x.x.x and [::1] (DNS rebinding). It speaks HTTPS with --http-tls-cert/
--http-tls-key, or else with the FTP server's certificate (--tls-cert/--tls-key
or --tls-self-signed; the same fingerprint); off loopback it must: serve
refuses to start a viewer off loopback with plain HTTP. A TLS-terminating
proxy on this machine may forward to a loopback --http (with a loopback Host:
nginx's default, "proxy_set_header Host $proxy_host"). Certificates are checked
hourly while serve runs: a self-signed one is renewed within 30 days of its
end, certificate files that changed are read again; new connections get the
new certificate without a restart.
With TLS, a data connection must resume its control connection's TLS
session (like vsftpd's require_ssl_reuse): anyone else on a client's address
who connects to the passive port is dropped while the transfer waits for the
client. syncer's agent, curl (TLS 1.3) and lftp resume; for a client that
cannot (Python's stock ftplib, curl held to TLS 1.2),
--tls-allow-data-without-reuse lifts the rule.

The server stops in order on SIGINT or SIGTERM (web viewer, FTP server, FUSE
view, index) and exits: 0 after SIGTERM, 130 after SIGINT (Ctrl-C).`,
		Example: `  # A historian on loopback, state and archive in /var/lib/syncer
  syncer serve --root /var/lib/syncer/archive --state /var/lib/syncer

  # Reachable from the cluster, with FTPS required and a passive port range;
  # the self-signed certificate names 10.0.0.5 and historian.example.org
  syncer serve --root /srv/archive --state /var/lib/syncer \
      --ftp 0.0.0.0:2121 --passive-ports 50000-50100 --public-host 10.0.0.5 \
      --tls-self-signed --tls-san 10.0.0.5,historian.example.org --tls-required

  # Limit every account to 10 MiB/s up, at most 200 sessions
  syncer serve --root /srv/archive --state /var/lib/syncer \
      --max-upload-rate 10MiB --max-conns 200 --max-conns-per-user 8

  # The FUSE view for the members of "logreaders" as well: in a setgid
  # archive, what serve creates takes the archive's group
  chgrp logreaders /srv/archive && chmod 2750 /srv/archive
  syncer serve --root /srv/archive --state /var/lib/syncer \
      --mount /archive --mount-allow-other

  # The web viewer for the cluster over HTTPS with the FTP server's
  # self-signed certificate (log in with an account, or a token:
  # syncer token add ci --state /var/lib/syncer)
  syncer serve --root /srv/archive --state /var/lib/syncer \
      --ftp 0.0.0.0:2121 --tls-self-signed --tls-san historian.example.org \
      --http 0.0.0.0:8443

  # The web viewer with its own certificate files
  syncer serve --root /srv/archive --state /var/lib/syncer --http 0.0.0.0:8443 \
      --http-tls-cert /etc/ssl/historian.pem --http-tls-key /etc/ssl/historian.key

  # A single-user machine: the loopback viewer without a login
  syncer serve --root /srv/archive --state /var/lib/syncer --http-no-login

  # Agents behind one NAT address: allow more connections per address
  syncer serve --root /srv/archive --state /var/lib/syncer \
      --max-conns-per-ip 200 --login-timeout 30s

  # Sealed bytes in an S3-compatible bucket (keys from AWS_ACCESS_KEY_ID/
  # AWS_SECRET_ACCESS_KEY or ~/.aws/credentials), local copies freed after a
  # week, everything deleted after 400 days but node17's kept for ever
  syncer serve --root /srv/archive --state /var/lib/syncer \
      --tier s3://logs/historian1 --tier-endpoint https://rgw.example.org \
      --tier-path-style --local-keep 7d --retain 400d --retain-agent node17=0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.tierChanged = cmd.Flags().Changed
			return runServe(cmd.Context(), opts, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Root, "root", "", "archive directory (created if missing)")
	f.StringVar(&opts.State, "state", "", "state directory: users file, TLS certificate, index (created if missing)")
	f.StringVar(&opts.Users, "users", "", "users file (default <state>/users.yaml)")
	f.StringVar(&opts.FTPAddr, "ftp", ftpfs.DefaultListenAddr, "FTP listen address HOST:PORT")
	f.StringVar(&opts.HTTPAddr, "http", "127.0.0.1:8080", `web viewer listen address HOST:PORT ("" disables it)`)
	f.StringVar(&opts.HTTPTLSCert, "http-tls-cert", "", "TLS certificate file (PEM) for the web viewer's HTTPS (default: the FTP server's certificate, if any)")
	f.StringVar(&opts.HTTPTLSKey, "http-tls-key", "", "TLS private key file (PEM), with --http-tls-cert")
	f.BoolVar(&opts.HTTPNoLogin, "http-no-login", false, "let every request to the web viewer in without a login, as an admin (only with a loopback --http: every local user then reads the whole archive)")
	f.StringVar(&opts.Mount, "mount", "", "also mount the read-only FUSE view at DIR (for the user serve runs as only, see --mount-allow-other)")
	f.BoolVar(&opts.MountAllowOther, "mount-allow-other", false, "let every local user use the mount, each as the archived files' modes and owners allow")
	opts.ArchiveFileMode, opts.ArchiveDirMode = ftpfs.DefaultArchiveFileMode, ftpfs.DefaultArchiveDirMode
	f.Var(&opts.ArchiveFileMode, "archive-file-mode", "mode of the files the server creates in the archive (octal; owner rw needed, others may not write)")
	f.Var(&opts.ArchiveDirMode, "archive-dir-mode", "mode of the directories the server creates in the archive (octal; owner rwx needed, others may not write)")
	f.Var(&opts.PassivePorts, "passive-ports", "port range LO-HI for passive data connections (default: any free port)")
	f.StringVar(&opts.PublicHost, "public-host", "", "IPv4 address announced for passive connections (behind NAT)")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "TLS certificate file (PEM) for explicit FTPS")
	f.StringVar(&opts.TLSKey, "tls-key", "", "TLS private key file (PEM), with --tls-cert")
	f.BoolVar(&opts.TLSSelfSigned, "tls-self-signed", false, "use a self-signed certificate kept in the state directory, for FTPS and the web viewer (valid a year, renewed within 30 days of its end, also while serve runs)")
	f.StringSliceVar(&opts.TLSSAN, "tls-san", nil, "DNS names and IP addresses the self-signed certificate is made for (default: the --ftp address, or loopback when it is a wildcard, and --public-host)")
	f.BoolVar(&opts.TLSRequired, "tls-required", false, "refuse logins and data connections without TLS")
	f.BoolVar(&opts.TLSDataNoReuse, "tls-allow-data-without-reuse", false, "accept TLS data connections that do not resume their control connection's TLS session (unsafe: anyone on a client's address can then take over its transfers; only for clients that cannot resume, such as Python's stock ftplib or curl held to TLS 1.2)")
	f.Var(&opts.MaxUploadRate, "max-upload-rate", "upload limit per account, e.g. 10MiB (per second; 0 = unlimited)")
	f.Var(&opts.MaxDownloadRate, "max-download-rate", "download limit per account, FTP and web together (one budget), e.g. 10MiB (per second; 0 = unlimited)")
	f.IntVar(&opts.MaxConns, "max-conns", 0, "maximum logged-in sessions in total (0 = unlimited; connections not logged in yet have their own pool)")
	f.IntVar(&opts.MaxConnsPerUser, "max-conns-per-user", 0, "maximum sessions per account (0 = unlimited)")
	f.IntVar(&opts.MaxConnsPerIP, "max-conns-per-ip", ftpfs.DefaultMaxConnsPerIP, "maximum connections from one address, logged in or not (0 = unlimited)")
	f.IntVar(&opts.MaxUnauthConns, "max-unauth-conns", ftpfs.DefaultMaxUnauthConns, "maximum connections not logged in yet, all addresses together")
	f.DurationVar(&opts.LoginTimeout, "login-timeout", ftpfs.DefaultLoginTimeout, "close a connection that has not logged in within this time")
	f.DurationVar(&opts.IdleTimeout, "idle-timeout", ftpfs.DefaultIdleTimeout, "close a session silent, or without a file command or transfer, for this long")
	addTierFlags(f, &opts.Tier)
	f.StringVar(&opts.Log.Level, "log-level", "info", "log `LEVEL`: debug (every login and upload), info (a summary a minute, changes, refusals), warn, error")
	f.StringVar(&opts.Log.Format, "log-format", "text", "log `FORMAT` on stderr: text (key=value) or json (one object a line)")
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
	case (opts.HTTPTLSCert == "") != (opts.HTTPTLSKey == ""):
		return usageErrorf("--http-tls-cert and --http-tls-key go together")
	case opts.TLSCert != "" && opts.TLSSelfSigned:
		return usageErrorf("use either --tls-cert/--tls-key or --tls-self-signed, not both")
	case opts.TLSRequired && opts.TLSCert == "" && !opts.TLSSelfSigned:
		return usageErrorf("--tls-required needs --tls-cert/--tls-key or --tls-self-signed")
	case len(opts.TLSSAN) > 0 && !opts.TLSSelfSigned:
		return usageErrorf("--tls-san needs --tls-self-signed (it names what the self-signed certificate is made for)")
	case opts.MountAllowOther && opts.Mount == "":
		return usageErrorf("--mount-allow-other needs --mount DIR")
	case opts.MaxConns < 0:
		return usageErrorf("--max-conns %d: must not be negative", opts.MaxConns)
	case opts.MaxConnsPerUser < 0:
		return usageErrorf("--max-conns-per-user %d: must not be negative", opts.MaxConnsPerUser)
	case opts.MaxConnsPerIP < 0:
		return usageErrorf("--max-conns-per-ip %d: must not be negative", opts.MaxConnsPerIP)
	case opts.MaxUnauthConns < 1:
		return usageErrorf("--max-unauth-conns %d: must be at least 1", opts.MaxUnauthConns)
	case opts.LoginTimeout <= 0:
		return usageErrorf("--login-timeout %s: must be positive", opts.LoginTimeout)
	case opts.IdleTimeout < time.Second:
		return usageErrorf("--idle-timeout %s: must be at least 1s", opts.IdleTimeout)
	}
	for _, f := range []struct{ flag, path string }{{"--tls-cert", opts.TLSCert}, {"--tls-key", opts.TLSKey},
		{"--http-tls-cert", opts.HTTPTLSCert}, {"--http-tls-key", opts.HTTPTLSKey}} {
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
	changed := opts.tierChanged
	if changed == nil {
		changed = func(string) bool { return false }
	}
	tierCfg, err := opts.Tier.config(changed)
	if err != nil {
		return err
	}
	log, err := opts.Log.logger(os.Stderr)
	if err != nil {
		return err
	}
	perIP := opts.MaxConnsPerIP
	if perIP == 0 {
		perIP = -1 // the flag's "unlimited" is the library's negative
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	h, err := hist.New(hist.Config{
		Archive:         hist.LocalArchive(opts.Root),
		State:           opts.State,
		UsersFile:       opts.Users,
		FTPAddr:         opts.FTPAddr,
		HTTPAddr:        opts.HTTPAddr,
		HTTPTLSCertFile: opts.HTTPTLSCert,
		HTTPTLSKeyFile:  opts.HTTPTLSKey,
		HTTPNoLogin:     opts.HTTPNoLogin,
		Mount:           opts.Mount,
		MountAllowOther: opts.MountAllowOther,
		ArchiveFileMode: opts.ArchiveFileMode,
		ArchiveDirMode:  opts.ArchiveDirMode,
		PassivePorts:    opts.PassivePorts,
		PublicHost:      opts.PublicHost,
		TLSCertFile:     opts.TLSCert,
		TLSKeyFile:      opts.TLSKey,
		TLSSelfSigned:   opts.TLSSelfSigned,
		TLSHosts:        opts.TLSSAN,
		TLSRequired:     opts.TLSRequired,
		TLSDataNoReuse:  opts.TLSDataNoReuse,
		MaxUploadRate:   opts.MaxUploadRate,
		MaxDownloadRate: opts.MaxDownloadRate,
		MaxConns:        opts.MaxConns,
		MaxConnsPerUser: opts.MaxConnsPerUser,
		MaxConnsPerIP:   perIP,
		MaxUnauthConns:  opts.MaxUnauthConns,
		LoginTimeout:    opts.LoginTimeout,
		IdleTimeout:     opts.IdleTimeout,
		Reload:          hup,
		Version:         syncer.Version,
		Logger:          log,
		Tier:            tierCfg,
	})
	if err == nil {
		err = h.Run(ctx)
	}
	return serveError(err)
}

// serveFlags names the flag behind each historian.Config field.
var serveFlags = map[string]string{
	"Archive": "--root", "State": "--state", "UsersFile": "--users",
	"FTPAddr": "--ftp", "HTTPAddr": "--http", "Mount": "--mount",
	"ArchiveFileMode": "--archive-file-mode", "ArchiveDirMode": "--archive-dir-mode",
	"TLSHosts": "--tls-san", "TLSCertFile": "--tls-cert",
	"HTTPTLSCertFile": "--http-tls-cert", "HTTPNoLogin": "--http-no-login",
	"Tier": "--tier",
}

// serveError gives err its exit code: a configuration error (2), named by
// its flag, or a failure of the running historian (1).
func serveError(err error) error {
	var ce *hist.ConfigError
	if !errors.As(err, &ce) {
		return withCode(exitPartial, err)
	}
	msg := ce.Error()
	if flag, ok := serveFlags[ce.Field]; ok {
		msg = (&hist.ConfigError{Field: flag, Value: ce.Value, Err: ce.Err}).Error()
	}
	return withCode(exitUsage, errors.New(msg))
}
