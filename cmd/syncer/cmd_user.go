package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"golang.org/x/term"
)

// userOptions are the flags every `syncer user` subcommand takes.
type userOptions struct {
	Users string // users file
	State string // state directory holding users.yaml
}

// userAddOptions are the flags of `syncer user add`.
type userAddOptions struct {
	userOptions
	Perm            string
	Admin           bool
	PasswordStdin   bool
	MaxUploadRate   accounts.Rate
	MaxDownloadRate accounts.Rate
}

// userPasswdOptions are the flags of `syncer user passwd`.
type userPasswdOptions struct {
	userOptions
	PasswordStdin bool
}

// userListOptions are the flags of `syncer user list`.
type userListOptions struct {
	userOptions
	JSON bool
}

// userIO is where a user subcommand reads the password and writes output.
type userIO struct {
	in          io.Reader
	out, errOut io.Writer
}

func cmdIO(cmd *cobra.Command) userIO {
	return userIO{in: cmd.InOrStdin(), out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr()}
}

func newUserCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user add|remove|list|passwd",
		Short: "Manage the FTP accounts of the historian",
		Long: `Manage the accounts in the historian's users file (YAML, bcrypt password
hashes, mode 0600). Every subcommand takes --users FILE or --state DIR (the
file is then DIR/users.yaml). A running "syncer serve" picks up changes
without a restart.

An agent account NAME may create and append files only under /NAME/ in the
archive; an admin account (--admin) has its permissions on the whole archive.
Passwords are read from a terminal (asked twice, not echoed) or, with
--password-stdin, as one line from standard input; never from the command
line, where other users could read them in the process list.`,
		Example: `  syncer user add node17 --state /var/lib/syncer
  echo "$PW" | syncer user add node17 --password-stdin --users /etc/syncer/users.yaml
  syncer user add ops --admin --state /var/lib/syncer
  syncer user list --state /var/lib/syncer
  syncer user passwd node17 --state /var/lib/syncer
  syncer user remove node17 --state /var/lib/syncer`,
		Args: cobra.ArbitraryArgs,
		// Without this, cobra would print help and exit 0 for "syncer user
		// bogus"; a mistyped subcommand in a script must fail.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("user: missing subcommand (add, remove, list or passwd; see syncer user --help)")
			}
			return usageErrorf("user: unknown subcommand %q (add, remove, list or passwd; see syncer user --help)", args[0])
		},
	}
	cmd.AddCommand(newUserAddCommand(), newUserRemoveCommand(), newUserListCommand(), newUserPasswdCommand())
	return cmd
}

// addUserFileFlags adds --users and --state to cmd.
func addUserFileFlags(cmd *cobra.Command, opts *userOptions) {
	cmd.Flags().StringVar(&opts.Users, "users", "", "users `FILE` (YAML)")
	cmd.Flags().StringVar(&opts.State, "state", "", "historian state directory `DIR`; the users file is DIR/"+accounts.FileName)
}

// oneName checks that a subcommand got exactly one NAME.
func oneName(sub string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf("user %s takes one account NAME, got %d arguments", sub, len(args))
		}
		return nil
	}
}

func newUserAddCommand() *cobra.Command {
	var opts userAddOptions
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Create an account",
		Long: `Create an account. NAME is 1-64 letters, digits, '.', '_' or '-' and does not
start with '.' or '-'; it is also the agent's directory in the archive.

Permission letters (as pyftpdlib): e cwd, l list, r retrieve, a append,
d delete, f rename, m mkdir, w store, M chmod, T set mtime. The default is
` + accounts.DefaultAgentPerm + ` for an agent (confined to /NAME/) and ` + accounts.DefaultAdminPerm + ` for an admin
(the whole archive).`,
		Example: `  # Asks for the password twice on the terminal
  syncer user add node17 --state /var/lib/syncer

  # From a script or a secret store: the password is the first line of stdin
  printf '%s\n' "$PW" | syncer user add node17 --password-stdin --state /var/lib/syncer

  # An administrator, and a read-only auditor
  syncer user add ops --admin --state /var/lib/syncer
  syncer user add audit --admin --perm elr --state /var/lib/syncer

  # An agent limited to 10 MiB/s uploads
  syncer user add node17 --max-upload-rate 10MiB --state /var/lib/syncer`,
		Args: oneName("add"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUserAdd(cmd.Context(), opts, args, cmdIO(cmd))
		},
	}
	addUserFileFlags(cmd, &opts.userOptions)
	f := cmd.Flags()
	f.StringVar(&opts.Perm, "perm", "", "permission `LETTERS` (default "+accounts.DefaultAgentPerm+", or "+accounts.DefaultAdminPerm+" with --admin)")
	f.BoolVar(&opts.Admin, "admin", false, "administrator: permissions on the whole archive instead of /NAME/")
	f.BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the password as one line from standard input")
	f.Var(&opts.MaxUploadRate, "max-upload-rate", "this account's upload limit, e.g. 10MiB (per second; 0 = the server's)")
	f.Var(&opts.MaxDownloadRate, "max-download-rate", "this account's download limit, e.g. 10MiB (per second; 0 = the server's)")
	addConfigFlag(cmd)
	return cmd
}

func newUserRemoveCommand() *cobra.Command {
	var opts userOptions
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Delete an account (its archived files stay)",
		Long: `Delete an account. Nothing in the archive is deleted: the files the agent
pushed stay readable under /NAME/. Sessions of the account already logged in
to a running server are ended when the server reloads the users file.`,
		Example: `  syncer user remove node17 --state /var/lib/syncer`,
		Args:    oneName("remove"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUserRemove(cmd.Context(), opts, args, cmdIO(cmd))
		},
	}
	addUserFileFlags(cmd, &opts)
	addConfigFlag(cmd)
	return cmd
}

func newUserListCommand() *cobra.Command {
	var opts userListOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the accounts",
		Long: `List the accounts: name, permissions, admin, home and rate limits ("-" is the
server default). --json prints a JSON array for scripts; rates there are in
bytes per second. Password hashes are never printed.`,
		Example: `  syncer user list --state /var/lib/syncer
  syncer user list --json --users /etc/syncer/users.yaml | jq -r '.[].name'`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 {
				return usageErrorf("user list takes no arguments, got %q", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUserList(cmd.Context(), opts, args, cmdIO(cmd))
		},
	}
	addUserFileFlags(cmd, &opts.userOptions)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print a JSON array")
	addConfigFlag(cmd)
	return cmd
}

func newUserPasswdCommand() *cobra.Command {
	var opts userPasswdOptions
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set an account's password",
		Long: `Set an account's password. New logins need the new password; sessions already
logged in stay.`,
		Example: `  syncer user passwd node17 --state /var/lib/syncer
  printf '%s\n' "$NEW_PW" | syncer user passwd node17 --password-stdin --state /var/lib/syncer`,
		Args: oneName("passwd"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUserPasswd(cmd.Context(), opts, args, cmdIO(cmd))
		},
	}
	addUserFileFlags(cmd, &opts.userOptions)
	cmd.Flags().BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the password as one line from standard input")
	addConfigFlag(cmd)
	return cmd
}

// usersPath returns the users file the options name; --users wins over
// --state, as for `syncer serve`.
func (o userOptions) usersPath() (string, error) {
	switch {
	case o.Users != "":
		return o.Users, nil
	case o.State != "":
		return filepath.Join(o.State, accounts.FileName), nil
	}
	return "", usageErrorf("no users file: give --users FILE or --state DIR")
}

// openUsers opens the users file; a malformed file is a configuration
// error (exit 2).
func (o userOptions) openUsers() (*accounts.DB, error) {
	p, err := o.usersPath()
	if err != nil {
		return nil, err
	}
	db, err := accounts.Open(p)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return db, nil
}

// userError gives a users API error its exit code: invalid input and
// malformed files are usage or configuration errors (2), the rest (name
// taken, no such user, I/O) are failures (1).
func userError(err error) error {
	if errors.Is(err, accounts.ErrInvalidUser) || errors.Is(err, accounts.ErrUsersFile) {
		return withCode(exitUsage, err)
	}
	return withCode(exitPartial, err)
}

func runUserAdd(_ context.Context, opts userAddOptions, args []string, stdio userIO) error {
	name := args[0]
	// Check everything that does not need the password first, so that a
	// typo fails before anyone types a password.
	if err := accounts.ValidateName(name); err != nil {
		return withCode(exitUsage, err)
	}
	if err := accounts.ValidatePerm(opts.Perm); err != nil {
		return withCode(exitUsage, err)
	}
	db, err := opts.openUsers()
	if err != nil {
		return err
	}
	for _, u := range db.List() {
		if strings.EqualFold(u.Name, name) {
			return withCode(exitPartial, fmt.Errorf("add user %q: %w in %s", name, accounts.ErrUserExists, db.Path()))
		}
	}
	password, err := readNewPassword(opts.PasswordStdin, name, stdio)
	if err != nil {
		return err
	}
	u := accounts.User{
		Name:            name,
		Perm:            opts.Perm,
		Admin:           opts.Admin,
		MaxUploadRate:   opts.MaxUploadRate,
		MaxDownloadRate: opts.MaxDownloadRate,
	}
	if err := db.Add(u, password); err != nil {
		return userError(err)
	}
	u, _ = db.Lookup(name)
	kind := "agent account"
	if u.Admin {
		kind = "admin account"
	}
	fmt.Fprintf(stdio.out, "added %s %s (perm %s, home %s) to %s\n", kind, u.Name, u.Perm, u.Home, db.Path())
	return nil
}

func runUserRemove(_ context.Context, opts userOptions, args []string, stdio userIO) error {
	db, err := opts.openUsers()
	if err != nil {
		return err
	}
	u, ok := db.Lookup(args[0])
	if err := db.Remove(args[0]); err != nil {
		return userError(fmt.Errorf("%w in %s", err, db.Path()))
	}
	if ok {
		fmt.Fprintf(stdio.out, "removed account %s from %s; its archive under %s is kept\n", u.Name, db.Path(), u.Home)
	}
	return nil
}

func runUserPasswd(_ context.Context, opts userPasswdOptions, args []string, stdio userIO) error {
	name := args[0]
	db, err := opts.openUsers()
	if err != nil {
		return err
	}
	if _, ok := db.Lookup(name); !ok {
		return withCode(exitPartial, fmt.Errorf("set password of %q: %w in %s", name, accounts.ErrNoUser, db.Path()))
	}
	password, err := readNewPassword(opts.PasswordStdin, name, stdio)
	if err != nil {
		return err
	}
	if err := db.SetPassword(name, password); err != nil {
		return userError(err)
	}
	fmt.Fprintf(stdio.out, "password of %s changed in %s\n", name, db.Path())
	return nil
}

// userListEntry is one account in `user list --json`; it deliberately has
// no password hash field.
type userListEntry struct {
	Name            string `json:"name"`
	Perm            string `json:"perm"`
	Admin           bool   `json:"admin"`
	Home            string `json:"home"`
	MaxUploadRate   int64  `json:"max_upload_rate"`   // bytes/s, 0 = server default
	MaxDownloadRate int64  `json:"max_download_rate"` // bytes/s, 0 = server default
}

func runUserList(_ context.Context, opts userListOptions, _ []string, stdio userIO) error {
	db, err := opts.openUsers()
	if err != nil {
		return err
	}
	if _, err := os.Stat(db.Path()); errors.Is(err, os.ErrNotExist) {
		// Not an error (a new historian has no file yet), but a wrong
		// --state would look the same, so say so.
		fmt.Fprintf(stdio.errOut, "syncer: note: %s does not exist yet: no accounts\n", db.Path())
	}
	users := db.List()
	if opts.JSON {
		list := make([]userListEntry, 0, len(users))
		for _, u := range users {
			list = append(list, userListEntry{
				Name: u.Name, Perm: u.Perm, Admin: u.Admin, Home: u.Home,
				MaxUploadRate: int64(u.MaxUploadRate), MaxDownloadRate: int64(u.MaxDownloadRate),
			})
		}
		enc := json.NewEncoder(stdio.out)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(stdio.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPERM\tADMIN\tHOME\tUPLOAD\tDOWNLOAD")
	rate := func(r accounts.Rate) string {
		if r == 0 {
			return "-"
		}
		return r.String() + "/s"
	}
	for _, u := range users {
		admin := "no"
		if u.Admin {
			admin = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, u.Perm, admin, u.Home, rate(u.MaxUploadRate), rate(u.MaxDownloadRate))
	}
	return tw.Flush()
}

// maxPasswordLine bounds what --password-stdin reads, so that a wrong pipe
// (a binary file) fails instead of filling memory.
const maxPasswordLine = 4096

// readNewPassword gets a new password for account name: the first line of
// stdin with --password-stdin, else asked twice on the terminal without
// echo. Without a terminal and without --password-stdin it is a usage
// error: a password is never taken from the command line, where the
// process list would show it. The password never appears in an error.
func readNewPassword(fromStdin bool, name string, stdio userIO) (string, error) {
	if fromStdin {
		r := bufio.NewReaderSize(io.LimitReader(stdio.in, maxPasswordLine+1), maxPasswordLine+1)
		line, err := r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", withCode(exitUsage, fmt.Errorf("read password from stdin: %w", err))
		}
		if len(line) > maxPasswordLine {
			return "", usageErrorf("read password from stdin: first line longer than %d bytes", maxPasswordLine)
		}
		line = strings.TrimSuffix(line, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			return "", usageErrorf("read password from stdin: empty (give the password as the first line)")
		}
		if err := accounts.ValidatePassword(line); err != nil {
			return "", withCode(exitUsage, err)
		}
		return line, nil
	}
	f, ok := stdio.in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageErrorf("no password: standard input is not a terminal; pipe the password with --password-stdin")
	}
	fmt.Fprintf(stdio.errOut, "New password for %s: ", name)
	first, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stdio.errOut)
	if err != nil {
		return "", withCode(exitUsage, fmt.Errorf("read password: %w", err))
	}
	if err := accounts.ValidatePassword(string(first)); err != nil {
		return "", withCode(exitUsage, err)
	}
	fmt.Fprintf(stdio.errOut, "Repeat password for %s: ", name)
	second, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stdio.errOut)
	if err != nil {
		return "", withCode(exitUsage, fmt.Errorf("read password: %w", err))
	}
	if string(first) != string(second) {
		return "", usageErrorf("the two passwords differ; nothing changed")
	}
	return string(first), nil
}
