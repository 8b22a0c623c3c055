// Command syncer is a distributed log-file archive: agents push log files over
// FTP to a historian that mirrors, indexes and shows them.
//
// This package only parses flags, wires packages together and maps errors to
// exit codes; the logic lives in the syncer (the agent) and historian (the
// server) packages and those they build on: store, ftpfs, fuseview and
// httpview.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes shared by every subcommand (SPEC.md, "Exit codes of push").
const (
	exitOK          = 0
	exitPartial     = 1 // some files failed, the rest were archived
	exitUsage       = 2 // usage or configuration error
	exitUnreachable = 3 // could not reach or log in to the server
)

// exitError carries the exit code an error should end the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that main exits with code; nil stays nil.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// usageErrorf is a configuration or usage error: exit code 2.
func usageErrorf(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "syncer",
		Short: "Distributed log-file archive: agents push logs over FTP to a historian",
		Long: `syncer archives log files from many nodes on one historian.

Agents (syncer push / syncer watch) find log files by glob, remember what they
archived in a manifest, and send only new files and appended bytes over FTP.
The historian (syncer serve) keeps one tree per agent and shows it as a FUSE
mount and a web viewer.

Every flag can also be set as SYNCER_<FLAG> in the environment (dashes become
underscores) or as a key in the YAML file named by --config. A flag on the
command line wins over the environment, which wins over the file.`,
		Example: `  syncer serve --root /srv/archive --state /var/lib/syncer
  syncer user add node17 --password-stdin --state /var/lib/syncer
  syncer push --server ftp://historian:2121 --user node17 --dir /var/log/app
  syncer watch --config /etc/syncer/agent.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(subcommands()...)
	return root
}

// subcommands lists every subcommand; each lives in its own cmd_*.go file.
func subcommands() []*cobra.Command {
	var cmds []*cobra.Command
	for _, f := range commandConstructors {
		cmds = append(cmds, f())
	}
	return cmds
}

// commandConstructors is filled by the init functions of the cmd_*.go files,
// so that adding a subcommand touches only its own file.
var commandConstructors []func() *cobra.Command

func registerCommand(f func() *cobra.Command) { commandConstructors = append(commandConstructors, f) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

// run executes the command line and returns the process exit code. Users see
// one line of error, never a stack or a usage dump.
func run(ctx context.Context, args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "syncer: "+err.Error())
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Errors cobra raises itself (unknown flag, bad flag value, wrong
	// argument count) are usage errors.
	return exitUsage
}
