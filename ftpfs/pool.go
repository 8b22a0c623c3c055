package ftpfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff of Pool.Get between failed dials: doubling from the minimum,
// capped, with jitter so that many agents do not redial in step after the
// historian restarts.
const (
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	// idleCheckAfter is how long a pooled client may sit idle before Get
	// checks it with NOOP: servers drop idle control connections.
	idleCheckAfter = 15 * time.Second
	// maxTLSAge is how long Get reuses a client over TLS. Its data
	// connections resume the TLS session of its control connection, and
	// servers that require that (syncer's, vsftpd's require_ssl_reuse)
	// refuse them once the session's ticket has expired (7 days at most
	// with Go, 2 hours by default with OpenSSL): a control connection kept
	// busy for longer would fail every transfer. Redialing hourly is cheap.
	maxTLSAge = time.Hour
)

// Pool hands out logged-in Clients, at most size at a time, one per
// worker. It is safe for concurrent use.
type Pool struct {
	cfg   ClientConfig
	log   *slog.Logger
	slots chan struct{}

	// MinBackoff and MaxBackoff bound the wait between failed dials; set
	// them before the first Get. Zero means the defaults.
	MinBackoff, MaxBackoff time.Duration

	// FailFast makes the pool's first dial its only try: if it fails, that
	// Get and every later one return its error, wrapped as "connect to
	// SERVER: ..." (matching ErrUnreachable, ErrClientLogin...), so that a
	// wrong password or an unreachable server is reported at once instead
	// of retried. Gets that come while the first dial runs wait for its
	// outcome instead of dialling in parallel. Once a dial has succeeded,
	// Get redials with backoff as usual. Set it before the first Get.
	FailFast bool

	// firstMu is held across the first dial of a FailFast pool; dialled
	// and firstErr are its outcome.
	firstMu  sync.Mutex
	dialled  bool
	firstErr error

	mu     sync.Mutex
	idle   []pooled
	closed bool
}

type pooled struct {
	c     *Client
	since time.Time
}

// NewPool returns a pool of at most size clients (size < 1 means 1) for
// cfg. It dials lazily, in Get.
func NewPool(cfg ClientConfig, size int) *Pool {
	if size < 1 {
		size = 1
	}
	cfg = cfg.withDefaults()
	return &Pool{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, size)}
}

// Get returns a client for the caller's exclusive use until Put. It waits
// while size clients are out, reuses an idle client (checking with NOOP one
// that idled a while), or dials. Dial failures that may pass (unreachable,
// busy, timeouts, 4xx) are retried with capped exponential backoff and
// jitter until ctx is done; then the error wraps both ctx's error and the
// last dial error. A refused login, a rejected certificate or any other
// permanent failure is returned at once; see also FailFast.
func (p *Pool) Get(ctx context.Context) (*Client, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("get ftp connection: %w", ctx.Err())
	}
	if p.FailFast {
		if c, done, err := p.dialFirst(ctx); done {
			if err != nil {
				p.release()
			}
			return c, err
		}
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			p.release()
			return nil, ErrPoolClosed
		}
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		it := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if it.c.tls && time.Since(it.c.dialedAt) > maxTLSAge {
			_ = it.c.Close()
			continue
		}
		if time.Since(it.since) < idleCheckAfter || p.check(it.c) {
			return it.c, nil
		}
		_ = it.c.Close()
	}
	c, err := p.dial(ctx)
	if err != nil {
		p.release()
		return nil, err
	}
	return c, nil
}

// dialFirst makes the one dial of a FailFast pool that is not retried.
// done is false once that dial has succeeded: Get goes on as usual.
func (p *Pool) dialFirst(ctx context.Context) (c *Client, done bool, err error) {
	p.firstMu.Lock()
	defer p.firstMu.Unlock()
	if p.firstErr != nil {
		return nil, true, p.firstErr
	}
	if p.dialled {
		return nil, false, nil
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, true, ErrPoolClosed
	}
	c, err = Dial(ctx, p.cfg)
	if err != nil {
		p.firstErr = fmt.Errorf("connect to %s: %w", p.cfg.Server, err)
		return nil, true, p.firstErr
	}
	p.dialled = true
	return c, true, nil
}

// check reports whether c answers NOOP within IOTimeout.
func (p *Pool) check(c *Client) bool {
	if !c.usable() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.IOTimeout)
	defer cancel()
	return c.Noop(ctx) == nil
}

func (p *Pool) dial(ctx context.Context) (*Client, error) {
	minB, maxB := p.MinBackoff, p.MaxBackoff
	if minB <= 0 {
		minB = DefaultMinBackoff
	}
	if maxB < minB {
		maxB = max(DefaultMaxBackoff, minB)
	}
	delay := minB
	var last error // of the attempt before, kept when ctx cuts a later one
	for attempt := 1; ; attempt++ {
		c, err := Dial(ctx, p.cfg)
		if err == nil {
			if attempt > 1 {
				p.log.Info("ftp connected after retries", "server", p.cfg.Server, "attempts", attempt)
			}
			return c, nil
		}
		if ctx.Err() != nil && last != nil {
			// Cut in the middle of a retry: what failed is the server
			// that did not answer before, not the dial that was cut.
			return nil, fmt.Errorf("connect to %s: %w; last error: %w", p.cfg.Server, ctx.Err(), last)
		}
		if ctx.Err() != nil || !retryDial(err) {
			return nil, err
		}
		last = err
		// Full jitter over the upper half: never less than half the delay,
		// so a flapping server is not hammered.
		wait := delay/2 + rand.N(delay/2+1)
		p.log.Warn("ftp connect failed, retrying", "server", p.cfg.Server, "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connect to %s: %w; last error: %w", p.cfg.Server, ctx.Err(), err)
		}
		delay = min(delay*2, maxB)
	}
}

func retryDial(err error) bool {
	if errors.Is(err, ErrClientLogin) || isVerifyErr(err) {
		return false
	}
	return errors.Is(err, ErrUnreachable) || IsTransient(err)
}

// Put gives back a client from Get. err is the error of the caller's last
// operation: after one, the client is checked with NOOP and dropped if it
// does not answer. A broken client is always dropped. Each client is Put
// exactly once.
func (p *Pool) Put(c *Client, err error) {
	if c == nil {
		return
	}
	keep := c.usable()
	if keep && err != nil {
		keep = p.check(c)
	}
	p.mu.Lock()
	if keep && !p.closed {
		p.idle = append(p.idle, pooled{c: c, since: time.Now()})
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	p.release()
}

func (p *Pool) release() {
	select {
	case <-p.slots:
	default:
	}
}

// Close closes the idle clients; clients still out are closed when Put.
// Get fails with ErrPoolClosed afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	var errs []error
	for _, it := range idle {
		errs = append(errs, it.c.Close())
	}
	return errors.Join(errs...)
}
