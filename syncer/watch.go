package syncer

import (
	"context"
	"errors"
	"time"

	"github.com/syncer-dev/syncer/store"
)

// Watch backoff bounds: after a failed connection or push the next attempt
// waits MinRetry, doubling up to MaxRetry, so a historian that is down for
// a while is neither hammered nor left unchecked for long.
const (
	MinRetry = time.Second
	MaxRetry = time.Minute
)

// Watch pushes every interval until ctx is cancelled, then returns nil. It
// makes its connections with connect (see Connect: nothing is dialled until
// a file needs sending). While the server is unreachable it logs one line
// per failed attempt and retries with backoff; the next successful push
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
	retry := MinRetry
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
			wait, retry = retry, min(retry*2, MaxRetry)
			if IsConnectError(err) {
				a.log.Warn("server not reachable, will retry", "err", err, "retry_in", wait)
			} else {
				a.log.Error("push failed, will retry", "err", err, "retry_in", wait)
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
			retry = MinRetry
		default:
			retry = MinRetry
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
