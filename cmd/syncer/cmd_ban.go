package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncer-dev/syncer/internal/defender"
)

// banOptions are the flags of every `syncer ban` subcommand.
type banOptions struct {
	State string
	JSON  bool
}

func newBanCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ban list|remove ADDR",
		Short: "List and lift the historian's bans of addresses",
		Long: `List and lift bans. The historian bans an address after repeated failed
logins: its new connections are refused, and so is every
login on the connections it already has open. "syncer serve" keeps its bans in
<state>/` + defender.FileName + `; these commands read and edit that file, with or without a
running server, which applies a lifted ban within a second (or at once on
SIGHUP).`,
		Example: `  syncer ban list --state /var/lib/syncer
  syncer ban list --json --state /var/lib/syncer
  syncer ban remove 203.0.113.7 --state /var/lib/syncer`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("ban: missing subcommand (list or remove; see syncer ban --help)")
			}
			return usageErrorf("ban: unknown subcommand %q (list or remove; see syncer ban --help)", args[0])
		},
	}
	cmd.AddCommand(newBanListCommand(), newBanRemoveCommand())
	return cmd
}

func addBanFlags(cmd *cobra.Command, opts *banOptions) {
	cmd.Flags().StringVar(&opts.State, "state", "", "historian state directory `DIR` (the bans are DIR/"+defender.FileName+")")
}

func newBanListCommand() *cobra.Command {
	var opts banOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the bans in force",
		Long: `List the bans in force: address, end of the ban (UTC) and reason. Prints
nothing but the header when no address is banned.`,
		Example: `  syncer ban list --state /var/lib/syncer`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBanList(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	addBanFlags(cmd, &opts)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON array of {addr, until, reason}")
	addConfigFlag(cmd)
	return cmd
}

func newBanRemoveCommand() *cobra.Command {
	var opts banOptions
	cmd := &cobra.Command{
		Use:   "remove ADDR",
		Short: "Lift the ban of an address",
		Long: `Lift the ban of ADDR (an IPv4 or IPv6 address): its failed logins are
forgotten and it may connect again. Exit 1 if ADDR is not banned.`,
		Example: `  syncer ban remove 203.0.113.7 --state /var/lib/syncer`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("ban remove takes one address ADDR, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBanRemove(cmd.Context(), opts, args, cmd.OutOrStdout())
		},
	}
	addBanFlags(cmd, &opts)
	addConfigFlag(cmd)
	return cmd
}

func bansFile(opts banOptions) (string, error) {
	if opts.State == "" {
		return "", usageErrorf("--state is required (the historian's state directory)")
	}
	return filepath.Join(opts.State, defender.FileName), nil
}

func runBanList(_ context.Context, opts banOptions, out io.Writer) error {
	path, err := bansFile(opts)
	if err != nil {
		return err
	}
	bans, err := defender.ReadFile(path)
	if err != nil {
		return withCode(exitPartial, err)
	}
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(bans)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tUNTIL\tREASON")
	for _, b := range bans {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Addr, b.Until.UTC().Format(time.RFC3339), b.Reason)
	}
	return tw.Flush()
}

func runBanRemove(_ context.Context, opts banOptions, args []string, out io.Writer) error {
	path, err := bansFile(opts)
	if err != nil {
		return err
	}
	if _, err := defender.CanonicalAddr(args[0]); err != nil {
		return usageErrorf("ban remove: %v", err)
	}
	b, err := defender.RemoveFromFile(path, args[0])
	if err != nil { // defender.ErrNoBan among others
		return withCode(exitPartial, fmt.Errorf("ban remove: %w", err))
	}
	fmt.Fprintf(out, "ban of %s lifted (it would have ended %s)\n", b.Addr, b.Until.UTC().Format(time.RFC3339))
	return nil
}
