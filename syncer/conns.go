package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/syncer-dev/syncer/ftpfs"
)

// Conn is one server connection as the agent uses it. *ftpfs.Client
// implements it; the contracts are ftpfs's: Size fails with an error
// matching ftpfs.ErrNotFound for a missing file, Store with offset > 0 is
// REST+STOR and with offset 0 a plain STOR (a new version on the syncer
// server), Store and Retrieve return the bytes moved also on error.
type Conn interface {
	Size(ctx context.Context, path string) (int64, error)
	MkdirAll(ctx context.Context, dir string) error
	Store(ctx context.Context, path string, r io.Reader, offset int64) (int64, error)
	Retrieve(ctx context.Context, path string, w io.Writer, offset int64) (int64, error)
	List(ctx context.Context, dir string) ([]ftpfs.Entry, error)
}

var _ Conn = (*ftpfs.Client)(nil)

// Conns hands out connections, one per worker at a time. Put gives one back
// with the error of its last operation, so that a broken one is dropped.
type Conns interface {
	Get(ctx context.Context) (Conn, error)
	Put(c Conn, err error)
	Close() error
}

// NewConns returns connections for parallel workers over cfg: an
// ftpfs.Pool of that size with FailFast set. It does not dial: the first
// Get does (Push takes one at its start, to log in), so that a wrong
// password or an unreachable server is reported at once (as an error
// matching ftpfs.ErrClientLogin or ftpfs.ErrUnreachable, which ends the
// push) instead of being retried by the pool.
func NewConns(cfg ftpfs.ClientConfig, parallel int) Conns {
	p := ftpfs.NewPool(cfg, max(parallel, 1))
	p.FailFast = true
	return pool{p}
}

// Connect is NewConns that dials at once, to find out now whether the
// server can be reached and logged in to (errors match
// ftpfs.ErrUnreachable or ftpfs.ErrClientLogin).
func Connect(ctx context.Context, cfg ftpfs.ClientConfig, parallel int) (Conns, error) {
	c := NewConns(cfg, parallel)
	conn, err := c.Get(ctx)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	c.Put(conn, nil)
	return c, nil
}

var _ Conns = pool{}

// pool is an ftpfs.Pool handing out its clients as Conns.
type pool struct{ *ftpfs.Pool }

func (p pool) Get(ctx context.Context) (Conn, error) {
	c, err := p.Pool.Get(ctx)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Put gives back a Conn that Get returned, which is always an
// *ftpfs.Client.
func (p pool) Put(c Conn, err error) {
	if fc, ok := c.(*ftpfs.Client); ok {
		p.Pool.Put(fc, err)
	}
}

// isNotFound reports a missing remote file.
func isNotFound(err error) bool { return errors.Is(err, ftpfs.ErrNotFound) }

// IsConnectError reports whether err means the push could not start: the
// server could not be reached, refused the login or the address (a ban),
// its certificate was rejected, or the account may not write the agent's
// tree. push exits with code 3 for it (2 for a DeniedError, a
// configuration error); watch retries, waiting long where retrying soon
// cannot help (see RetryAfter).
func IsConnectError(err error) bool {
	return errors.Is(err, ftpfs.ErrUnreachable) || errors.Is(err, ftpfs.ErrClientLogin) ||
		errors.Is(err, ftpfs.ErrBanned) || errors.Is(err, ftpfs.ErrCertificate) || errors.Is(err, ErrDenied)
}

// ErrDenied: the account may not write the agent's tree on the server.
var ErrDenied = errors.New("account may not write the agent's tree")

// DeniedError is a push refused at its start because the account may not
// write /<agent-id>/ (typically --agent-id defaulting to a host name while
// the account may write only under /<account>/). It matches ErrDenied.
type DeniedError struct {
	AgentID, Dir string
	Err          error
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("the account may not write %s, the tree of agent %q: %v", e.Dir, e.AgentID, e.Err)
}
func (e *DeniedError) Unwrap() error        { return e.Err }
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }
