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

// poolConns adapts an ftpfs.Pool. The first connection is dialled
// directly, once, when the first file needs it: a push that finds nothing
// changed makes no network traffic at all, and a wrong password or an
// unreachable server is reported at once (as an error matching
// ftpfs.ErrClientLogin or ftpfs.ErrUnreachable, which ends the push) instead of
// being retried by the pool.
type poolConns struct {
	cfg  ftpfs.ClientConfig
	pool *ftpfs.Pool
	mu   sync.Mutex
	// dialled is set after the first dial succeeded; dialErr holds a
	// failed first dial, returned to every later Get.
	dialled bool
	dialErr error
	// own is the client dialled first; it never enters the pool (whose
	// slot count covers only its own clients). first holds it while idle.
	own, first *ftpfs.Client
}

// NewConns returns connections for parallel workers over cfg. It does not
// dial: the first Get does (see poolConns).
func NewConns(cfg ftpfs.ClientConfig, parallel int) Conns {
	return &poolConns{cfg: cfg, pool: ftpfs.NewPool(cfg, max(parallel, 1))}
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

func (p *poolConns) Get(ctx context.Context) (Conn, error) {
	p.mu.Lock()
	if p.dialErr != nil {
		p.mu.Unlock()
		return nil, p.dialErr
	}
	if !p.dialled {
		// The lock is held across the dial: the other workers wait for
		// its outcome instead of dialling (and failing) in parallel.
		defer p.mu.Unlock()
		c, err := ftpfs.Dial(ctx, p.cfg)
		if err != nil {
			p.dialErr = fmt.Errorf("connect to %s: %w", p.cfg.Server, err)
			return nil, p.dialErr
		}
		p.dialled, p.own = true, c
		return c, nil
	}
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
	p.mu.Lock()
	if fc == p.own {
		defer p.mu.Unlock()
		if err == nil || !ftpfs.IsTransient(err) && !IsConnectError(err) {
			// A refused file (550 and the like) leaves the connection usable.
			p.first = fc
			return
		}
		p.own = nil
		_ = fc.Close()
		return
	}
	p.mu.Unlock()
	p.pool.Put(fc, err)
}

func (p *poolConns) Close() error {
	p.mu.Lock()
	c := p.first
	p.first, p.own = nil, nil
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
	return errors.Is(err, ftpfs.ErrUnreachable) || errors.Is(err, ftpfs.ErrClientLogin)
}
