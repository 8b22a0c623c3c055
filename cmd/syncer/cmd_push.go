package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/internal/iec"
	"github.com/syncer-dev/syncer/store"
	"github.com/syncer-dev/syncer/syncer"
)

// pushOptions are the flags of `syncer push`; `syncer watch` has them all.
type pushOptions struct {
	Server         string
	User           string
	PasswordFile   string
	AgentID        string
	Dir            string
	Include        []string
	Exclude        []string
	IgnoreCase     bool
	State          string
	Parallel       int
	DryRun         bool
	JSON           bool
	TLSCA          string
	TLSFingerprint string
	FollowSymlinks bool
	OldDirs        []string
	RemoteRoot     string
	ExpectEvery    time.Duration
	Verbose, Quiet bool
	// checkOnly: a `syncer check`, whose dry run never opens the agent's
	// own manifest.
	checkOnly bool
	// Interval is watch's only extra flag.
	Interval time.Duration
}

const pushExamples = `  # One push of /var/log/app to the historian (password from a file)
  syncer push --server ftp://historian:2121 --user node17 \
      --password-file /etc/syncer/password --dir /var/log/app

  # Only some files, password from the environment, machine-readable result
  SYNCER_PASSWORD=... syncer push --server ftps://historian:2121 --user node17 \
      --dir /var/log --include 'nginx/**/*.log' --include '{app,db}/*.log' \
      --exclude '**/debug-*.log' --tls-ca /etc/syncer/ca.pem --json

  # What would be sent, without sending anything
  syncer push --config /etc/syncer/agent.yaml --dry-run`

func newPushCommand() *cobra.Command {
	var opts pushOptions
	cmd := &cobra.Command{
		Use:   "push --server URL --user NAME --dir DIR",
		Short: "Push new and appended log bytes to the historian once",
		Long: `Push scans --dir for files matching --include (default '**/*.log') and no
--exclude, compares them with the manifest in --state and sends only what
changed: new files, the appended tail of grown files, and a new version of
rewritten or truncated files (the historian keeps the old one). Files go to
/<agent-id>/<path relative to --dir> on the server. Deleted files stay
archived. A log is followed by its identity (device and inode; on Windows
volume serial number and file index; and a fingerprint of its first bytes)
through rotation: renamed (app.log ->
app.log.1 -> app.log.2), copied (copytruncate) or compressed (app.log.1.gz),
its bytes are not sent again, and the lines written just before the rotation
reach its archived copy even when the rotated name is not matched. Rotated
files moved to another directory (logrotate's olddir) are found with
--olddir.

Globs use '/' as separator; on Windows '\' is a separator too (Logs\X\*.log)
and not an escape, and names match without regard to case unless
--ignore-case=false. On Windows a log is read with delete sharing, so a
logger can rename or delete it during an upload.

The password comes from --password-file or the SYNCER_PASSWORD environment
variable, never from the command line. The manifest lives in
--state/manifest-<agent-id>/ (default state directory: $XDG_STATE_HOME/syncer
or ~/.local/state/syncer on Linux, %ProgramData%\syncer on Windows, the user
config directory elsewhere).

Exit codes: 0 all done; 1 some files failed (the rest were archived); 2 usage
or configuration error; 3 could not reach or log in to the server; 130
interrupted by SIGINT or SIGTERM (the manifest keeps what the server
confirmed; the next push resumes).`,
		Example: pushExamples,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(cmd.Context(), opts, args)
		},
	}
	addPushFlags(cmd, &opts)
	// The watch config file (scripts/agent.example.yaml) serves push too.
	addConfigFlag(cmd, "interval")
	return cmd
}

// addPushFlags defines the flags shared by push and watch.
func addPushFlags(cmd *cobra.Command, o *pushOptions) {
	host, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "historian `URL`: ftp://HOST:PORT or ftps://HOST:PORT")
	f.StringVar(&o.User, "user", "", "account `NAME` on the historian")
	f.StringVar(&o.PasswordFile, "password-file", "", "read the password from `FILE` (else $SYNCER_PASSWORD)")
	f.StringVar(&o.AgentID, "agent-id", host, "`ID` naming this agent's tree on the server")
	f.StringVar(&o.Dir, "dir", "", "log `DIR`ectory to archive")
	f.StringArrayVar(&o.Include, "include", nil, "archive files matching `GLOB` (repeatable; default '**/*.log')")
	f.StringArrayVar(&o.Exclude, "exclude", nil, "skip files matching `GLOB` (repeatable)")
	f.BoolVar(&o.IgnoreCase, "ignore-case", syncer.DefaultIgnoreCase, "match --include and --exclude without regard to letter case (default true on Windows, where NTFS names are compared so)")
	f.StringVar(&o.State, "state", syncer.DefaultStateDir(), "state `DIR`ectory holding the manifest")
	f.IntVar(&o.Parallel, "parallel", 4, "upload `N` files at once, one connection each")
	f.BoolVar(&o.DryRun, "dry-run", false, "print what would be sent; send nothing, change nothing")
	f.BoolVar(&o.JSON, "json", false, "print the result as one JSON object on stdout")
	f.StringVar(&o.TLSCA, "tls-ca", "", "PEM `FILE` of the CA that signed the ftps server's certificate")
	f.StringVar(&o.TLSFingerprint, "tls-fingerprint", "", "pin the ftps server certificate: sha256:`HEX`")
	f.BoolVar(&o.FollowSymlinks, "follow-symlinks", false, "follow symbolic links (default: skip them)")
	f.StringArrayVar(&o.OldDirs, "olddir", nil, "also look for rotated logs in `DIR` (logrotate's olddir; relative to each log's directory; repeatable)")
	f.StringVar(&o.RemoteRoot, "remote-root", "/", "server `DIR`ectory that holds the agents' trees (for third-party servers)")
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "say more: every file sent and every connection")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "say only errors: no progress bar, no summary")
	f.DurationVar(&o.ExpectEvery, "expect-every", 0, "how often this agent pushes (a cron job's period, e.g. 1h), told to the historian so it can show the agent late")
}

// prepared is what push and watch build from their flags.
type prepared struct {
	agent    *syncer.Agent
	manifest *store.Manifest
	// tmp is a dry run's temporary manifest directory, removed by close.
	tmp    string
	client ftpfs.ClientConfig
	log    *slog.Logger
	bar    *syncer.Bar
}

func (p *prepared) close() {
	if p.manifest != nil {
		if err := p.manifest.Close(); err != nil {
			p.log.Error("closing manifest", "err", err)
		}
	}
	if p.tmp != "" {
		os.RemoveAll(p.tmp)
	}
}

// prepare checks the options (usage errors, exit 2), reads the password and
// opens the manifest.
func prepare(o pushOptions, watch bool) (*prepared, error) {
	var missing []string
	if o.Dir == "" {
		missing = append(missing, "--dir")
	}
	if !o.DryRun && o.Server == "" {
		missing = append(missing, "--server")
	}
	if !o.DryRun && o.User == "" {
		missing = append(missing, "--user")
	}
	if len(missing) > 0 {
		return nil, usageErrorf("missing %s", strings.Join(missing, ", "))
	}
	if o.Parallel < 1 || o.Parallel > 64 {
		return nil, usageErrorf("--parallel %d: want 1 to 64", o.Parallel)
	}
	if fi, err := os.Stat(o.Dir); err != nil {
		return nil, usageErrorf("--dir %s: %v", o.Dir, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return nil, usageErrorf("--dir %s: not a directory", o.Dir)
	}
	if o.State == "" {
		return nil, usageErrorf("--state: no default state directory on this system; set one")
	}
	if _, err := syncer.NewMatcherCase(o.Include, o.Exclude, syncer.GlobCaseOf(o.IgnoreCase)); err != nil {
		return nil, withCode(exitUsage, err)
	}
	if o.ExpectEvery < 0 {
		return nil, usageErrorf("--expect-every %s: must not be negative", o.ExpectEvery)
	}
	var cfg ftpfs.ClientConfig
	if o.Server != "" {
		_, _, useTLS, err := ftpfs.ParseServerURL(o.Server)
		if err != nil {
			return nil, usageErrorf("--server: %v", err)
		}
		if o.TLSFingerprint != "" {
			if err := ftpfs.CheckFingerprint(o.TLSFingerprint); err != nil {
				return nil, usageErrorf("--tls-fingerprint: %v", err)
			}
		}
		if !useTLS && (o.TLSFingerprint != "" || o.TLSCA != "") {
			return nil, usageErrorf("--tls-fingerprint and --tls-ca need an ftps:// server (--server %s)", o.Server)
		}
		if o.User == "" {
			return nil, usageErrorf("missing --user (the account on %s)", o.Server)
		}
		pw, err := readPassword(o.PasswordFile)
		if err != nil {
			return nil, withCode(exitUsage, err)
		}
		cfg = ftpfs.ClientConfig{Server: o.Server, User: o.User, Password: pw, CAFile: o.TLSCA, Fingerprint: o.TLSFingerprint}
	}

	if o.Verbose && o.Quiet {
		return nil, usageErrorf("-v and -q go against each other: give one")
	}
	level := slog.LevelInfo
	var bar *syncer.Bar
	logOut := io.Writer(os.Stderr)
	if logSink != nil {
		logOut = logSink
	}
	if o.human() && !watch && !o.DryRun && !o.Quiet {
		// The bar shows progress; only warnings are printed, above it.
		level = slog.LevelWarn
		bar = syncer.NewBar(os.Stderr)
		logOut = bar.Writer(os.Stderr)
	}
	switch {
	case o.checkOnly, o.Quiet:
		level = slog.LevelError
	case o.Verbose:
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log.With("component", "ftp")

	var tmp string
	m, err := openManifest(o, &tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	dryOut := io.Writer(os.Stdout)
	switch {
	case o.checkOnly:
		dryOut = io.Discard // check reports on its own
	case o.JSON:
		dryOut = os.Stderr
	}
	sopts := syncer.Options{
		AgentID: o.AgentID, Dir: o.Dir, Include: o.Include, Exclude: o.Exclude, GlobCase: syncer.GlobCaseOf(o.IgnoreCase),
		FollowSymlinks: o.FollowSymlinks, OldDirs: o.OldDirs, Parallel: o.Parallel, DryRun: o.DryRun, DryRunOut: dryOut,
		StateDir: o.State, RemoteRoot: o.RemoteRoot, Logger: log, ExpectEvery: o.ExpectEvery,
		// Pushes run with a relaxed garbage collector; watch's idle waits
		// between them do not.
		AroundPush: relaxGC,
	}
	if watch {
		sopts.Interval = o.Interval
	}
	if bar != nil {
		sopts.Progress = bar
	}
	a, err := syncer.NewAgent(sopts, m)
	if err != nil {
		m.Close()
		os.RemoveAll(tmp)
		return nil, withCode(exitUsage, err)
	}
	return &prepared{agent: a, manifest: m, tmp: tmp, client: cfg, log: log, bar: bar}, nil
}

// openManifest opens the agent's manifest in --state. A dry run creates
// nothing: without a manifest yet it reads an empty one in a temporary
// directory, which *tmp names for the caller to remove.
func openManifest(o pushOptions, tmp *string) (*store.Manifest, error) {
	dir := store.Dir(o.State, o.AgentID)
	if o.DryRun {
		if _, err := os.Stat(dir); o.checkOnly || errors.Is(err, os.ErrNotExist) {
			d, err := os.MkdirTemp("", "syncer-dry-run-")
			if err != nil {
				return nil, fmt.Errorf("dry run: %w", err)
			}
			*tmp = d
			m, err := store.Open(d)
			if err != nil {
				return nil, fmt.Errorf("dry run: %w", err)
			}
			return m, nil
		}
	}
	m, err := store.Open(dir)
	if err != nil {
		return nil, usageErrorf("--state %s: %v (is another syncer push or watch running for agent %q?)", o.State, err, o.AgentID)
	}
	return m, nil
}

// logSink, when set, receives the agent's log lines instead of stderr: the
// Windows service sends them to its log file and the event log.
var logSink io.Writer

// readPassword reads the password from file, else from SYNCER_PASSWORD. It
// never comes from a flag: flags show in process lists.
func readPassword(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", errors.Unwrap(err))
		}
		pw, err := passwordText(b)
		if err != nil {
			return "", fmt.Errorf("--password-file %s: %w", file, err)
		}
		return pw, nil
	}
	if pw, ok := os.LookupEnv("SYNCER_PASSWORD"); ok {
		return pw, nil
	}
	return "", errors.New("no password: use --password-file FILE or the SYNCER_PASSWORD environment variable")
}

func runPush(ctx context.Context, o pushOptions, _ []string) error {
	p, err := prepare(o, false)
	if err != nil {
		return err
	}
	defer p.close()
	var conns syncer.Conns
	switch {
	case !o.DryRun:
		// The push logs in first (also when nothing changed) and fails
		// at once if it cannot.
		conns = syncer.NewConns(p.client, o.Parallel)
		defer conns.Close()
	case o.Server != "":
		// A dry run with a server checks the login too; it sends nothing.
		c, err := syncer.Connect(ctx, p.client, 1)
		if err != nil {
			return connectError(o, err)
		}
		c.Close()
	}
	sum, err := p.agent.Push(ctx, conns)
	if p.bar != nil {
		p.bar.Finish()
	}
	if err != nil {
		if syncer.IsConnectError(err) {
			return connectError(o, err)
		}
		return withCode(exitPartial, err)
	}
	if err := printSummary(o, sum); err != nil {
		return err
	}
	return failedFiles(sum)
}

// failedFiles is push's error when files failed: exit 1.
func failedFiles(sum syncer.Summary) error {
	if sum.FilesFailed == 0 {
		return nil
	}
	archived := sum.FilesNew + sum.FilesAppended + sum.FilesRewritten + sum.FilesRotated
	if archived == 0 {
		return withCode(exitPartial, fmt.Errorf("%d %s failed and nothing was archived (see the lines above)", sum.FilesFailed, plural(sum.FilesFailed, "file", "files")))
	}
	return withCode(exitPartial, fmt.Errorf("%d %s failed (see the lines above); %d archived", sum.FilesFailed, plural(sum.FilesFailed, "file", "files"), archived))
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// connectError names why a push could not start, with the fix, and gives
// its exit code: 2 when the agent's own settings are wrong (its tree is
// not the account's), 3 when the server could not be reached or refused
// the login, the address or the certificate.
func connectError(o pushOptions, err error) error {
	var (
		be *ftpfs.BannedError
		de *syncer.DeniedError
	)
	switch {
	case errors.As(err, &de):
		return usageErrorf("account %q may not write %s, the tree of --agent-id %s (the host name unless set): "+
			"give --agent-id %s, or push with an account whose home is /%s (%v)", o.User, de.Dir, o.AgentID, o.User, o.AgentID, de.Err)
	case errors.As(err, &be):
		when := "for a while"
		if !be.Until.IsZero() {
			when = "until " + be.Until.UTC().Format(time.RFC3339)
		}
		return withCode(exitUnreachable, fmt.Errorf("%s refuses this address %s after too many failed logins "+
			"(an operator can lift it: syncer ban remove ADDR on the historian) (%w)", o.Server, when, err))
	case errors.Is(err, ftpfs.ErrClientLogin):
		return withCode(exitUnreachable, fmt.Errorf("login refused for account %q by %s: check the account and the password (--password-file or SYNCER_PASSWORD) (%w)", o.User, o.Server, err))
	case errors.Is(err, ftpfs.ErrCertificate):
		return withCode(exitUnreachable, fmt.Errorf("the certificate of %s was rejected: pin it with --tls-fingerprint sha256:HEX "+
			"(syncer tls fingerprint --state DIR prints it on the historian) or name its CA with --tls-ca FILE (%w)", o.Server, err))
	default:
		return withCode(exitUnreachable, fmt.Errorf("%s not reachable (%w)", o.Server, err))
	}
}

// human reports whether a person watches stderr (a terminal): push then
// shows a progress bar and ends with a summary for people.
func (o pushOptions) human() bool { return !o.JSON && term.IsTerminal(int(os.Stderr.Fd())) }

// printSummary writes the --json object to stdout; on a terminal a summary
// for people, else a log line; nothing with -q.
func printSummary(o pushOptions, sum syncer.Summary) error {
	switch {
	case o.JSON:
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(sum); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
		return nil
	case o.Quiet:
		return nil
	case o.human() && !o.DryRun:
		_, err := io.WriteString(os.Stderr, humanSummary(sum))
		return err
	}
	attrs := []any{"agent", sum.Agent, "scanned", sum.FilesScanned, "new", sum.FilesNew, "appended", sum.FilesAppended,
		"rewritten", sum.FilesRewritten, "rotated", sum.FilesRotated, "unchanged", sum.FilesUnchanged,
		"gone", sum.FilesGone, "failed", sum.FilesFailed, "bytes_sent", sum.BytesSent, "duration_ms", sum.DurationMs}
	if sum.FilesUnrecoverable > 0 {
		attrs = append(attrs, "unrecoverable", sum.FilesUnrecoverable, "bytes_unrecoverable", sum.BytesUnrecoverable)
	}
	msg := "push done"
	if o.DryRun {
		msg = "dry run done, nothing sent"
	}
	slog.New(slog.NewTextHandler(os.Stderr, nil)).Info(msg, attrs...)
	return nil
}

// humanSummary is push's last words on a terminal, in the manner of
// rclone's: what was archived, at what rate, what failed, how long it took.
func humanSummary(sum syncer.Summary) string {
	var b strings.Builder
	elapsed := time.Duration(sum.DurationMs) * time.Millisecond
	files := sum.FilesNew + sum.FilesAppended + sum.FilesRewritten + sum.FilesRotated
	rate := ""
	if elapsed > 0 && sum.BytesSent > 0 {
		rate = ", " + iec.Rate(float64(sum.BytesSent)/elapsed.Seconds())
	}
	fmt.Fprintf(&b, "Archived:   %s in %d %s (%d new, %d appended, %d rewritten, %d rotated)%s\n", iec.Bytes(sum.BytesSent),
		files, plural(files, "file", "files"), sum.FilesNew, sum.FilesAppended, sum.FilesRewritten, sum.FilesRotated, rate)
	fmt.Fprintf(&b, "Unchanged:  %d %s", sum.FilesUnchanged, plural(sum.FilesUnchanged, "file", "files"))
	if sum.FilesGone > 0 {
		fmt.Fprintf(&b, "; %d gone from the node, kept in the archive", sum.FilesGone)
	}
	b.WriteString("\n")
	if sum.FilesFailed > 0 {
		fmt.Fprintf(&b, "Failed:     %d %s (see above; the next push retries)\n", sum.FilesFailed, plural(sum.FilesFailed, "file", "files"))
	}
	if sum.FilesUnrecoverable > 0 {
		fmt.Fprintf(&b, "Lost:       %d rotated %s gone from the node before it was archived (%s)\n", sum.FilesUnrecoverable,
			plural(sum.FilesUnrecoverable, "log", "logs"), iec.Bytes(sum.BytesUnrecoverable))
	}
	fmt.Fprintf(&b, "Elapsed:    %s\n", elapsed.Round(time.Millisecond))
	return b.String()
}

// passwordText is the password in the bytes of a password file: one line,
// UTF-8, its line ending dropped. A UTF-8 byte-order mark (PowerShell 5.1's
// Set-Content and Out-File -Encoding utf8 write one) is not part of the
// password. UTF-16 (Out-File's default in PowerShell 5.1) is refused rather
// than sent as a wrong password that counts toward the server's ban.
func passwordText(b []byte) (string, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(b, []byte("\xff\xfe")) || bytes.HasPrefix(b, []byte("\xfe\xff")) || bytes.IndexByte(b, 0) >= 0 {
		return "", errors.New("the file is UTF-16 text; save it as UTF-8 (PowerShell: Set-Content -Encoding ascii, or -Encoding utf8NoBOM in PowerShell 7)")
	}
	if !utf8.Valid(b) {
		return "", errors.New("the file is not UTF-8 text")
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
