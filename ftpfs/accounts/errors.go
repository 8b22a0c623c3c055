package accounts

import "errors"

// Sentinel errors of the users API; callers test with errors.Is.
var (
	// ErrServerAuth is returned by DB.Authenticate for an unknown user or a
	// wrong password; the two are deliberately not told apart. The name says
	// the side: it is the server's verdict on a login, where
	// ftpfs.ErrClientLogin is what a client gets when a server refused it.
	ErrServerAuth = errors.New("login incorrect")
	// ErrUserExists is returned by DB.Add for a name already taken.
	ErrUserExists = errors.New("user already exists")
	// ErrNoUser is returned for an operation on a name that does not exist.
	ErrNoUser = errors.New("no such user")
	// ErrInvalidUser wraps every rejected account setting: a bad name,
	// permission string, home or password.
	ErrInvalidUser = errors.New("invalid user")
	// ErrUsersFile wraps every problem with the content of a users file
	// (malformed YAML, unknown keys, invalid accounts); the error names the
	// file, the user and the problem.
	ErrUsersFile = errors.New("invalid users file")
)
