package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncer-dev/syncer/syncer"
)

func newWatchCommand() *cobra.Command {
	var opts pushOptions
	cmd := &cobra.Command{
		Use:   "watch --server URL --user NAME --dir DIR [--interval DURATION]",
		Short: "Push log changes to the historian continuously",
		Long: `Watch runs a push (see "syncer push --help") every --interval, for running
under systemd. While the historian is unreachable it logs one line per
failed attempt, retries with backoff (1s doubling to 1m) and catches up with
everything that changed once the historian is back.

SIGTERM or SIGINT cuts the current transfer where it is, keeps the manifest
(it only ever records bytes the server confirmed) and exits: 0 after SIGTERM
(a service's stop), 130 after SIGINT (Ctrl-C); the next start resumes from
the server's size. With --json every push prints one JSON line.
With --dry-run it makes one dry run and exits.`,
		Example: `  # Continuous archiving, every 30 seconds, from a config file
  syncer watch --config /etc/syncer/agent.yaml --interval 30s

  # Everything on the command line (password from the environment)
  SYNCER_PASSWORD=... syncer watch --server ftp://historian:2121 --user node17 \
      --dir /var/log/app --include '**/*.log' --include '**/*.log.[0-9]'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd.Context(), opts, args)
		},
	}
	addPushFlags(cmd, &opts)
	cmd.Flags().DurationVar(&opts.Interval, "interval", 10*time.Second, "push every `DURATION`")
	addConfigFlag(cmd)
	return cmd
}

func runWatch(ctx context.Context, o pushOptions, args []string) error {
	if o.DryRun {
		return runPush(ctx, o, args)
	}
	if o.Interval < 100*time.Millisecond {
		return usageErrorf("--interval %s: want at least 100ms", o.Interval)
	}
	p, err := prepare(o, true)
	if err != nil {
		return err
	}
	defer p.close()
	p.log.Info("watching", "dir", o.Dir, "server", o.Server, "agent", o.AgentID, "interval", o.Interval)
	connect := func() syncer.Conns { return syncer.NewConns(p.client, o.Parallel) }
	enc := json.NewEncoder(os.Stdout)
	done := func(sum syncer.Summary, err error) {
		if o.JSON && err == nil {
			_ = enc.Encode(sum)
		}
	}
	if err := p.agent.Watch(ctx, o.Interval, connect, done); err != nil {
		return withCode(exitPartial, err)
	}
	p.log.Info("watch stopped")
	return nil
}
