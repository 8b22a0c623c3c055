package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// tokenOptions are the flags of every `syncer token` subcommand.
type tokenOptions struct {
	State string
	Agent string // add
	JSON  bool   // list
}

func newTokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token add NAME [--agent ID] | list | remove NAME",
		Short: "Manage API tokens for the web viewer and its JSON API",
		Long: `Manage the API tokens of the historian's web viewer, for scripts that should
not hold an FTP password. A token is sent as "Authorization: Bearer TOKEN";
one made with --agent ID reads only that agent's tree, one without reads the
whole archive. Tokens only read: the web viewer never writes.

"token add" prints the token once, on standard output; the state directory
keeps only its SHA-256 (DIR/` + accounts.TokensFileName + `). A running "syncer serve"
applies added and removed tokens at the next request, without a restart. A
wrong token counts as a failed login towards the address's ban, as a wrong
password does.`,
		Example: `  TOKEN=$(syncer token add ci --agent node17 --state /var/lib/syncer)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/v1/files/node17/
  syncer token add dashboards --state /var/lib/syncer
  syncer token list --state /var/lib/syncer
  syncer token remove ci --state /var/lib/syncer`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("token: missing subcommand (add, list or remove; see syncer token --help)")
			}
			return usageErrorf("token: unknown subcommand %q (add, list or remove; see syncer token --help)", args[0])
		},
	}
	cmd.AddCommand(newTokenAddCommand(), newTokenListCommand(), newTokenRemoveCommand())
	return cmd
}

func addTokenFlags(cmd *cobra.Command, opts *tokenOptions) {
	cmd.Flags().StringVar(&opts.State, "state", "", "historian state directory `DIR` (the tokens are DIR/"+accounts.TokensFileName+")")
	addConfigFlag(cmd)
}

func tokenName(sub string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("token %s takes one token NAME, got %d arguments", sub, len(args))
		}
		return nil
	}
}

func newTokenAddCommand() *cobra.Command {
	var opts tokenOptions
	cmd := &cobra.Command{
		Use:   "add NAME [--agent ID]",
		Short: "Make a token and print it once",
		Long: `Make the API token NAME and print it on standard output: it is shown this
once only. With --agent ID the token reads only that agent's tree (/ID);
without, the whole archive.`,
		Example: `  TOKEN=$(syncer token add ci --agent node17 --state /var/lib/syncer)
  syncer token add dashboards --state /var/lib/syncer`,
		Args: tokenName("add"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenAdd(cmd.Context(), opts, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addTokenFlags(cmd, &opts)
	cmd.Flags().StringVar(&opts.Agent, "agent", "", "confine the token to the agent `ID`'s tree (default: the whole archive)")
	return cmd
}

func newTokenListCommand() *cobra.Command {
	var opts tokenOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tokens (names, never the tokens)",
		Long: `List the tokens: name, the agent it is confined to ("*" for the whole
archive) and when it was made (UTC).`,
		Example: `  syncer token list --state /var/lib/syncer
  syncer token list --json --state /var/lib/syncer | jq -r '.[].name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenList(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	addTokenFlags(cmd, &opts)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON array of {name, agent, created}")
	return cmd
}

func newTokenRemoveCommand() *cobra.Command {
	var opts tokenOptions
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a token",
		Long: `Remove the token NAME: a running "syncer serve" refuses it from the next
request on. Exit 1 if there is no such token.`,
		Example: `  syncer token remove ci --state /var/lib/syncer`,
		Args:    tokenName("remove"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenRemove(cmd.Context(), opts, args, cmd.OutOrStdout())
		},
	}
	addTokenFlags(cmd, &opts)
	return cmd
}

func (o tokenOptions) open() (*accounts.Tokens, error) {
	if o.State == "" {
		return nil, usageErrorf("--state is required (the historian's state directory)")
	}
	t, err := accounts.OpenTokens(filepath.Join(o.State, accounts.TokensFileName))
	if err != nil {
		return nil, tokenError(err)
	}
	return t, nil
}

// tokenError gives a tokens API error its exit code: a bad name or a
// malformed file is a usage or configuration error (2), the rest (name
// taken, no such token, I/O) failures (1).
func tokenError(err error) error {
	if errors.Is(err, accounts.ErrInvalidUser) || errors.Is(err, accounts.ErrTokensFile) {
		return withCode(exitUsage, err)
	}
	return withCode(exitPartial, err)
}

func runTokenAdd(_ context.Context, opts tokenOptions, args []string, out, errOut io.Writer) error {
	t, err := opts.open()
	if err != nil {
		return err
	}
	secret, tok, err := t.Add(args[0], opts.Agent)
	if err != nil {
		return tokenError(err)
	}
	scope := "the whole archive"
	if tok.Agent != "" {
		scope = "/" + tok.Agent + "/ only"
	}
	fmt.Fprintln(out, secret)
	fmt.Fprintf(errOut, "token %q added (reads %s); it is shown only this once: keep it now\n", tok.Name, scope)
	return nil
}

// tokenJSON is one token in `token list --json`.
type tokenJSON struct {
	Name    string    `json:"name"`
	Agent   string    `json:"agent"`
	Created time.Time `json:"created"`
}

func runTokenList(_ context.Context, opts tokenOptions, out io.Writer) error {
	t, err := opts.open()
	if err != nil {
		return err
	}
	list, err := t.List()
	if err != nil {
		return tokenError(err)
	}
	if opts.JSON {
		js := make([]tokenJSON, 0, len(list))
		for _, tok := range list {
			js = append(js, tokenJSON{Name: tok.Name, Agent: tok.Agent, Created: tok.Created})
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(js)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tAGENT\tCREATED")
	for _, tok := range list {
		agent := tok.Agent
		if agent == "" {
			agent = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", tok.Name, agent, tok.Created.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func runTokenRemove(_ context.Context, opts tokenOptions, args []string, out io.Writer) error {
	t, err := opts.open()
	if err != nil {
		return err
	}
	tok, err := t.Remove(args[0])
	if err != nil {
		return tokenError(err)
	}
	fmt.Fprintf(out, "token %q removed\n", tok.Name)
	return nil
}
