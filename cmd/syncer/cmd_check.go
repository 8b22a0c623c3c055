package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/syncer"
)

// maxSkew is the clock difference between node and historian that check
// warns about: versions are named by the historian's clock and commit
// records dated by the agent's, and the historian matches them by time.
const maxSkew = 5 * time.Second

// checkReport is what `syncer check` found; --json prints it.
type checkReport struct {
	Server         string   `json:"server"`
	User           string   `json:"user"`
	Agent          string   `json:"agent"`
	TLS            string   `json:"tls,omitempty"`
	Fingerprint    string   `json:"fingerprint,omitempty"`
	Pinned         bool     `json:"pinned,omitempty"`
	ServerVersion  string   `json:"server_version,omitempty"`
	ClockSkewMs    *int64   `json:"clock_skew_ms,omitempty"`
	Tree           string   `json:"tree"`
	Files          int64    `json:"files_matched"`
	Unmatched      []string `json:"unmatched_patterns,omitempty"`
	Warnings       []string `json:"warnings"`
	DurationMillis int64    `json:"duration_ms"`
}

func newCheckCommand() *cobra.Command {
	var opts pushOptions
	cmd := &cobra.Command{
		Use:   "check --server URL --user NAME --dir DIR",
		Short: "Check an agent's settings: reach the historian, log in, verify TLS, check write access",
		Long: `Check takes the flags and config file of push and watch and tries them
without sending a log: it connects to --server, verifies its certificate
(--tls-fingerprint or --tls-ca), logs in, checks that the account may write
this agent's tree (/<agent-id>/), reports the historian's version and how far
its clock is from this node's, and counts the files --include selects under
--dir (warning about patterns that select nothing). It reads neither the
manifest nor the state directory, so it runs beside a running watch.

Exit codes, as push: 0 the settings work; 2 usage or configuration error
(including a tree the account may not write); 3 could not reach or log in
to the server (refused password, banned address, rejected certificate).`,
		Example: `  # Before enabling the service: do the agent's settings work?
  syncer check --config /etc/syncer/agent.yaml

  # The same from flags, as JSON for a script
  SYNCER_PASSWORD=... syncer check --server ftps://historian:2121 --user node17 \
      --dir /var/log/app --tls-fingerprint sha256:6f1c... --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	addPushFlags(cmd, &opts)
	// watch's flag, so that a watch config file checks as it is.
	cmd.Flags().DurationVar(&opts.Interval, "interval", 10*time.Second, "watch's push interval (checked, not used)")
	addConfigFlag(cmd)
	return cmd
}

func runCheck(ctx context.Context, out io.Writer, o pushOptions) error {
	if o.Server == "" {
		return usageErrorf("missing --server")
	}
	start := time.Now()
	// The local half is a dry run over a fresh, temporary manifest: the
	// agent's own is left alone (a watch may hold it).
	o.DryRun, o.checkOnly = true, true
	p, err := prepare(o, true)
	if err != nil {
		return err
	}
	defer p.close()
	rep := checkReport{Server: o.Server, User: o.User, Agent: o.AgentID, Warnings: []string{}}

	c, err := ftpfs.Dial(ctx, p.client)
	if err != nil {
		return connectError(o, err)
	}
	defer c.Close()
	loggedIn := time.Now()
	t := c.TLS()
	rep.TLS, rep.Fingerprint, rep.Pinned = t.Version, t.Fingerprint, t.Pinned
	hello := c.Hello()
	rep.ServerVersion = hello.Version
	if !hello.Time.IsZero() {
		skew := hello.Time.Sub(loggedIn).Milliseconds()
		rep.ClockSkewMs = &skew
		if d := time.Duration(abs(skew)) * time.Millisecond; d > maxSkew {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("the clocks of this node and the historian differ by %s: keep both in time (NTP)", d.Round(100*time.Millisecond)))
		}
	}
	rep.Tree = strings.TrimSuffix(path.Join("/", o.RemoteRoot), "/") + "/" + o.AgentID + "/"
	if err := c.MkdirAll(ctx, strings.TrimSuffix(rep.Tree, "/")); err != nil {
		return connectError(o, &syncer.DeniedError{AgentID: o.AgentID, Dir: rep.Tree, Err: err})
	}

	sum, err := p.agent.Push(ctx, nil)
	if err != nil {
		return withCode(exitPartial, err)
	}
	rep.Files, rep.Unmatched = sum.FilesScanned, sum.UnmatchedPatterns
	for _, pat := range rep.Unmatched {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("--include %q selects no file under %s", pat, o.Dir))
	}
	rep.DurationMillis = time.Since(start).Milliseconds()
	if o.JSON {
		return json.NewEncoder(out).Encode(rep)
	}
	printCheck(out, o, rep)
	return nil
}

func printCheck(out io.Writer, o pushOptions, rep checkReport) {
	line := func(what, format string, args ...any) {
		fmt.Fprintf(out, "%-10s %s\n", what, fmt.Sprintf(format, args...))
	}
	switch {
	case rep.TLS == "":
		line("server", "%s: reached, no TLS (passwords and logs cross the network in clear text)", rep.Server)
	case rep.Pinned:
		line("server", "%s: reached, %s, certificate %s (pinned)", rep.Server, rep.TLS, rep.Fingerprint)
	default:
		line("server", "%s: reached, %s, certificate %s (verified by the CA)", rep.Server, rep.TLS, rep.Fingerprint)
	}
	line("login", "account %s: accepted", rep.User)
	switch {
	case rep.ServerVersion == "":
		line("historian", "not a syncer historian, or one older than this check: version and clock unknown")
	case rep.ClockSkewMs == nil:
		line("historian", "syncer %s; clock unknown", rep.ServerVersion)
	default:
		skew := time.Duration(*rep.ClockSkewMs) * time.Millisecond
		how := "ahead of"
		if skew < 0 {
			how = "behind"
		}
		line("historian", "syncer %s; its clock is %s %s this node's", rep.ServerVersion, time.Duration(abs(int64(skew))).Round(time.Millisecond), how)
	}
	line("tree", "%s: writable", rep.Tree)
	line("logs", "%d %s under %s selected by --include %s", rep.Files, plural(rep.Files, "file", "files"), o.Dir, strings.Join(includes(o), " "))
	for _, w := range rep.Warnings {
		fmt.Fprintf(out, "warning    %s\n", w)
	}
	fmt.Fprintf(out, "ok: push and watch can archive with these settings (%d ms)\n", rep.DurationMillis)
}

func includes(o pushOptions) []string {
	in := o.Include
	if len(in) == 0 {
		in = []string{syncer.DefaultInclude}
	}
	q := make([]string, len(in))
	for i, p := range in {
		q[i] = "'" + p + "'"
	}
	return q
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
