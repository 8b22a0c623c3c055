package syncer

import (
	"context"
	"errors"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/store"
)

// Watch backoff bounds: after a failed connection or push the next attempt
// waits MinRetry, doubling up to MaxRetry, so a historian that is down for
// a while is neither hammered nor left unchecked for long.
const (
	MinRetry = time.Second
	MaxRetry = time.Minute
)

// Refusals that retrying soon cannot cure (a wrong password, a rejected
// certificate, a tree the account may not write) are retried after
// RefusedRetry, doubling up to MaxRefusedRetry: often enough to notice a
// fix within minutes, rarely enough that a wrong password never adds up to
// the historian's ban (5 failures in 10 minutes by default). A ban is
// waited out to its end.
const (
	RefusedRetry    = 5 * time.Minute
	MaxRefusedRetry = 30 * time.Minute
)

// backoff is watch's wait after failed pushes.
type backoff struct {
	fast, refused time.Duration
}

func newBackoff() backoff { return backoff{fast: MinRetry, refused: RefusedRetry} }

// next returns the wait after err and what to call it in the log.
func (b *backoff) next(err error, now time.Time) (time.Duration, string) {
	var be *ftpfs.BannedError
	switch {
	case errors.As(err, &be):
		wait := MaxRefusedRetry
		if !be.Until.IsZero() {
			wait = max(be.Until.Sub(now)+time.Second, MinRetry)
		}
		return wait, "this address is banned by the historian after failed logins; waiting for the ban to end"
	case errors.Is(err, ftpfs.ErrClientLogin):
		return b.slow(), "login refused: check the account name and password (retrying sooner would get this address banned)"
	case errors.Is(err, ftpfs.ErrCertificate):
		return b.slow(), "the historian's certificate was rejected: check --tls-fingerprint or --tls-ca"
	case errors.Is(err, ErrDenied):
		return b.slow(), "the account may not write this agent's tree: check --agent-id and the account's home"
	case IsConnectError(err):
		b.refused = RefusedRetry
		wait := b.fast
		b.fast = min(b.fast*2, MaxRetry)
		return wait, "server not reachable, will retry"
	default:
		b.refused = RefusedRetry
		wait := b.fast
		b.fast = min(b.fast*2, MaxRetry)
		return wait, "push failed, will retry"
	}
}

func (b *backoff) slow() time.Duration {
	wait := b.refused
	b.refused = min(b.refused*2, MaxRefusedRetry)
	b.fast = MinRetry
	return wait
}

func (b *backoff) reset() { *b = newBackoff() }

// Watch pushes every interval until ctx is cancelled, then returns nil. It
// makes its connections with connect (see NewConns); each push logs in and
// ends with the agent's heartbeat. While the server is unreachable it logs
// one line per failed attempt and retries with backoff (MinRetry doubling
// to MaxRetry); a refused login, certificate or tree waits RefusedRetry
// doubling to MaxRefusedRetry, and a ban waits for its end. The next successful push
// catches up with everything that changed meanwhile. Cancelling ctx cuts
// the running push: the manifest keeps only what the server confirmed, and
// the next start resumes. done, if set, receives each push's summary. A
// fatal error of the manifest's database (*store.FatalError) is not
// retried: Watch returns it.
func (a *Agent) Watch(ctx context.Context, interval time.Duration, connect func() Conns, done func(Summary, error)) error {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	var conns Conns
	defer func() {
		if conns != nil {
			_ = conns.Close()
		}
	}()
	retry := newBackoff()
	for {
		if conns == nil {
			conns = connect()
		}
		start := time.Now()
		sum, err := a.Push(ctx, conns)
		if ctx.Err() != nil {
			a.log.Info("watch stopping: current push cut, state saved", "sent", sum.BytesSent)
			if done != nil {
				done(sum, ctx.Err())
			}
			return nil
		}
		if done != nil {
			done(sum, err)
		}
		if fe := (*store.FatalError)(nil); errors.As(err, &fe) {
			return err
		}
		wait := interval
		switch {
		case err != nil:
			var why string
			wait, why = retry.next(err, time.Now())
			if IsConnectError(err) {
				a.log.Warn(why, "err", err, "retry_in", wait, "retry_at", time.Now().Add(wait).UTC().Format(time.RFC3339))
			} else {
				a.log.Error(why, "err", err, "retry_in", wait)
			}
			// Start over with fresh connections (a failed first dial is
			// remembered by the old ones).
			_ = conns.Close()
			conns = nil
		case sum.FilesFailed > 0:
			a.log.Warn("push finished with failures", "failed", sum.FilesFailed, "new", sum.FilesNew,
				"appended", sum.FilesAppended, "rewritten", sum.FilesRewritten, "bytes_sent", sum.BytesSent)
			_ = conns.Close()
			conns = nil
			retry.reset()
		default:
			retry.reset()
			if sum.BytesSent > 0 || sum.FilesGone > 0 || sum.FilesRotated > 0 {
				a.log.Info("pushed", "new", sum.FilesNew, "appended", sum.FilesAppended,
					"rewritten", sum.FilesRewritten, "rotated", sum.FilesRotated, "gone", sum.FilesGone,
					"bytes_sent", sum.BytesSent, "duration", time.Since(start).Round(time.Millisecond))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
