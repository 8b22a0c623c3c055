package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

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
}

var _ Conn = (*ftpfs.Client)(nil)

// Conns hands out connections, one per worker at a time. Put gives one back
// with the error of its last operation, so that a broken one is dropped.
type Conns interface {
	Get(ctx context.Context) (Conn, error)
	Put(c Conn, err error)
	Close() error
}

// poolConns adapts an ftpfs.Pool, starting with a client that was dialled
// directly (so that a wrong password or an unreachable server is reported
// at once instead of being retried by the pool).
type poolConns struct {
	pool *ftpfs.Pool
	mu   sync.Mutex
	// own is the client Connect dialled; it never enters the pool (whose
	// slot count covers only its own clients). first holds it while idle.
	own, first *ftpfs.Client
}

// Connect dials the server once, to find out now whether it can be reached
// and logged in to (errors match ftpfs.ErrUnreachable or ftpfs.ErrLogin),
// and returns connections for parallel workers from a pool over cfg.
func Connect(ctx context.Context, cfg ftpfs.ClientConfig, parallel int) (Conns, error) {
	c, err := ftpfs.Dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Server, err)
	}
	return &poolConns{pool: ftpfs.NewPool(cfg, max(parallel, 1)), own: c, first: c}, nil
}

func (p *poolConns) Get(ctx context.Context) (Conn, error) {
	p.mu.Lock()
	c := p.first
	p.first = nil
	p.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := p.pool.Get(ctx)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (p *poolConns) Put(c Conn, err error) {
	fc, ok := c.(*ftpfs.Client)
	if !ok || fc == nil {
		return
	}
	if fc == p.own {
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil && !ftpfs.IsTransient(err) && !IsConnectError(err) || err == nil {
			// A refused file (550 and the like) leaves the connection usable.
			p.first = fc
			return
		}
		p.own = nil
		_ = fc.Close()
		return
	}
	p.pool.Put(fc, err)
}

func (p *poolConns) Close() error {
	p.mu.Lock()
	c := p.first
	p.first = nil
	p.mu.Unlock()
	var errs []error
	if c != nil {
		errs = append(errs, c.Close())
	}
	errs = append(errs, p.pool.Close())
	return errors.Join(errs...)
}

// isNotFound reports a missing remote file.
func isNotFound(err error) bool { return errors.Is(err, ftpfs.ErrNotFound) }

// IsConnectError reports whether err means the server could not be reached
// or refused the login: push exits with code 3 for it, watch retries.
func IsConnectError(err error) bool {
	return errors.Is(err, ftpfs.ErrUnreachable) || errors.Is(err, ftpfs.ErrLogin)
}
