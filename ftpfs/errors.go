package ftpfs

import "errors"

// Sentinel errors at the package boundary. Server and client wrap them with
// the operation and the object, so callers test with errors.Is. The account
// database keeps its own sentinels in package accounts.
var (
	// ErrNotFound: the file or directory does not exist (FTP 550 on a path
	// the account may see).
	ErrNotFound = errors.New("not found")
	// ErrPermission: the account may not do this here. Outside an agent's
	// home it is returned whether or not the path exists, so that it reveals
	// nothing about other agents' trees.
	ErrPermission = errors.New("permission denied")
	// ErrLogin: the server refused the login (wrong name or password,
	// anonymous, TLS required). Retrying with the same credentials will not help.
	ErrLogin = errors.New("login failed")
	// ErrUnreachable: the server could not be reached or the connection broke.
	ErrUnreachable = errors.New("server unreachable")
	// ErrBusy: a transient refusal (too many connections, a path still being
	// written that did not let go in time, FTP 421/450); retry later.
	ErrBusy = errors.New("server busy")
	// ErrExists: the target already exists (MKD of an existing directory,
	// rename onto an existing name).
	ErrExists = errors.New("already exists")
	// ErrOffset: a restart offset (REST) that the archive refuses: beyond the
	// end of the file, or below it for an account that may not rewrite
	// archived bytes.
	ErrOffset = errors.New("bad restart offset")
	// ErrBadName: a path the archive refuses to store: NUL, CR or LF in a
	// name, or a name that is not valid UTF-8.
	ErrBadName = errors.New("name not allowed")
)
