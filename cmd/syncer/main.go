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

	"github.com/syncer-dev/syncer/store"
	"github.com/syncer-dev/syncer/syncer"
)

// Exit codes shared by every subcommand (SPEC.md, "Exit codes of push").
const (
	exitOK          = 0
	exitPartial     = 1 // some files failed, the rest were archived
	exitUsage       = 2 // usage or configuration error
	exitUnreachable = 3 // could not reach or log in to the server
	// exitInterrupted: stopped by SIGINT, or by SIGTERM unless the command
	// is a service (see command), 128+SIGINT as shells report it.
	exitInterrupted = 130
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
	// syncer --version, as `syncer version`.
	root.Version = syncer.Version
	root.SetVersionTemplate(versionLine())
	for _, c := range commands {
		root.AddCommand(c.new())
	}
	return root
}

// A command is one subcommand; each lives in its own cmd_*.go file.
type command struct {
	new func() *cobra.Command
	// service: the command runs until it is stopped, and SIGTERM (the
	// service manager's stop, as in the systemd units) is its normal end:
	// it exits 0 after an orderly stop. Any other command cut by SIGTERM,
	// and every command cut by SIGINT, exits exitInterrupted.
	service bool
}

// commands is every subcommand (help lists them by name).
var commands = []command{
	{new: newPushCommand},
	{new: newCheckCommand},
	{new: newWatchCommand, service: true},
	{new: newServeCommand, service: true},
	{new: newMountCommand, service: true},
	{new: newUserCommand},
	{new: newBanCommand},
	{new: newTokenCommand},
	{new: newTLSCommand},
	{new: newServiceCommand},
	{new: newVersionCommand},
}

// isService reports whether the subcommand named name is a service.
func isService(name string) bool {
	for _, c := range commands {
		if c.service && c.new().Name() == name {
			return true
		}
	}
	return false
}

// interrupted is the cause of the context's cancellation when a signal
// stopped the command.
type interrupted struct{ sig os.Signal }

func (i *interrupted) Error() string {
	name := map[os.Signal]string{os.Interrupt: "SIGINT", syscall.SIGTERM: "SIGTERM"}[i.sig]
	if name == "" {
		name = i.sig.String()
	}
	return "interrupted by " + name
}

// signalContext is cancelled, with an *interrupted cause, by the first
// SIGINT or SIGTERM; later ones are ignored while the command stops in
// order. stop releases the signals.
func signalContext(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-sigs:
			cancel(&interrupted{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel(nil)
	}
}

func main() {
	ctx, stop := signalContext(context.Background())
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process exit code. Users see
// one line of error, never a stack or a usage dump.
func run(ctx context.Context, args []string) (code int) {
	root := newRootCommand()
	root.SetArgs(args)
	// A fatal error of a database that reached the command's own
	// goroutine: one line and exit 1, after the deferred closes ran.
	defer store.RecoverFatal(func(fe *store.FatalError) {
		fmt.Fprintln(os.Stderr, "syncer: "+fe.Error())
		code = exitPartial
	})
	cmd, err := root.ExecuteContextC(ctx)
	var sig *interrupted
	if errors.As(context.Cause(ctx), &sig) && !(sig.sig == syscall.SIGTERM && cmd != nil && isService(cmd.Name())) {
		// Cut short by the user (or by SIGTERM, for a command that is
		// not a service): exitInterrupted, as shells and restic do,
		// whatever the command made of its cancelled context. A failure
		// that is not the cancellation itself is told on the same line.
		msg := "syncer: " + sig.Error()
		if err != nil && !errors.Is(err, context.Canceled) {
			msg += "; " + err.Error()
		}
		fmt.Fprintln(os.Stderr, msg)
		return exitInterrupted
	}
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
